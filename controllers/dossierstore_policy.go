package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// reconcileAccessPolicy renders the store's enforceable roles, every one of
// its agreements and its audited routes into the access-policy ConfigMap
// the audit proxy loads.
func (r *DossierStoreReconciler) reconcileAccessPolicy(ctx context.Context, store *v1alpha1.DossierStore, now time.Time) ([]compliance.RoleSummary, bool, error) {
	roles := &v1alpha1.AccessRoleList{}
	if err := r.List(ctx, roles, client.InNamespace(store.Namespace), client.MatchingFields{storeRefIndex: store.Name}); err != nil {
		return nil, false, fmt.Errorf("list access roles: %w", err)
	}
	view := compliance.StoreView{Found: true, Ready: true, Categories: store.Spec.DataCategories}
	summaries := make([]compliance.RoleSummary, 0, len(roles.Items))
	enforced := make([]v1alpha1.AccessRole, 0, len(roles.Items))
	for _, role := range roles.Items {
		if !role.DeletionTimestamp.IsZero() {
			continue
		}
		verdict := compliance.EvaluateRole(&role, view, now)
		summaries = append(summaries, compliance.RoleSummary{Name: role.Name, Enforceable: verdict.Enforceable})
		if verdict.Enforceable {
			enforced = append(enforced, role)
		}
	}
	entries, err := r.agreementEntries(ctx, store, view, now)
	if err != nil {
		return summaries, false, err
	}
	activities := &v1alpha1.ProcessingActivityList{}
	if err := r.List(ctx, activities, client.InNamespace(store.Namespace)); err != nil {
		return summaries, false, fmt.Errorf("list processing activities: %w", err)
	}
	doc := accesspolicy.Build(store, enforced, entries)
	accesspolicy.SetActivityIDs(&doc, activities.Items)
	document, hash, err := accesspolicy.Encode(doc)
	if err != nil {
		return summaries, false, err
	}
	if _, err := applyChild(ctx, r.Client, resources.AccessPolicyConfigMap(store, document, hash), &corev1.ConfigMap{}); err != nil {
		return summaries, false, fmt.Errorf("apply access policy: %w", err)
	}
	return summaries, true, nil
}

// agreementEntries lists every agreement of the store as the proxy enforces
// it; one the operator refuses whatever the time (too many categories) is
// rendered as refused, so that its partner is recognised and gets nothing.
func (r *DossierStoreReconciler) agreementEntries(ctx context.Context, store *v1alpha1.DossierStore, view compliance.StoreView, now time.Time) ([]accesspolicy.Agreement, error) {
	agreements := &v1alpha1.SharingAgreementList{}
	if err := r.List(ctx, agreements, client.InNamespace(store.Namespace), client.MatchingFields{storeRefIndex: store.Name}); err != nil {
		return nil, fmt.Errorf("list sharing agreements: %w", err)
	}
	entries := make([]accesspolicy.Agreement, 0, len(agreements.Items))
	for i := range agreements.Items {
		a := &agreements.Items[i]
		if !a.DeletionTimestamp.IsZero() {
			continue
		}
		refused := ""
		if v := compliance.EvaluateAgreement(a, view, now); v.Reason == v1alpha1.ReasonMinimisationViolated {
			refused = v.Reason
		}
		entries = append(entries, accesspolicy.AgreementEntry(a, refused))
	}
	return entries, nil
}

// summariseAgreements counts the store's agreements by what their own
// reconciler reports, lists those that would share too much, and describes
// them for the SharingEnforced control.
func (r *DossierStoreReconciler) summariseAgreements(ctx context.Context, store *v1alpha1.DossierStore, now time.Time) (*v1alpha1.AgreementSummary, []string, []compliance.ProxyAgreement, error) {
	agreements := &v1alpha1.SharingAgreementList{}
	if err := r.List(ctx, agreements, client.InNamespace(store.Namespace), client.MatchingFields{storeRefIndex: store.Name}); err != nil {
		return nil, nil, nil, fmt.Errorf("list sharing agreements: %w", err)
	}
	if len(agreements.Items) == 0 {
		return nil, nil, nil, nil
	}
	proxied := make([]compliance.ProxyAgreement, 0, len(agreements.Items))
	view := compliance.StoreView{Found: true, Ready: true, Categories: store.Spec.DataCategories}
	summary := &v1alpha1.AgreementSummary{}
	var violating []string
	for _, a := range agreements.Items {
		if a.Status.InForce {
			summary.InForce++
		} else {
			summary.NotInForce++
			reason := v1alpha1.ReasonPending
			if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionAgreementInForce); c != nil {
				reason = c.Reason
			}
			if summary.Reasons == nil {
				summary.Reasons = map[string]int32{}
			}
			summary.Reasons[reason]++
		}
		if v := compliance.EvaluateAgreement(&a, view, now); v.Reason == v1alpha1.ReasonMinimisationViolated {
			violating = append(violating, a.Name)
		}
		if a.DeletionTimestamp.IsZero() {
			proxied = append(proxied, compliance.ProxyAgreementOf(&a))
		}
	}
	return summary, violating, proxied, nil
}

// summariseRetention turns the store's retention policies into its
// RetentionEnforced control.
func (r *DossierStoreReconciler) summariseRetention(ctx context.Context, store *v1alpha1.DossierStore) (v1alpha1.ComplianceControl, error) {
	policies := &v1alpha1.RetentionPolicyList{}
	if err := r.List(ctx, policies, client.InNamespace(store.Namespace), client.MatchingFields{storeRefIndex: store.Name}); err != nil {
		return compliance.RetentionNotListedControl(), fmt.Errorf("list retention policies: %w", err)
	}
	return compliance.StoreRetentionControl(retentionOutcomes(policies.Items)), nil
}

func retentionOutcomes(policies []v1alpha1.RetentionPolicy) []compliance.RetentionOutcome {
	out := make([]compliance.RetentionOutcome, 0, len(policies))
	for _, p := range policies {
		o := compliance.RetentionOutcome{Name: p.Name, Result: v1alpha1.ResultUnknown, Reason: v1alpha1.ReasonPending}
		for _, c := range p.Status.Compliance {
			if c.Control == v1alpha1.ControlRetentionEnforced {
				o.Result, o.Reason = c.Result, c.Reason
			}
			if c.Control == v1alpha1.ControlStatutoryRetention && c.Result == v1alpha1.ResultFail {
				o.Result, o.Reason = v1alpha1.ResultFail, c.Reason
				break
			}
		}
		out = append(out, o)
	}
	return out
}
