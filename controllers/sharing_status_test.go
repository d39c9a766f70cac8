package controllers

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

func statusAgreement() *v1alpha1.SharingAgreement {
	return &v1alpha1.SharingAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: "school-plan", Namespace: "zorg", Generation: 3},
		Spec:       v1alpha1.SharingAgreementSpec{StoreRef: v1alpha1.StoreReference{Name: "jgz"}},
	}
}

// agreementControls are the two rows of a verdict, passing unless fail
// names one of them.
func agreementControls(fail string) []v1alpha1.ComplianceControl {
	rows := []v1alpha1.ComplianceControl{
		{Control: "LawfulBasis", Reference: "AVG art. 6(1)", Result: "Pass", Reason: "BasisDocumented", Message: "public task"},
		{Control: "DataMinimisation", Reference: "AVG art. 5(1)(c)", Result: "Pass", Reason: "WithinMaximum", Message: "within"},
	}
	for i := range rows {
		if rows[i].Control == fail {
			rows[i].Result, rows[i].Message = "Fail", "does not hold"
		}
	}
	return rows
}

func TestSetAgreementStatus(t *testing.T) {
	verdict := func(inForce bool, reason, message, fail string) compliance.AgreementVerdict {
		return compliance.AgreementVerdict{InForce: inForce, Reason: reason, Message: message, NotifyClient: true, Controls: agreementControls(fail)}
	}
	mismatch := wantCondition{"False", "DependencyUnavailable", []string{"partner's NetworkPolicy could not be brought in line"}}
	cases := []struct {
		name         string
		verdict      compliance.AgreementVerdict
		policyExists bool
		inForce      string // AgreementInForce
		inForceWhy   string
		ready        wantCondition
		compliant    wantCondition
		transfer     string // TransferControl reason
	}{
		{"in force with its NetworkPolicy", verdict(true, "InForce", "sharing [plan] with De Linde", ""), true,
			"True", "InForce", wantCondition{"True", "InForce", []string{"sharing [plan] with De Linde"}},
			wantCondition{"True", "AllControlsPass", []string{"all 3 controls pass"}}, "AccessWhileInForce"},
		// The reason of AgreementInForce is left unchecked here: it is
		// "InForce" on a False condition today.
		{"in force but the NetworkPolicy could not be applied", verdict(true, "InForce", "sharing", ""), false,
			"False", "DependencyUnavailable", mismatch, wantCondition{"False", "ControlFailed", []string{"TransferControl (AVG art. 5(1)(f); BIO 5.14, 8.22)"}}, "NetworkAccessMismatch"},
		{"suspended and no access", verdict(false, "Suspended", "the agreement is suspended", ""), false,
			"False", "Suspended", wantCondition{"True", "Suspended", []string{"suspended"}},
			wantCondition{"True", "AllControlsPass", nil}, "NoAccessOutOfForce"},
		{"expired but the NetworkPolicy is still there", verdict(false, "Expired", "expired", ""), true,
			"False", "Expired", mismatch, wantCondition{"False", "ControlFailed", []string{"TransferControl"}}, "NetworkAccessMismatch"},
		{"not yet valid", verdict(false, "NotYetValid", "takes effect at 2026-03-16T00:00:00Z", ""), false,
			"False", "NotYetValid", wantCondition{"True", "NotYetValid", []string{"takes effect"}}, wantCondition{"True", "AllControlsPass", nil}, "NoAccessOutOfForce"},
		{"consent withdrawn", verdict(false, "ConsentWithdrawn", "consent C-1 was withdrawn", ""), false,
			"False", "ConsentWithdrawn", wantCondition{"True", "ConsentWithdrawn", []string{"C-1"}}, wantCondition{"True", "AllControlsPass", nil}, "NoAccessOutOfForce"},
		{"minimisation violated", verdict(false, "MinimisationViolated", "a School may receive at most [plan]", "DataMinimisation"), false,
			"False", "MinimisationViolated", wantCondition{"False", "MinimisationViolated", []string{"a School may receive at most"}},
			wantCondition{"False", "ControlFailed", []string{"DataMinimisation (AVG art. 5(1)(c)): does not hold"}}, "NoAccessOutOfForce"},
		{"minimisation violated while the NetworkPolicy is still there", verdict(false, "MinimisationViolated", "too much", "DataMinimisation"), true,
			"False", "MinimisationViolated", wantCondition{"False", "MinimisationViolated", nil},
			wantCondition{"False", "ControlFailed", []string{"DataMinimisation"}}, "NetworkAccessMismatch"},
		{"store not found", verdict(false, "StoreNotFound", `DossierStore "jgz" does not exist`, ""), false,
			"False", "StoreNotFound", wantCondition{"False", "StoreNotFound", []string{`"jgz"`}}, wantCondition{"True", "AllControlsPass", nil}, "NoAccessOutOfForce"},
		{"store not ready", verdict(false, "StoreNotReady", `DossierStore "jgz" is not Ready`, ""), false,
			"False", "StoreNotReady", wantCondition{"False", "StoreNotReady", []string{`"jgz" is not Ready`}}, wantCondition{"True", "AllControlsPass", nil}, "NoAccessOutOfForce"},
		{"vital-interest review overdue", verdict(false, "ReviewOverdue", "due for review", "LawfulBasis"), false,
			"False", "ReviewOverdue", wantCondition{"False", "ReviewOverdue", []string{"due for review"}},
			wantCondition{"False", "ControlFailed", []string{"LawfulBasis (AVG art. 6(1)): does not hold"}}, "NoAccessOutOfForce"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := statusAgreement()
			setAgreementStatus(a, tc.verdict, tc.policyExists, false)
			st := &a.Status
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d; want 3", st.ObservedGeneration)
			}
			if want := tc.verdict.InForce && tc.policyExists; st.InForce != want {
				t.Errorf("inForce = %v; want %v (in force and enforced)", st.InForce, want)
			}
			if wantName := map[bool]string{true: "share-school-plan", false: ""}[tc.policyExists]; st.NetworkPolicyName != wantName {
				t.Errorf("networkPolicyName = %q; want %q", st.NetworkPolicyName, wantName)
			}
			if !st.ClientNotificationRequired {
				t.Errorf("clientNotificationRequired lost")
			}
			if got := controlNames(st.Compliance); !slices.Equal(got, []string{"LawfulBasis", "DataMinimisation", "TransferControl"}) {
				t.Fatalf("compliance rows = %v", got)
			}
			if got := st.Compliance[2].Reason; got != tc.transfer {
				t.Errorf("TransferControl reason = %s; want %s", got, tc.transfer)
			}
			c := meta.FindStatusCondition(st.Conditions, "AgreementInForce")
			if c == nil || string(c.Status) != tc.inForce || (tc.inForceWhy != "" && c.Reason != tc.inForceWhy) ||
				(c.Reason != "DependencyUnavailable" && c.Message != tc.verdict.Message) {
				t.Errorf("AgreementInForce = %+v; want %s/%s with the verdict's message", c, tc.inForce, tc.inForceWhy)
			}
			assertCondition(t, st.Conditions, "Ready", 3, tc.ready)
			assertCondition(t, st.Conditions, "Compliant", 3, tc.compliant)
			if len(st.Conditions) != 3 {
				t.Errorf("conditions = %v; want AgreementInForce, Compliant and Ready", conditionTypes(st.Conditions))
			}
		})
	}
}

func TestSetAgreementStatusNextTransitionAndNotification(t *testing.T) {
	a := statusAgreement()
	next := statusNow.Add(90 * time.Minute)
	a.Status.NetworkPolicyName = "share-school-plan"
	setAgreementStatus(a, compliance.AgreementVerdict{Reason: "NotYetValid", Message: "later", NextTransition: next, Controls: agreementControls("")}, false, false)
	if a.Status.NextTransition == nil || !a.Status.NextTransition.Time.Equal(next) {
		t.Errorf("nextTransition = %v; want %s", a.Status.NextTransition, next)
	}
	if a.Status.ClientNotificationRequired || a.Status.NetworkPolicyName != "" {
		t.Errorf("clientNotificationRequired %v, networkPolicyName %q; want false and cleared", a.Status.ClientNotificationRequired, a.Status.NetworkPolicyName)
	}
	setAgreementStatus(a, compliance.AgreementVerdict{Reason: "Expired", Message: "gone", Controls: agreementControls("")}, false, false)
	if a.Status.NextTransition != nil {
		t.Errorf("nextTransition = %v; want none once no boundary lies ahead", a.Status.NextTransition)
	}
}

// TestSetAgreementStatusConsentModeAndProxy: the consent mode is shown for
// a consent basis only, with its default, and proxyEnforced as given.
func TestSetAgreementStatusConsentModeAndProxy(t *testing.T) {
	inForce := compliance.AgreementVerdict{InForce: true, Reason: "InForce", Message: "sharing", Controls: agreementControls("")}
	cases := []struct {
		name     string
		basis    v1alpha1.LegalBasis
		consent  *v1alpha1.Consent
		enforced bool
		mode     v1alpha1.ConsentMode
	}{
		{"per dossier, enforced", v1alpha1.BasisConsent, &v1alpha1.Consent{Mode: v1alpha1.ConsentPerDossier}, true, v1alpha1.ConsentPerDossier},
		{"mode defaulted", v1alpha1.BasisConsent, &v1alpha1.Consent{Reference: "TOE-1"}, false, v1alpha1.ConsentAgreement},
		{"no consent basis", v1alpha1.BasisPublicTask, nil, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := statusAgreement()
			a.Status.ConsentMode, a.Status.ProxyEnforced = "stale", !tc.enforced
			a.Spec.LegalBasis, a.Spec.Consent = tc.basis, tc.consent
			setAgreementStatus(a, inForce, true, tc.enforced)
			if a.Status.ConsentMode != tc.mode || a.Status.ProxyEnforced != tc.enforced {
				t.Errorf("consentMode %q, proxyEnforced %v; want %q, %v", a.Status.ConsentMode, a.Status.ProxyEnforced, tc.mode, tc.enforced)
			}
		})
	}
}

func TestSetRoleStatus(t *testing.T) {
	due := statusNow.AddDate(0, 0, 30)
	controls := func(failReview bool) []v1alpha1.ComplianceControl {
		review := v1alpha1.ComplianceControl{Control: "BreakGlassReview", Reference: "AVG art. 32(1)(d)", Result: "Pass", Reason: "NotBreakGlass", Message: "not a break-glass role"}
		if failReview {
			review.Result, review.Reason, review.Message = "Fail", "ReviewOverdue", "the break-glass role was due for review"
		}
		return []v1alpha1.ComplianceControl{
			{Control: "NeedToKnow", Reference: "AVG art. 5(1)(c)", Result: "Pass", Reason: "WithinStoreCategories", Message: "grants"},
			review,
		}
	}
	cases := []struct {
		name                   string
		verdict                compliance.RoleVerdict
		policyName, policyHash string
		readiness              roleReadiness
		enforced               wantCondition
		compliant              wantCondition
		ready                  *wantCondition // nil: Ready says the same as Enforced
	}{
		{"enforced in the rendered policy", compliance.RoleVerdict{Enforceable: true, Reason: "Enforced", Message: "read of [plan] for 2 subject(s)", Controls: controls(false)},
			"jgz-access-policy", "sha256:abc", roleReadiness{ok: true}, wantCondition{"True", "Enforced", []string{"read of [plan]"}},
			wantCondition{"True", "AllControlsPass", []string{"all 2 controls pass"}}, nil},
		{"waiting for the policy", compliance.RoleVerdict{Enforceable: true, Reason: "Enforced", Message: "read", Controls: controls(false)},
			"", "", roleReadiness{ok: true}, wantCondition{"False", "PolicyPending", []string{"waiting for the store's access policy to be rendered"}},
			wantCondition{"True", "AllControlsPass", nil}, nil},
		{"a policy without a hash is not yet rendered", compliance.RoleVerdict{Enforceable: true, Reason: "Enforced", Message: "read", Controls: controls(false)},
			"jgz-access-policy", "", roleReadiness{ok: true}, wantCondition{"False", "PolicyPending", nil}, wantCondition{"True", "AllControlsPass", nil}, nil},
		{"outside the store's categories", compliance.RoleVerdict{Reason: "CategoriesNotInStore", Message: "categories [health] are not held by store jgz", Controls: controls(false)},
			"", "", roleReadiness{ok: true}, wantCondition{"False", "CategoriesNotInStore", []string{"[health]", "store jgz"}}, wantCondition{"True", "AllControlsPass", nil}, nil},
		{"not enforceable although a policy exists", compliance.RoleVerdict{Reason: "StoreNotFound", Message: `DossierStore "jgz" does not exist`, Controls: controls(false)},
			"jgz-access-policy", "sha256:abc", roleReadiness{ok: true}, wantCondition{"False", "StoreNotFound", []string{`"jgz"`}}, wantCondition{"True", "AllControlsPass", nil}, nil},
		{"break-glass review overdue stays enforced", compliance.RoleVerdict{Enforceable: true, Reason: "Enforced", Message: "read", ReviewDue: &due, Controls: controls(true)},
			"jgz-access-policy", "sha256:abc", roleReadiness{ok: true}, wantCondition{"True", "Enforced", nil},
			wantCondition{"False", "ControlFailed", []string{"BreakGlassReview (AVG art. 32(1)(d)): the break-glass role was due for review"}}, nil},
		{"enforced without its assignment source is not Ready", compliance.RoleVerdict{Enforceable: true, Reason: "Enforced", Message: "read", Controls: controls(false)},
			"jgz-access-policy", "sha256:abc", roleReadiness{reason: v1alpha1.ReasonAssignmentSourceMissing, message: "no spec.audit.assignmentURL"},
			wantCondition{"True", "Enforced", nil}, wantCondition{"True", "AllControlsPass", nil},
			&wantCondition{"False", "AssignmentSourceMissing", []string{"assignmentURL"}}},
		{"readiness does not matter while not enforced", compliance.RoleVerdict{Enforceable: true, Reason: "Enforced", Message: "read", Controls: controls(false)},
			"", "", roleReadiness{reason: v1alpha1.ReasonPartnerSubjectOverlap, message: "overlap"},
			wantCondition{"False", "PolicyPending", nil}, wantCondition{"True", "AllControlsPass", nil}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			role := &v1alpha1.AccessRole{ObjectMeta: metav1.ObjectMeta{Name: "read", Generation: 6}}
			role.Status.ReviewDue = &metav1.Time{Time: statusNow.AddDate(-1, 0, 0)} // stale
			setRoleStatus(role, tc.verdict, tc.policyName, tc.policyHash, tc.readiness)
			st := &role.Status
			if st.ObservedGeneration != 6 || st.PolicyConfigMap != tc.policyName || st.PolicyHash != tc.policyHash {
				t.Errorf("status = generation %d, policy %q %q; want 6, %q %q", st.ObservedGeneration, st.PolicyConfigMap, st.PolicyHash, tc.policyName, tc.policyHash)
			}
			switch {
			case tc.verdict.ReviewDue == nil && st.ReviewDue != nil:
				t.Errorf("reviewDue = %s; want none", st.ReviewDue)
			case tc.verdict.ReviewDue != nil && (st.ReviewDue == nil || !st.ReviewDue.Time.Equal(*tc.verdict.ReviewDue)):
				t.Errorf("reviewDue = %v; want %s", st.ReviewDue, tc.verdict.ReviewDue)
			}
			if got := controlNames(st.Compliance); !slices.Equal(got, []string{"NeedToKnow", "BreakGlassReview"}) {
				t.Errorf("compliance rows = %v", got)
			}
			assertCondition(t, st.Conditions, "Enforced", 6, tc.enforced)
			// Ready says the same as Enforced, unless the role cannot work.
			if tc.ready != nil {
				assertCondition(t, st.Conditions, "Ready", 6, *tc.ready)
			} else {
				assertCondition(t, st.Conditions, "Ready", 6, tc.enforced)
			}
			assertCondition(t, st.Conditions, "Compliant", 6, tc.compliant)
			if len(st.Conditions) != 3 {
				t.Errorf("conditions = %v; want Enforced, Compliant and Ready", conditionTypes(st.Conditions))
			}
		})
	}
}
