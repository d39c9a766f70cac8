package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// readyStore creates a Ready store with categories identity, contact, plan.
func readyStore(t *testing.T) (string, *v1alpha1.DossierStore) {
	t.Helper()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	return ns, store
}

func at(d time.Duration) *metav1.Time {
	return &metav1.Time{Time: fakeClock.Now().Add(d).UTC().Truncate(time.Second)}
}

func newAgreement(t *testing.T, ns, name string, mutate func(*v1alpha1.SharingAgreement)) *v1alpha1.SharingAgreement {
	t.Helper()
	a := &v1alpha1.SharingAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.SharingAgreementSpec{
			StoreRef: v1alpha1.StoreReference{Name: "dossiers"},
			Partner: v1alpha1.Partner{Type: v1alpha1.PartnerSchool, Name: "De Regenboog", Namespace: "school",
				Subjects: []v1alpha1.PartnerSubject{{Kind: v1alpha1.PartnerSubjectClient, Name: "regenboog-lvs"}}},
			Direction:  v1alpha1.DirectionIngress,
			LegalBasis: v1alpha1.BasisConsent,
			Consent:    &v1alpha1.Consent{Reference: "TOE-1"},
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryPlan},
			Purpose:    "Afstemming met school",
			ValidFrom:  at(-time.Hour),
			ValidUntil: at(time.Hour),
		},
	}
	if mutate != nil {
		mutate(a)
	}
	if err := k8s.Create(context.Background(), a); err != nil {
		t.Fatalf("create agreement %s: %v", name, err)
	}
	return a
}

func agreementCondition(a *v1alpha1.SharingAgreement, t string, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		return conditionIs(a, func() []metav1.Condition { return a.Status.Conditions }, t, status, reason)
	}
}

func policyExists(ns, name string) (bool, error) {
	err := k8s.Get(context.Background(), key(ns, name), &networkingv1.NetworkPolicy{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func TestAgreementsInAndOutOfForcePerLegalBasis(t *testing.T) {
	ns, _ := readyStore(t)
	cases := []struct {
		name     string
		mutate   func(*v1alpha1.SharingAgreement)
		inForce  bool
		reason   string
		notify   bool
		ready    bool
		complies bool
	}{
		{"consent", nil, true, "InForce", false, true, true},
		{"consent-withdrawn", func(a *v1alpha1.SharingAgreement) { a.Spec.Consent.Withdrawn = true }, false, "ConsentWithdrawn", false, true, true},
		// A recorded withdrawal ends sharing even without the withdrawn flag.
		{"consent-withdrawn-at-in-the-past", func(a *v1alpha1.SharingAgreement) { a.Spec.Consent.WithdrawnAt = at(-time.Minute) }, false, "ConsentWithdrawn", false, true, true},
		{"consent-withdrawal-scheduled", func(a *v1alpha1.SharingAgreement) { a.Spec.Consent.WithdrawnAt = at(30 * time.Minute) }, true, "InForce", false, true, true},
		{"inspectorate-after-a-calamity", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent, a.Spec.LegalReference = v1alpha1.BasisLegalObligation, nil, "Jeugdwet art. 4.1.8"
			a.Spec.Partner.Type = v1alpha1.PartnerInspectorate
		}, true, "InForce", true, true, true},
		{"complaints-committee-beyond-its-maximum", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent, a.Spec.LegalReference = v1alpha1.BasisLegalObligation, nil, "Jeugdwet art. 4.2.1"
			a.Spec.Partner.Type, a.Spec.Categories = v1alpha1.PartnerComplaintsCommittee, []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryFinance}
		}, false, "MinimisationViolated", true, false, false},
		{"legal-obligation", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent, a.Spec.LegalReference = v1alpha1.BasisLegalObligation, nil, "Jeugdwet art. 7.1.4.1"
			a.Spec.Partner.Type = v1alpha1.PartnerCertifiedInstitution
		}, true, "InForce", true, true, true},
		{"vital-interest", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent = v1alpha1.BasisVitalInterest, nil
			a.Spec.Justification, a.Spec.ReviewDate = "Acute onveiligheid van een kind volgens de Meldcode", at(24*time.Hour)
			a.Spec.Partner.Type = v1alpha1.PartnerVeiligThuis
		}, true, "InForce", true, true, true},
		{"vital-interest-review-overdue", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent = v1alpha1.BasisVitalInterest, nil
			a.Spec.Justification, a.Spec.ReviewDate = "Acute onveiligheid van een kind volgens de Meldcode", at(-time.Minute)
			a.Spec.Partner.Type = v1alpha1.PartnerVeiligThuis
		}, false, "ReviewOverdue", true, false, false},
		{"public-task", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent, a.Spec.LegalReference = v1alpha1.BasisPublicTask, nil, "Wmo 2015 art. 2.6.6"
			a.Spec.Partner.Type, a.Spec.Categories = v1alpha1.PartnerMunicipalityBilling, []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}
		}, true, "InForce", true, true, true},
		{"suspended", func(a *v1alpha1.SharingAgreement) { a.Spec.Suspended = true }, false, "Suspended", false, true, true},
		{"not-yet-valid", func(a *v1alpha1.SharingAgreement) {
			a.Spec.ValidFrom = at(time.Hour)
			a.Spec.ValidUntil = at(2 * time.Hour)
		}, false, "NotYetValid", false, true, true},
		{"expired", func(a *v1alpha1.SharingAgreement) {
			a.Spec.ValidFrom = at(-2 * time.Hour)
			a.Spec.ValidUntil = at(-time.Hour)
		}, false, "Expired", false, true, true},
		{"minimisation-partner-maximum", func(a *v1alpha1.SharingAgreement) {
			a.Spec.LegalBasis, a.Spec.Consent, a.Spec.LegalReference = v1alpha1.BasisLegalObligation, nil, "Jeugdwet art. 7.1.4.1"
			a.Spec.Partner.Type, a.Spec.Categories = v1alpha1.PartnerReferralIndex, []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryPlan}
		}, false, "MinimisationViolated", true, false, false},
		{"minimisation-not-in-store", func(a *v1alpha1.SharingAgreement) {
			a.Spec.Partner.Type, a.Spec.Categories = v1alpha1.PartnerGeneralPractitioner, []v1alpha1.DataCategory{v1alpha1.CategoryHealth}
		}, false, "MinimisationViolated", false, false, false},
		{"store-not-found", func(a *v1alpha1.SharingAgreement) { a.Spec.StoreRef.Name = "missing" }, false, "StoreNotFound", false, false, true},
	}
	agreements := map[string]*v1alpha1.SharingAgreement{}
	for _, tc := range cases {
		agreements[tc.name] = newAgreement(t, ns, tc.name, tc.mutate)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := agreements[tc.name]
			status := metav1.ConditionFalse
			if tc.inForce {
				status = metav1.ConditionTrue
			}
			eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, status, tc.reason))
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(a), a); err != nil {
				t.Fatal(err)
			}
			exists, err := policyExists(ns, resources.AgreementPolicyName(a))
			if err != nil {
				t.Fatal(err)
			}
			if exists != tc.inForce || a.Status.InForce != tc.inForce {
				t.Errorf("NetworkPolicy exists=%v, status.inForce=%v; want %v", exists, a.Status.InForce, tc.inForce)
			}
			if a.Status.ClientNotificationRequired != tc.notify {
				t.Errorf("clientNotificationRequired=%v; want %v", a.Status.ClientNotificationRequired, tc.notify)
			}
			if err := agreementCondition(a, v1alpha1.ConditionReady, boolStatus(tc.ready), "")(); err != nil {
				t.Error(err)
			}
			if err := agreementCondition(a, v1alpha1.ConditionCompliant, boolStatus(tc.complies), "")(); err != nil {
				t.Error(err)
			}
		})
	}
	// The not-yet-valid agreement knows when it will start.
	nyv := agreements["not-yet-valid"]
	if nyv.Status.NextTransition == nil || !nyv.Status.NextTransition.Equal(nyv.Spec.ValidFrom) {
		t.Errorf("nextTransition %v; want validFrom %v", nyv.Status.NextTransition, nyv.Spec.ValidFrom)
	}
	// A scheduled withdrawal is the next transition.
	sched := agreements["consent-withdrawal-scheduled"]
	if sched.Status.NextTransition == nil || !sched.Status.NextTransition.Equal(sched.Spec.Consent.WithdrawnAt) {
		t.Errorf("nextTransition %v; want withdrawnAt %v", sched.Status.NextTransition, sched.Spec.Consent.WithdrawnAt)
	}
	// status.inForce is stored as false, not left out, on an agreement that
	// was never in force (the "In Force" column is never blank).
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SharingAgreement"))
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(nyv), u); err != nil {
		t.Fatal(err)
	}
	if v, found, err := unstructured.NestedBool(u.Object, "status", "inForce"); err != nil || !found || v {
		t.Errorf("status.inForce of a never-in-force agreement: value %v, present %v (err %v); want false, present", v, found, err)
	}
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

func TestShortWindowOpensAndClosesOnTime(t *testing.T) {
	ns, _ := readyStore(t)
	opens, closes := fakeClock.Now().Add(3*time.Second), fakeClock.Now().Add(7*time.Second)
	a := newAgreement(t, ns, "short", func(a *v1alpha1.SharingAgreement) {
		a.Spec.ValidFrom, a.Spec.ValidUntil = &metav1.Time{Time: opens}, &metav1.Time{Time: closes}
	})
	name := resources.AgreementPolicyName(a)
	var appeared, vanished time.Time
	deadline := closes.Add(10 * time.Second)
	for fakeClock.Now().Before(deadline) && vanished.IsZero() {
		exists, err := policyExists(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		now := fakeClock.Now()
		if exists && appeared.IsZero() {
			appeared = now
		}
		if !exists && !appeared.IsZero() {
			vanished = now
		}
		time.Sleep(50 * time.Millisecond)
	}
	// metav1.Time has second precision, so the window is [opens, closes) to the second.
	opens, closes = opens.Truncate(time.Second), closes.Truncate(time.Second)
	if appeared.IsZero() || appeared.Before(opens) || appeared.After(opens.Add(2*time.Second)) {
		t.Errorf("policy appeared at %s; want within 2s after %s", appeared, opens)
	}
	if vanished.IsZero() || vanished.Before(closes) || vanished.After(closes.Add(2*time.Second)) {
		t.Errorf("policy vanished at %s; want within 2s after %s", vanished, closes)
	}
	eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, metav1.ConditionFalse, "Expired"))
}

func TestWithdrawingConsentRemovesAccess(t *testing.T) {
	ns, _ := readyStore(t)
	a := newAgreement(t, ns, "consent", nil)
	eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, metav1.ConditionTrue, "InForce"))
	updateRetrying(t, a, func(a *v1alpha1.SharingAgreement) {
		a.Spec.Consent.Withdrawn, a.Spec.Consent.WithdrawnAt = true, at(0)
	})
	withdrawn := time.Now()
	eventually(t, timeout, func() error {
		if exists, err := policyExists(ns, resources.AgreementPolicyName(a)); err != nil || exists {
			return fmt.Errorf("policy still there (err %v)", err)
		}
		return nil
	})
	if took := time.Since(withdrawn); took > 2*time.Second {
		t.Errorf("access removed %s after consent was withdrawn; want within 2s", took)
	}
	eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, metav1.ConditionFalse, "ConsentWithdrawn"))
}

func TestAgreementOnUnreadyStoreIsNotInForce(t *testing.T) {
	ns := newNamespace(t)
	newStore(t, ns, plainClass(t).Name)
	a := newAgreement(t, ns, "consent", nil)
	eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, metav1.ConditionFalse, "StoreNotReady"))
	if exists, _ := policyExists(ns, resources.AgreementPolicyName(a)); exists {
		t.Error("a store that is not secured shares nothing")
	}
}

func TestAgreementPolicyShape(t *testing.T) {
	ns, _ := readyStore(t)
	a := newAgreement(t, ns, "both", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Direction = v1alpha1.DirectionBoth
		a.Spec.Partner.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "leerlingvolgsysteem"}}
		a.Spec.Partner.CIDRs = []string{"192.0.2.0/28"}
		a.Spec.Partner.Ports = []v1alpha1.NetworkPort{{Port: 443}}
	})
	eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, metav1.ConditionTrue, "InForce"))
	p := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(context.Background(), key(ns, resources.AgreementPolicyName(a)), p); err != nil {
		t.Fatal(err)
	}
	if p.Spec.PodSelector.MatchLabels["app"] != "dossier" || len(p.Spec.Ingress) != 1 || len(p.Spec.Egress) != 1 {
		t.Fatalf("policy %+v", p.Spec)
	}
	in := p.Spec.Ingress[0]
	if len(in.Ports) != 1 || in.Ports[0].Port.IntVal != 8443 {
		t.Errorf("ingress ports %+v; want only the proxy port", in.Ports)
	}
	if in.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "school" || in.From[0].PodSelector.MatchLabels["app"] != "leerlingvolgsysteem" || in.From[1].IPBlock.CIDR != "192.0.2.0/28" {
		t.Errorf("ingress peers %+v", in.From)
	}
	if p.Spec.Egress[0].Ports[0].Port.IntVal != 443 {
		t.Errorf("egress ports %+v", p.Spec.Egress[0].Ports)
	}
}

func TestStoreSummarisesAgreementsAndMinimisation(t *testing.T) {
	ns, store := readyStore(t)
	newRole(t, ns, "coach")
	newAgreement(t, ns, "in-force", nil)
	newAgreement(t, ns, "expired", func(a *v1alpha1.SharingAgreement) {
		a.Spec.ValidFrom = at(-2 * time.Hour)
		a.Spec.ValidUntil = at(-time.Hour)
	})
	newAgreement(t, ns, "too-much", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Partner.Type = v1alpha1.PartnerReferralIndex
		a.Spec.Categories = []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryPlan}
	})
	eventually(t, timeout, func() error {
		s := getStore(t, store)
		sum := s.Status.Agreements
		if sum == nil || sum.InForce != 1 || sum.NotInForce != 2 || sum.Reasons["Expired"] != 1 || sum.Reasons["MinimisationViolated"] != 1 {
			return fmt.Errorf("summary %+v", sum)
		}
		c := findControl(s.Status.Compliance, "Minimisation")
		if c == nil || c.Result != v1alpha1.ResultFail || !strings.Contains(strings.Join(c.Evidence, ","), "SharingAgreement/too-much") {
			return fmt.Errorf("minimisation control %+v", c)
		}
		return nil
	})
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionCompliant, metav1.ConditionFalse, v1alpha1.ReasonControlFailed))
	// Readiness of the store does not depend on its agreements.
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
}

func policyDocument(t *testing.T, ns string) (string, string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), key(ns, "dossiers-access-policy"), cm); err != nil {
		return "", ""
	}
	return cm.Data[accesspolicy.ConfigMapKey], cm.Annotations[v1alpha1.AnnotationPolicyHash]
}

func TestRolesRenderTheSameDocumentWhateverTheOrder(t *testing.T) {
	ctx := context.Background()
	ns, _ := readyStore(t)
	mutations := map[string]func(*v1alpha1.AccessRole){
		"admin": func(r *v1alpha1.AccessRole) {
			r.Spec.Subjects = []v1alpha1.Subject{{Kind: "User", Name: "b@voorbeeldstad.nl"}, {Kind: "Group", Name: "admins"}}
		},
		"coach": func(r *v1alpha1.AccessRole) {
			r.Spec.Categories = []v1alpha1.DataCategory{"plan", "identity"}
			r.Spec.Actions = []v1alpha1.Action{"write", "read"}
			r.Spec.AssignedCasesOnly = true
		},
		"batch": func(r *v1alpha1.AccessRole) {
			r.Spec.Subjects = []v1alpha1.Subject{{Kind: "ServiceAccount", Name: "batch", Namespace: ns}}
		},
	}
	render := func(order []string) string {
		for _, name := range order {
			newRole(t, ns, name, mutations[name])
		}
		var doc string
		eventually(t, timeout, func() error {
			d, hash := policyDocument(t, ns)
			parsed, err := accesspolicy.Decode([]byte(d))
			if err != nil || len(parsed.Roles) != len(order) {
				return fmt.Errorf("policy has not all %d roles yet: %v", len(order), err)
			}
			// Every role reports the hash of the document that enforces it.
			for _, name := range order {
				r := &v1alpha1.AccessRole{}
				if err := k8s.Get(ctx, key(ns, name), r); err != nil {
					return err
				}
				if r.Status.PolicyHash != hash {
					return fmt.Errorf("role %s reports hash %q, policy has %q", name, r.Status.PolicyHash, hash)
				}
			}
			doc = d
			return nil
		})
		return doc
	}
	first := render([]string{"admin", "coach", "batch"})
	for _, name := range []string{"admin", "coach", "batch"} {
		if err := k8s.Delete(ctx, &v1alpha1.AccessRole{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, timeout, func() error {
		d, _ := policyDocument(t, ns)
		if parsed, err := accesspolicy.Decode([]byte(d)); err != nil || len(parsed.Roles) != 0 {
			return fmt.Errorf("deleted roles still in the policy")
		}
		return nil
	})
	second := render([]string{"batch", "admin", "coach"})
	if first != second {
		t.Errorf("the document depends on the order of creation:\n%s\nvs\n%s", first, second)
	}
}

func TestRoleOutsideStoreCategoriesIsNotEnforced(t *testing.T) {
	ns, _ := readyStore(t)
	newRole(t, ns, "ok")
	bad := newRole(t, ns, "health", func(r *v1alpha1.AccessRole) { r.Spec.Categories = []v1alpha1.DataCategory{"health"} })
	eventually(t, timeout, func() error {
		return conditionIs(bad, func() []metav1.Condition { return bad.Status.Conditions }, v1alpha1.ConditionReady, metav1.ConditionFalse, "CategoriesNotInStore")
	})
	eventually(t, timeout, func() error {
		if d, _ := policyDocument(t, ns); strings.Contains(d, `"health"`) || !strings.Contains(d, `"ok"`) {
			return fmt.Errorf("policy document:\n%s\nwants role ok and not role health", d)
		}
		return nil
	})
}

func TestBreakGlassReviewOverdueIsNonCompliant(t *testing.T) {
	ns, _ := readyStore(t)
	r := newRole(t, ns, "noodtoegang", func(r *v1alpha1.AccessRole) {
		r.Spec.BreakGlass = &v1alpha1.BreakGlass{ReviewPeriod: "P1D", LastReviewed: at(-48 * time.Hour)}
		r.Spec.Justification = "Acute zorg om de veiligheid van een kind bij afwezigheid"
	})
	conds := func() []metav1.Condition { return r.Status.Conditions }
	eventually(t, timeout, func() error {
		return conditionIs(r, conds, v1alpha1.ConditionCompliant, metav1.ConditionFalse, v1alpha1.ReasonControlFailed)
	})
	eventually(t, timeout, func() error { return conditionIs(r, conds, v1alpha1.ConditionEnforced, metav1.ConditionTrue, "") })
	if r.Status.ReviewDue == nil || r.Status.ReviewDue.After(fakeClock.Now()) {
		t.Errorf("reviewDue %v; want in the past", r.Status.ReviewDue)
	}
}

// policyAgreements reads the agreements of the store's rendered policy.
func policyAgreements(t *testing.T, ns string) map[string]accesspolicy.Agreement {
	t.Helper()
	d, _ := policyDocument(t, ns)
	out := map[string]accesspolicy.Agreement{}
	if d == "" {
		return out
	}
	doc, err := accesspolicy.Decode([]byte(d))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range doc.Agreements {
		out[a.Name] = a
	}
	return out
}

func TestAgreementsRenderedIntoThePolicyAndRemoved(t *testing.T) {
	ctx := context.Background()
	ns, _ := readyStore(t)
	school := newAgreement(t, ns, "school", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Consent = &v1alpha1.Consent{Mode: v1alpha1.ConsentPerDossier}
		a.Spec.Partner.Subjects = append(a.Spec.Partner.Subjects,
			v1alpha1.PartnerSubject{Kind: v1alpha1.PartnerSubjectGroup, Name: "regenboog-zorgteam"})
	})
	vt := newAgreement(t, ns, "veilig-thuis", func(a *v1alpha1.SharingAgreement) {
		a.Spec.LegalBasis, a.Spec.Consent = v1alpha1.BasisVitalInterest, nil
		a.Spec.Justification, a.Spec.ReviewDate = "Acute onveiligheid van een kind volgens de Meldcode", at(24*time.Hour)
		a.Spec.Partner.Type, a.Spec.Suspended = v1alpha1.PartnerVeiligThuis, true
	})
	greedy := newAgreement(t, ns, "greedy", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Partner.Type, a.Spec.Categories = v1alpha1.PartnerOther, []v1alpha1.DataCategory{v1alpha1.CategoryPlan}
	})
	eventually(t, timeout, func() error {
		if got := policyAgreements(t, ns); len(got) != 3 {
			return fmt.Errorf("policy holds %d agreements, want 3", len(got))
		}
		return nil
	})
	got := policyAgreements(t, ns)
	s := got[school.Name]
	if s.Partner != "De Regenboog" || s.PartnerType != v1alpha1.PartnerSchool || s.Direction != v1alpha1.DirectionIngress ||
		s.ConsentMode != v1alpha1.ConsentPerDossier || s.LegalBasis != v1alpha1.BasisConsent || s.Purpose != school.Spec.Purpose ||
		len(s.Categories) != 1 || s.Categories[0] != v1alpha1.CategoryPlan ||
		s.ValidFrom == nil || !s.ValidFrom.Equal(school.Spec.ValidFrom.Time) || s.ValidUntil == nil || !s.ValidUntil.Equal(school.Spec.ValidUntil.Time) ||
		len(s.Subjects) != 2 || s.Subjects[0].Kind != v1alpha1.PartnerSubjectClient || s.Subjects[1].Name != "regenboog-zorgteam" || s.Refused != "" {
		t.Errorf("school agreement rendered as %+v", s)
	}
	if v := got[vt.Name]; !v.Suspended || v.LegalBasis != v1alpha1.BasisVitalInterest || v.ReviewBy == nil || v.ConsentMode != "" {
		t.Errorf("Veilig Thuis agreement rendered as %+v", v)
	}
	if g := got[greedy.Name]; g.Refused != "MinimisationViolated" {
		t.Errorf("an agreement beyond its partner's maximum is rendered refused, got %+v", g)
	}

	// A withdrawal is rendered; a deleted agreement leaves the document.
	// The agreement's status may be written between the read and the
	// update: retry on a conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vt), vt); err != nil {
			return err
		}
		vt.Spec.Suspended = false
		return k8s.Update(ctx, vt)
	}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, school); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		got := policyAgreements(t, ns)
		if _, ok := got[school.Name]; ok {
			return fmt.Errorf("deleted agreement still in the policy")
		}
		if got[vt.Name].Suspended {
			return fmt.Errorf("lifted suspension not rendered")
		}
		return nil
	})
}
