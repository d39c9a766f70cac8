package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// KindProcessingActivity is the kind of the activity's reports.
const KindProcessingActivity = "ProcessingActivity"

// ProcessingActivityReconciler writes the status of a register entry: what
// refers to it, the recipients and measures derived from them, and whether
// what it promises is in force.
type ProcessingActivityReconciler struct {
	client.Client
	// Reports are the compliance reports kept for each activity.
	Reports ReportKinds
}

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=processingactivities,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=processingactivities/status,verbs=get;update;patch

// Reconcile derives the activity's status from its namespace.
func (r *ProcessingActivityReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	activity := &v1alpha1.ProcessingActivity{}
	if err := r.Get(ctx, req.NamespacedName, activity); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !activity.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := activity.DeepCopy()

	facts, readErr := r.readFacts(ctx, activity)
	setActivityStatus(activity, compliance.EvaluateActivity(activity, facts))
	_, statusErr := writeStatus(ctx, r.Client, activity, before.Status, activity.Status)
	var reportErr error
	if statusErr == nil {
		_, reportErr = syncReports(ctx, r.Client, r.Reports, reportSubject(KindProcessingActivity, activity, "", &activity.Status.CommonStatus))
	}
	return finish(0, statusErr, readErr, reportErr)
}

// readFacts lists what may refer to the activity and reads its retention
// policy. A failed list leaves coverage unknown (never assumed).
func (r *ProcessingActivityReconciler) readFacts(ctx context.Context, a *v1alpha1.ProcessingActivity) (compliance.ActivityFacts, error) {
	var (
		f          compliance.ActivityFacts
		roles      v1alpha1.AccessRoleList
		agreements v1alpha1.SharingAgreementList
		stores     v1alpha1.DossierStoreList
	)
	in := client.InNamespace(a.Namespace)
	for _, l := range []client.ObjectList{&roles, &agreements, &stores} {
		if err := r.List(ctx, l, in); err != nil {
			f.ListFailed = true
			return f, fmt.Errorf("list the referrers of a processing activity: %w", err)
		}
	}
	f.Roles, f.Agreements, f.Stores = roles.Items, agreements.Items, stores.Items
	policy := &v1alpha1.RetentionPolicy{}
	err := r.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.Retention.PolicyRef.Name}, policy)
	switch {
	case err == nil:
		f.Retention = policy
	case !apierrors.IsNotFound(err):
		return f, fmt.Errorf("read the retention policy of a processing activity: %w", err)
	}
	return f, nil
}

// setActivityStatus writes the derived view, the compliance rows and the
// Ready and Compliant conditions.
func setActivityStatus(a *v1alpha1.ProcessingActivity, v compliance.ActivityView) {
	st := &a.Status
	st.ObservedGeneration = a.Generation
	st.ActivityID = a.ID()
	st.References, st.Recipients, st.Measures = v.References, v.Recipients, v.Measures
	st.Compliance = v.Controls
	setCompliantCondition(a, &st.Conditions, v.Controls)
	for _, c := range v.Controls {
		if c.Result != v1alpha1.ResultPass {
			setCondition(a, &st.Conditions, v1alpha1.ConditionReady, false, c.Reason, fmt.Sprintf("%s: %s", c.Control, c.Message))
			return
		}
	}
	setCondition(a, &st.Conditions, v1alpha1.ConditionReady, true, v1alpha1.ReasonActivityInForce,
		"the activity's categories cover what is used under it and its retention is enforced")
}

// activitiesOf maps any object of a namespace to the namespace's activities:
// roles, agreements and stores name them, and retention policies are named
// by them.
func activitiesOf(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.ProcessingActivityList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			log.FromContext(ctx).Error(err, "Listing the processing activities of a namespace failed", "namespace", o.GetNamespace())
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return out
	}
}

// SetupWithManager registers the reconciler and its watches.
func (r *ProcessingActivityReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	toActivities := handler.EnqueueRequestsFromMapFunc(activitiesOf(mgr.GetClient()))
	return ownReports(ctrl.NewControllerManagedBy(mgr), r.Reports).
		For(&v1alpha1.ProcessingActivity{}, builder.WithPredicates(specOrMetadataChanged)).
		// Roles and agreements: their spec names activities. Stores: their
		// routes, and their status (the measures). Retention policies: their
		// status (the RetentionEnforced control).
		Watches(&v1alpha1.AccessRole{}, toActivities, builder.WithPredicates(specMetadataOrDeletion)).
		Watches(&v1alpha1.SharingAgreement{}, toActivities, builder.WithPredicates(specMetadataOrDeletion)).
		Watches(&v1alpha1.DossierStore{}, toActivities).
		Watches(&v1alpha1.RetentionPolicy{}, toActivities).
		Named("processingactivity").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// setActivityAssigned sets the ActivityAssigned condition of a role or an
// agreement from the activities of its namespace. A role or agreement that
// names none is marked (False, a warning) but keeps working as before.
func setActivityAssigned(ctx context.Context, c client.Reader, obj client.Object, conditions *[]metav1.Condition, names []v1alpha1.ActivityName) error {
	known := map[string]bool{}
	if len(names) > 0 {
		var list v1alpha1.ProcessingActivityList
		if err := c.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return fmt.Errorf("list processing activities: %w", err)
		}
		for _, a := range list.Items {
			known[a.Name] = true
		}
	}
	ok, reason, message := compliance.ActivitiesAssigned(names, known)
	setCondition(obj, conditions, v1alpha1.ConditionActivityAssigned, ok, reason, message)
	return nil
}

// inNamespace enqueues every object of list in the namespace of the object
// that changed: roles and agreements when an activity comes or goes.
func inNamespace(c client.Client, list client.ObjectList) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(o.GetNamespace())); err != nil {
			log.FromContext(ctx).Error(err, "Listing the objects of a namespace failed", "namespace", o.GetNamespace())
			return nil
		}
		items, _ := meta.ExtractList(l)
		out := make([]reconcile.Request, 0, len(items))
		for _, item := range items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(item.(client.Object))})
		}
		return out
	}
}
