package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/metrics"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// RetentionPolicyReconciler runs a store's retention sweep on schedule and
// reports whether retention is lawful and actually enforced.
type RetentionPolicyReconciler struct {
	client.Client
	Clock clock.PassiveClock
	// Image runs `dossierguard retention-sweep`.
	Image string
	// Statutes is the statutory retention per service.
	Statutes map[v1alpha1.Service]compliance.Statute
	// Reports are the compliance reports kept for each policy.
	Reports ReportKinds
}

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=retentionpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=retentionpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;patch

// Reconcile provisions the sweeper and evaluates the policy.
func (r *RetentionPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	policy := &v1alpha1.RetentionPolicy{}
	if err := r.Get(ctx, req.NamespacedName, policy); err != nil {
		return ctrl.Result{}, forgetIfGone(metrics.KindRetentionPolicy, req, err)
	}
	if !policy.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the sweeper's objects go with it (owner references)
	}
	before := policy.DeepCopy()
	now := r.Clock.Now()

	store, _, err := readStore(ctx, r.Client, policy.Namespace, policy.Spec.StoreRef.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	schedule, scheduleErr := compliance.Schedule(policy.Spec.Schedule, policy.Spec.TimeZone)
	sweeperErr := r.reconcileSweeper(ctx, policy)

	facts := retentionFacts{now: now, store: store, sweeperReady: sweeperErr == nil, scheduleErr: scheduleErr}
	facts.enforcement = compliance.EnforcementFacts{Schedule: schedule, Created: policy.CreationTimestamp.Time, LastRun: policy.Status.LastRun}
	if store != nil {
		facts.checks = compliance.CheckRules(policy.Spec.Rules, store.Spec.Service, r.Statutes)
	}
	setRetentionStatus(policy, facts)
	metrics.RecordRetentionPolicy(policy)
	_, statusErr := writeStatus(ctx, r.Client, policy, before.Status, policy.Status)
	var reportErr error
	if statusErr == nil {
		_, reportErr = syncReports(ctx, r.Client, r.Reports, reportSubject(metrics.KindRetentionPolicy, policy, policy.Spec.StoreRef.Name, &policy.Status.CommonStatus))
	}

	var next time.Time
	if schedule != nil {
		// Look again shortly after the next run should have reported.
		next = schedule.Next(now).Add(5 * time.Minute)
	}
	return finish(requeueFor(next, now), statusErr, sweeperErr, reportErr)
}

// reconcileSweeper applies the sweeper's ServiceAccount, RBAC and CronJob.
func (r *RetentionPolicyReconciler) reconcileSweeper(ctx context.Context, p *v1alpha1.RetentionPolicy) error {
	maxRun := time.Hour
	if d, err := time.ParseDuration(p.Spec.MaxRunTime); err == nil && d > 0 {
		maxRun = d
	}
	steps := []struct {
		what    string
		desired any
		live    client.Object
	}{
		{"ServiceAccount", resources.SweeperServiceAccount(p), &corev1.ServiceAccount{}},
		{"Role", resources.SweeperRole(p), &rbacv1.Role{}},
		{"RoleBinding", resources.SweeperRoleBinding(p), &rbacv1.RoleBinding{}},
		{"CronJob", resources.SweeperCronJob(p, r.Image, int64(maxRun.Seconds())), &batchv1.CronJob{}},
	}
	for _, s := range steps {
		if _, err := applyChild(ctx, r.Client, s.desired.(applyConfiguration), s.live); err != nil {
			return fmt.Errorf("apply sweeper %s: %w", s.what, err)
		}
	}
	return nil
}

// lastRunChanged lets a run reported by the sweeper through, while the
// reconciler's own status writes are filtered out.
var lastRunChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.RetentionPolicy)
		n, ok2 := e.ObjectNew.(*v1alpha1.RetentionPolicy)
		return ok1 && ok2 && !equality.Semantic.DeepEqual(o.Status.LastRun, n.Status.LastRun)
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// SetupWithManager registers the reconciler and its watches.
func (r *RetentionPolicyReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ownReports(ctrl.NewControllerManagedBy(mgr), r.Reports).
		For(&v1alpha1.RetentionPolicy{}, builder.WithPredicates(predicate.Or(specOrMetadataChanged, lastRunChanged))).
		// The CronJob's status (last schedule, active Jobs) is not read; the
		// sweeper reports its runs in the policy's status instead.
		Owns(&batchv1.CronJob{}, builder.WithPredicates(notStatusOnly)).
		// These have no status: every update is an edit to revert.
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		// Of its store a policy reads the spec (the service), not the status.
		Watches(&v1alpha1.DossierStore{}, handler.EnqueueRequestsFromMapFunc(
			referrers(mgr.GetClient(), &v1alpha1.RetentionPolicyList{})),
			builder.WithPredicates(specMetadataOrDeletion)).
		Named("retentionpolicy").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}
