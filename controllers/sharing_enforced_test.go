package controllers_test

import (
	"context"
	"fmt"
	"k8s.io/client-go/util/retry"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// storeControl waits for a store control with the given result and reason.
func storeControl(s *v1alpha1.DossierStore, name string, result v1alpha1.ComplianceResult, reason string) func() error {
	return func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), s); err != nil {
			return err
		}
		c := findControl(s.Status.Compliance, name)
		if c == nil {
			return fmt.Errorf("no %s control", name)
		}
		if c.Result != result || c.Reason != reason {
			return fmt.Errorf("%s: %s/%s (%s), want %s/%s", name, c.Result, c.Reason, c.Message, result, reason)
		}
		return nil
	}
}

func agreementStatus(a *v1alpha1.SharingAgreement, mode v1alpha1.ConsentMode, enforced bool) func() error {
	return func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(a), a); err != nil {
			return err
		}
		if a.Status.ConsentMode != mode || a.Status.ProxyEnforced != enforced {
			return fmt.Errorf("status consentMode=%q proxyEnforced=%v, want %q %v", a.Status.ConsentMode, a.Status.ProxyEnforced, mode, enforced)
		}
		return nil
	}
}

// TestSharingEnforcedNeedsAConsentSource: a per-dossier agreement on a store
// without a consent source fails SharingEnforced, naming it, and is not
// enforced by the proxy; with spec.audit.consentURL both pass.
func TestSharingEnforcedNeedsAConsentSource(t *testing.T) {
	ctx := context.Background()
	ns, store := readyStore(t)
	eventually(t, timeout, storeControl(store, v1alpha1.ControlSharingEnforced, v1alpha1.ResultPass, v1alpha1.ReasonNoProxyAgreements))

	perDossier := newAgreement(t, ns, "school", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Consent = &v1alpha1.Consent{Mode: v1alpha1.ConsentPerDossier}
	})
	whole := newAgreement(t, ns, "huisarts", nil)
	egress := newAgreement(t, ns, "billing", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Direction, a.Spec.Partner.Subjects = v1alpha1.DirectionEgress, nil
		a.Spec.LegalBasis, a.Spec.Consent, a.Spec.LegalReference = v1alpha1.BasisPublicTask, nil, "Wmo 2015 art. 2.6.6"
		a.Spec.Partner.Type, a.Spec.Categories = v1alpha1.PartnerMunicipalityBilling, []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}
	})
	eventually(t, timeout, storeControl(store, v1alpha1.ControlSharingEnforced, v1alpha1.ResultFail, v1alpha1.ReasonConsentSourceMissing))
	if c := findControl(store.Status.Compliance, v1alpha1.ControlSharingEnforced); len(c.Evidence) != 1 || c.Evidence[0] != "SharingAgreement/school" {
		t.Errorf("evidence %v, want the per-dossier agreement only", c.Evidence)
	}
	eventually(t, timeout, agreementStatus(perDossier, v1alpha1.ConsentPerDossier, false))
	eventually(t, timeout, agreementStatus(whole, v1alpha1.ConsentAgreement, true))
	eventually(t, timeout, agreementStatus(egress, "", false))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionCompliant, metav1.ConditionFalse, ""))

	// The store's status may be written between the read and the update:
	// retry on a conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		store = getStore(t, store)
		store.Spec.Audit = &v1alpha1.AuditSpec{ConsentURL: "https://cases.example/api/consent/{dossier}?agreement={agreement}"}
		return k8s.Update(ctx, store)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, storeControl(store, v1alpha1.ControlSharingEnforced, v1alpha1.ResultPass, v1alpha1.ReasonAgreementsEnforced))
	eventually(t, timeout, agreementStatus(perDossier, v1alpha1.ConsentPerDossier, true))
}

// TestRoleThatCannotWorkIsNotReady: limited to assigned cases without an
// assignment source, or naming a partner's subject, a role is enforced but
// not Ready, with the reason.
func TestRoleThatCannotWorkIsNotReady(t *testing.T) {
	ns, store := readyStore(t)
	assigned := newRole(t, ns, "casework", func(r *v1alpha1.AccessRole) { r.Spec.AssignedCasesOnly = true })
	conds := func() []metav1.Condition { return assigned.Status.Conditions }
	eventually(t, timeout, func() error {
		return conditionIs(assigned, conds, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAssignmentSourceMissing)
	})
	eventually(t, timeout, func() error {
		return conditionIs(assigned, conds, "Enforced", metav1.ConditionTrue, "")
	})
	updateRetrying(t, store, func(store *v1alpha1.DossierStore) {
		store.Spec.Audit = &v1alpha1.AuditSpec{AssignmentURL: "https://cases.example/api/assignments/{dossier}/{user}"}
	})
	eventually(t, timeout, func() error {
		return conditionIs(assigned, conds, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})

	// A role naming the school's group, which an agreement names as its
	// partner subject, is not Ready once the agreement exists.
	both := newRole(t, ns, "zorgteam", func(r *v1alpha1.AccessRole) {
		r.Spec.Subjects = []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "coaches"}, {Kind: v1alpha1.SubjectGroup, Name: "regenboog-zorgteam"}}
	})
	bconds := func() []metav1.Condition { return both.Status.Conditions }
	eventually(t, timeout, func() error { return conditionIs(both, bconds, v1alpha1.ConditionReady, metav1.ConditionTrue, "") })
	newAgreement(t, ns, "school", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Partner.Subjects = []v1alpha1.PartnerSubject{{Kind: v1alpha1.PartnerSubjectGroup, Name: "regenboog-zorgteam"}}
	})
	eventually(t, timeout, func() error {
		return conditionIs(both, bconds, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPartnerSubjectOverlap)
	})
	c := findRoleCondition(both, v1alpha1.ConditionReady)
	if want := "spec.subjects[1] (Group) is a partner subject of SharingAgreement school"; !contains(c.Message, want) || contains(c.Message, "regenboog-zorgteam") {
		t.Errorf("message %q; want it to name %q and not the subject's name", c.Message, want)
	}
}

func findRoleCondition(r *v1alpha1.AccessRole, t string) metav1.Condition {
	for _, c := range r.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return metav1.Condition{}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
