package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/metrics"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// SharingAgreementReconciler gives a partner network access exactly while
// its agreement is in force, and reports why it is or is not.
type SharingAgreementReconciler struct {
	client.Client
	Recorder recorder.EventRecorder
	Clock    clock.PassiveClock
	// Reports are the compliance reports kept for each agreement.
	Reports ReportKinds
}

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=sharingagreements,verbs=get;list;watch
// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=sharingagreements/status,verbs=get;update;patch

// Reconcile puts one agreement in or out of force.
func (r *SharingAgreementReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	agreement := &v1alpha1.SharingAgreement{}
	if err := r.Get(ctx, req.NamespacedName, agreement); err != nil {
		return ctrl.Result{}, forgetIfGone(metrics.KindSharingAgreement, req, err)
	}
	if !agreement.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the NetworkPolicy goes with it (owner reference)
	}
	before := agreement.DeepCopy()
	now := r.Clock.Now()

	store, view, err := readStore(ctx, r.Client, agreement.Namespace, agreement.Spec.StoreRef.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if wait := firstLookWait(agreement, agreement.Status.Conditions, store, now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	verdict := compliance.EvaluateAgreement(agreement, view, now)
	policyExists, accessErr := r.reconcileNetworkAccess(ctx, agreement, store, verdict.InForce)

	proxyEnforced := r.enforcedByProxy(ctx, agreement, store)
	setAgreementStatus(agreement, verdict, policyExists, proxyEnforced)
	agreement.Status.EgressGatewayURL = ""
	if store != nil && resources.Outbound(agreement) {
		agreement.Status.EgressGatewayURL = resources.EgressRouteURL(store, agreement)
	}
	if err := setActivityAssigned(ctx, r.Client, agreement, &agreement.Status.Conditions, agreement.Spec.ProcessingActivities); err != nil {
		return ctrl.Result{}, err
	}
	metrics.RecordAgreement(agreement)
	written, statusErr := writeStatus(ctx, r.Client, agreement, before.Status, agreement.Status)
	if written {
		r.recordTransitions(before, agreement)
	}
	var reportErr error
	if statusErr == nil {
		_, reportErr = syncReports(ctx, r.Client, r.Reports, reportSubject(metrics.KindSharingAgreement, agreement, agreement.Spec.StoreRef.Name, &agreement.Status.CommonStatus))
	}
	return finish(requeueFor(verdict.NextTransition, now), statusErr, accessErr, reportErr)
}

// reconcileNetworkAccess applies the partner's NetworkPolicy while in force
// and deletes it otherwise. It reports whether the policy exists afterwards.
//
// An Egress agreement with outbound routes needs no policy of its own: the
// store's egress gateway alone reaches its partner (the store reconciler
// admits it while the agreement is in force), so network access exists
// while it is in force and any stale policy of its own is removed.
func (r *SharingAgreementReconciler) reconcileNetworkAccess(ctx context.Context, a *v1alpha1.SharingAgreement, store *v1alpha1.DossierStore, inForce bool) (bool, error) {
	if !resources.AgreementPolicyNeeded(a) {
		_, err := r.removePartnerPolicy(ctx, a)
		return inForce && err == nil, err
	}
	if inForce {
		if _, err := applyChild(ctx, r.Client, resources.AgreementPolicy(a, store), &networkingv1.NetworkPolicy{}); err != nil {
			return false, fmt.Errorf("apply partner NetworkPolicy: %w", err)
		}
		return true, nil
	}
	return r.removePartnerPolicy(ctx, a)
}

// removePartnerPolicy deletes the agreement's NetworkPolicy if it exists;
// it reports whether the policy still exists afterwards.
func (r *SharingAgreementReconciler) removePartnerPolicy(ctx context.Context, a *v1alpha1.SharingAgreement) (bool, error) {
	policy := &networkingv1.NetworkPolicy{}
	err := r.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: resources.AgreementPolicyName(a)}, policy)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("read partner NetworkPolicy: %w", err)
	}
	if err := r.Delete(ctx, policy); client.IgnoreNotFound(err) != nil {
		return true, fmt.Errorf("remove partner NetworkPolicy: %w", err)
	}
	return false, nil
}

// enforcedByProxy reports whether the audit proxy decides the partner's
// requests from this agreement: it admits the partner to the proxy, it is in
// the store's rendered access policy and not refused there, and a consent
// source exists when consent is per dossier.
func (r *SharingAgreementReconciler) enforcedByProxy(ctx context.Context, a *v1alpha1.SharingAgreement, store *v1alpha1.DossierStore) bool {
	pa := compliance.ProxyAgreementOf(a)
	if store == nil || !pa.Admitted || (pa.PerDossier && (store.Spec.Audit == nil || store.Spec.Audit.ConsentURL == "")) {
		return false
	}
	cm := &corev1.ConfigMap{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: resources.AccessPolicyName(store)}, cm); err != nil {
		return false
	}
	doc, err := accesspolicy.Decode([]byte(cm.Data[accesspolicy.ConfigMapKey]))
	if err != nil {
		return false
	}
	for _, e := range doc.Agreements {
		if e.Name == a.Name {
			// The proxy enforces this agreement as it is now only when the
			// rendered entry is that of the current spec.
			rendered, err1 := json.Marshal(e)
			current, err2 := json.Marshal(accesspolicy.AgreementEntry(a, ""))
			return err1 == nil && err2 == nil && bytes.Equal(rendered, current)
		}
	}
	return false
}

// recordTransitions emits an event when sharing starts or stops.
func (r *SharingAgreementReconciler) recordTransitions(before, after *v1alpha1.SharingAgreement) {
	old, now := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionAgreementInForce), meta.FindStatusCondition(after.Status.Conditions, v1alpha1.ConditionAgreementInForce)
	if now == nil || (old != nil && old.Status == now.Status && old.Reason == now.Reason) {
		return
	}
	if after.Status.InForce {
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, "SharingStarted", "Share", "%s", now.Message)
		return
	}
	eventType := corev1.EventTypeNormal
	if now.Reason == v1alpha1.ReasonMinimisationViolated || now.Reason == v1alpha1.ReasonReviewOverdue {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(after, nil, eventType, now.Reason, "StopSharing", "%s", now.Message)
}

// SetupWithManager registers the reconciler and its watches.
func (r *SharingAgreementReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	toAgreements := referrers(mgr.GetClient(), &v1alpha1.SharingAgreementList{})
	return ownReports(ctrl.NewControllerManagedBy(mgr), r.Reports).
		For(&v1alpha1.SharingAgreement{}, builder.WithPredicates(specOrMetadataChanged)).
		// A NetworkPolicy has no status: every update is an edit to revert.
		Owns(&networkingv1.NetworkPolicy{}).
		// A newly rendered access policy changes whether the proxy enforces
		// the store's agreements.
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, cm client.Object) []reconcile.Request {
				store := cm.GetLabels()[v1alpha1.LabelStore]
				if store == "" || cm.GetLabels()[resources.LabelComponent] != "access-policy" {
					return nil
				}
				return toAgreements(ctx, &v1alpha1.DossierStore{ObjectMeta: metaFor(cm.GetNamespace(), store)})
			})).
		// A store becoming (not) Ready puts its agreements in or out of force
		// (and its first Ready condition ends an agreement's wait for its
		// first status); its spec says whether it has a consent source; the
		// rest of its status is not read.
		Watches(&v1alpha1.DossierStore{}, handler.EnqueueRequestsFromMapFunc(toAgreements),
			builder.WithPredicates(predicate.Or(specMetadataOrDeletion, storeReadyChanged))).
		// An agreement names the processing activities it serves.
		Watches(&v1alpha1.ProcessingActivity{}, handler.EnqueueRequestsFromMapFunc(inNamespace(mgr.GetClient(), &v1alpha1.SharingAgreementList{})),
			builder.WithPredicates(specMetadataOrDeletion)).
		Named("sharingagreement").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}
