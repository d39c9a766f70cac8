package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/metrics"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// AccessRoleReconciler checks a role against its store and reports whether
// it is enforced in the store's access policy. The DossierStore reconciler
// renders the policy itself.
type AccessRoleReconciler struct {
	client.Client
	Clock clock.PassiveClock
	// Reports are the compliance reports kept for each role.
	Reports ReportKinds
}

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=accessroles,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=accessroles/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch

// Reconcile reports one role's checks and the policy that enforces it.
func (r *AccessRoleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	role := &v1alpha1.AccessRole{}
	if err := r.Get(ctx, req.NamespacedName, role); err != nil {
		return ctrl.Result{}, forgetIfGone(metrics.KindAccessRole, req, err)
	}
	before := role.DeepCopy()
	now := r.Clock.Now()

	store, view, err := readStore(ctx, r.Client, role.Namespace, role.Spec.StoreRef.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if wait := firstLookWait(role, role.Status.Conditions, store, now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	verdict := compliance.EvaluateRole(role, view, now)
	policyName, policyHash := "", ""
	if store != nil && verdict.Enforceable {
		policyName, policyHash = r.renderedPolicy(ctx, store)
	}

	agreements := &v1alpha1.SharingAgreementList{}
	if store != nil {
		if err := r.List(ctx, agreements, client.InNamespace(role.Namespace), client.MatchingFields{storeRefIndex: store.Name}); err != nil {
			return ctrl.Result{}, err
		}
	}
	ready, reason, message := compliance.RoleReadiness(role, store, agreements.Items)
	setRoleStatus(role, verdict, policyName, policyHash, roleReadiness{ok: ready, reason: reason, message: message})
	if err := setActivityAssigned(ctx, r.Client, role, &role.Status.Conditions, role.Spec.ProcessingActivities); err != nil {
		return ctrl.Result{}, err
	}
	metrics.RecordAccessRole(role)
	_, statusErr := writeStatus(ctx, r.Client, role, before.Status, role.Status)
	var reportErr error
	if statusErr == nil {
		_, reportErr = syncReports(ctx, r.Client, r.Reports, reportSubject(metrics.KindAccessRole, role, role.Spec.StoreRef.Name, &role.Status.CommonStatus))
	}
	var next time.Time
	if verdict.ReviewDue != nil {
		next = *verdict.ReviewDue
	}
	return finish(requeueFor(next, now), statusErr, reportErr)
}

// renderedPolicy reads the name and hash of the store's access policy.
func (r *AccessRoleReconciler) renderedPolicy(ctx context.Context, store *v1alpha1.DossierStore) (string, string) {
	cm := &corev1.ConfigMap{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: resources.AccessPolicyName(store)}, cm); err != nil {
		return "", ""
	}
	return cm.Name, cm.Annotations[v1alpha1.AnnotationPolicyHash]
}

// SetupWithManager registers the reconciler and its watches.
func (r *AccessRoleReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	toRoles := referrers(mgr.GetClient(), &v1alpha1.AccessRoleList{})
	return ownReports(ctrl.NewControllerManagedBy(mgr), r.Reports).
		For(&v1alpha1.AccessRole{}, builder.WithPredicates(specOrMetadataChanged)).
		// Of its store a role reads the spec (the categories) and whether it
		// is being deleted, not the status; its first status waits for the
		// store's first.
		Watches(&v1alpha1.DossierStore{}, handler.EnqueueRequestsFromMapFunc(toRoles),
			builder.WithPredicates(predicate.Or(specMetadataOrDeletion, storeAssessed))).
		// An agreement's partner subjects can overlap a role's subjects.
		Watches(&v1alpha1.SharingAgreement{}, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, o client.Object) []reconcile.Request {
				a, ok := o.(*v1alpha1.SharingAgreement)
				if !ok {
					return nil
				}
				return toRoles(ctx, &v1alpha1.DossierStore{ObjectMeta: metaFor(a.Namespace, a.Spec.StoreRef.Name)})
			}), builder.WithPredicates(specMetadataOrDeletion)).
		// A newly rendered policy changes the hash every role reports.
		// ConfigMaps are cached only with the managed-by label (CacheOptions).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, cm client.Object) []reconcile.Request {
				store := cm.GetLabels()[v1alpha1.LabelStore]
				if store == "" || cm.GetLabels()[resources.LabelComponent] != "access-policy" {
					return nil
				}
				return toRoles(ctx, &v1alpha1.DossierStore{ObjectMeta: metaFor(cm.GetNamespace(), store)})
			})).
		// A role names the processing activities it serves.
		Watches(&v1alpha1.ProcessingActivity{}, handler.EnqueueRequestsFromMapFunc(inNamespace(mgr.GetClient(), &v1alpha1.AccessRoleList{})),
			builder.WithPredicates(specMetadataOrDeletion)).
		Named("accessrole").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}
