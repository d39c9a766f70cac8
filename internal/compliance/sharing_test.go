package compliance

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func testAgreement(mutate func(*v1alpha1.SharingAgreementSpec)) *v1alpha1.SharingAgreement {
	a := &v1alpha1.SharingAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: "school-plan"},
		Spec: v1alpha1.SharingAgreementSpec{
			StoreRef:       v1alpha1.StoreReference{Name: "jgz"},
			Partner:        v1alpha1.Partner{Type: v1alpha1.PartnerSchool, Name: "Basisschool De Linde"},
			LegalBasis:     v1alpha1.BasisPublicTask,
			LegalReference: "Jeugdwet art. 7.1.4",
			Categories:     []v1alpha1.DataCategory{v1alpha1.CategoryPlan, v1alpha1.CategoryIdentity, v1alpha1.CategoryContact},
			Purpose:        "coordinating support at school",
		},
	}
	if mutate != nil {
		mutate(&a.Spec)
	}
	return a
}

func mt(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

func TestEvaluateAgreement(t *testing.T) {
	// The store holds no request data: sharing it breaks minimisation even
	// though a school may receive it.
	store := StoreView{Found: true, Ready: true, Categories: []v1alpha1.DataCategory{
		v1alpha1.CategoryIdentity, v1alpha1.CategoryContact, v1alpha1.CategoryPlan, v1alpha1.CategoryHealth, v1alpha1.CategorySafety}}
	soon, later := testNow.Add(time.Hour), testNow.AddDate(0, 1, 0)
	publicTask := wantControl{"LawfulBasis", "Pass", "BasisDocumented", []string{"PublicTask under Jeugdwet art. 7.1.4"}, []string{"Jeugdwet art. 7.1.4"}}
	within := wantControl{"DataMinimisation", "Pass", "WithinMaximum", []string{"[identity, contact, plan] within the maximum for a School"}, nil}
	consent := func(withdrawn bool) func(*v1alpha1.SharingAgreementSpec) {
		return func(s *v1alpha1.SharingAgreementSpec) {
			s.LegalBasis, s.LegalReference = v1alpha1.BasisConsent, ""
			s.Consent = &v1alpha1.Consent{Reference: "C-2026-17", Withdrawn: withdrawn}
		}
	}
	vital := func(review *metav1.Time) func(*v1alpha1.SharingAgreementSpec) {
		return func(s *v1alpha1.SharingAgreementSpec) {
			s.LegalBasis, s.LegalReference, s.Justification, s.ReviewDate = v1alpha1.BasisVitalInterest, "", "Meldcode step 4", review
		}
	}
	with := func(ms ...func(*v1alpha1.SharingAgreementSpec)) func(*v1alpha1.SharingAgreementSpec) {
		return func(s *v1alpha1.SharingAgreementSpec) {
			for _, m := range ms {
				m(s)
			}
		}
	}
	categories := func(cs ...v1alpha1.DataCategory) func(*v1alpha1.SharingAgreementSpec) {
		return func(s *v1alpha1.SharingAgreementSpec) { s.Categories = cs }
	}
	cases := []struct {
		name    string
		spec    func(*v1alpha1.SharingAgreementSpec)
		store   StoreView
		inForce bool
		reason  string
		message []string
		notify  bool
		next    time.Time
		basis   wantControl
		minim   wantControl
	}{
		{"in force on a public task", nil, store, true, "InForce",
			[]string{"sharing [identity, contact, plan] with Basisschool De Linde on the basis of PublicTask"}, true, time.Time{}, publicTask, within},
		{"in force until the end of its window", func(s *v1alpha1.SharingAgreementSpec) { s.ValidUntil = mt(later) }, store, true, "InForce",
			[]string{"on the basis of PublicTask until 2026-04-15T12:00:00Z"}, true, later, publicTask, within},
		{"in force from exactly now", func(s *v1alpha1.SharingAgreementSpec) { s.ValidFrom = mt(testNow) }, store, true, "InForce", nil, true, time.Time{}, publicTask, within},
		{"not yet valid", func(s *v1alpha1.SharingAgreementSpec) { s.ValidFrom, s.ValidUntil = mt(soon), mt(later) }, store, false, "NotYetValid",
			[]string{"takes effect at 2026-03-15T13:00:00Z"}, true, soon, publicTask, within},
		{"expires exactly now", func(s *v1alpha1.SharingAgreementSpec) { s.ValidUntil = mt(testNow) }, store, false, "Expired",
			[]string{"expired at 2026-03-15T12:00:00Z"}, true, time.Time{}, publicTask, within},
		{"expired long ago", func(s *v1alpha1.SharingAgreementSpec) {
			s.ValidFrom, s.ValidUntil = mt(testNow.AddDate(-2, 0, 0)), mt(testNow.AddDate(-1, 0, 0))
		},
			store, false, "Expired", []string{"expired at 2025-03-15T12:00:00Z"}, true, time.Time{}, publicTask, within},
		{"suspended", func(s *v1alpha1.SharingAgreementSpec) { s.Suspended = true }, store, false, "Suspended",
			[]string{"suspended"}, true, time.Time{}, publicTask, within},
		{"suspension decides before the window", func(s *v1alpha1.SharingAgreementSpec) { s.Suspended, s.ValidFrom = true, mt(soon) }, store, false, "Suspended",
			nil, true, soon, publicTask, within},
		{"store not ready", nil, StoreView{Found: true, Categories: store.Categories}, false, "StoreNotReady",
			[]string{`DossierStore "jgz" is not Ready`}, true, time.Time{}, publicTask, within},
		{"store not found", nil, StoreView{}, false, "StoreNotFound",
			[]string{`DossierStore "jgz" does not exist`}, true, time.Time{}, publicTask, within},
		{"store not found decides before the partner's maximum", categories(v1alpha1.CategoryHealth), StoreView{}, false, "StoreNotFound",
			[]string{`DossierStore "jgz" does not exist`}, true, time.Time{}, publicTask,
			wantControl{"DataMinimisation", "Fail", "MinimisationViolated", []string{"a School may receive at most [identity, contact, request, plan], not [health]"}, nil}},
		{"more than a school may receive", categories(v1alpha1.CategoryIdentity, v1alpha1.CategoryHealth), store, false, "MinimisationViolated",
			[]string{"a School may receive at most [identity, contact, request, plan], not [health]"}, true, time.Time{}, publicTask,
			wantControl{"DataMinimisation", "Fail", "MinimisationViolated", []string{"not [health]"}, nil}},
		{"a category the store does not hold", categories(v1alpha1.CategoryRequest), store, false, "MinimisationViolated",
			[]string{"categories [request] are not held by the store"}, true, time.Time{}, publicTask,
			wantControl{"DataMinimisation", "Fail", "MinimisationViolated", []string{"categories [request] are not held by the store"}, nil}},
		{"both minimisation problems are named", categories(v1alpha1.CategoryFinance), store, false, "MinimisationViolated",
			[]string{"categories [finance] are not held by the store; a School may receive at most [identity, contact, request, plan], not [finance]"},
			true, time.Time{}, publicTask, wantControl{"DataMinimisation", "Fail", "MinimisationViolated", []string{"[finance]"}, nil}},
		{"minimisation decides before a missing consent", with(consent(false), func(s *v1alpha1.SharingAgreementSpec) {
			s.Consent, s.Categories = nil, []v1alpha1.DataCategory{v1alpha1.CategoryHealth}
		}), store, false, "MinimisationViolated", []string{"not [health]"}, false, time.Time{},
			wantControl{"LawfulBasis", "Fail", "ConsentMissing", []string{"no consent is recorded"}, nil},
			wantControl{"DataMinimisation", "Fail", "MinimisationViolated", []string{"not [health]"}, nil}},
		{"consent given", consent(false), store, true, "InForce", []string{"on the basis of Consent"}, false, time.Time{},
			wantControl{"LawfulBasis", "Pass", "BasisDocumented", []string{"consent of the client"}, []string{"consent C-2026-17"}}, within},
		{"consent missing", with(consent(false), func(s *v1alpha1.SharingAgreementSpec) { s.Consent = nil }), store, false, "ConsentMissing",
			[]string{"no consent is recorded"}, false, time.Time{}, wantControl{"LawfulBasis", "Fail", "ConsentMissing", []string{"no consent"}, nil}, within},
		{"consent withdrawn", consent(true), store, false, "ConsentWithdrawn", []string{"consent C-2026-17 was withdrawn; sharing stopped"}, false, time.Time{},
			wantControl{"LawfulBasis", "Pass", "ConsentWithdrawn", []string{"withdrawn"}, []string{"consent C-2026-17 (withdrawn)"}}, within},
		{"a recorded withdrawal in the past ends sharing without the flag", with(consent(false), func(s *v1alpha1.SharingAgreementSpec) {
			s.Consent.WithdrawnAt = mt(testNow.Add(-time.Minute))
		}), store, false, "ConsentWithdrawn", []string{"consent C-2026-17 was withdrawn"}, false, time.Time{},
			wantControl{"LawfulBasis", "Pass", "ConsentWithdrawn", nil, []string{"consent C-2026-17 (withdrawn)"}}, within},
		{"a withdrawal recorded for later is the next transition", with(consent(false), func(s *v1alpha1.SharingAgreementSpec) {
			s.Consent.WithdrawnAt = mt(soon)
		}), store, true, "InForce", nil, false, soon,
			wantControl{"LawfulBasis", "Pass", "BasisDocumented", nil, []string{"consent C-2026-17"}}, within},
		{"per-dossier consent is documented as asked per disclosure", with(consent(false), func(s *v1alpha1.SharingAgreementSpec) {
			s.Consent = &v1alpha1.Consent{Mode: v1alpha1.ConsentPerDossier}
		}), store, true, "InForce", nil, false, time.Time{},
			wantControl{"LawfulBasis", "Pass", "BasisDocumented", []string{"recorded per dossier"}, []string{"per-dossier consent"}}, within},
		{"withdrawal decides before suspension", with(consent(true), func(s *v1alpha1.SharingAgreementSpec) { s.Suspended = true }), store, false, "ConsentWithdrawn",
			nil, false, time.Time{}, wantControl{"LawfulBasis", "Pass", "ConsentWithdrawn", nil, []string{"consent C-2026-17 (withdrawn)"}}, within},
		{"withdrawn consent stops sharing on another basis too", func(s *v1alpha1.SharingAgreementSpec) {
			s.Consent = &v1alpha1.Consent{Reference: "C-1", Withdrawn: true}
		}, store, false, "ConsentWithdrawn", []string{"consent C-1 was withdrawn"}, true, time.Time{}, publicTask, within},
		{"vital interest before its review", vital(mt(later)), store, true, "InForce", []string{"on the basis of VitalInterest"}, true, later,
			wantControl{"LawfulBasis", "Pass", "BasisDocumented", []string{"vital interest", "review by 2026-04-15T12:00:00Z"},
				[]string{"justification recorded", "review 2026-04-15T12:00:00Z"}}, within},
		{"vital interest review due exactly now", vital(mt(testNow)), store, false, "ReviewOverdue", []string{"due for review"}, true, time.Time{},
			wantControl{"LawfulBasis", "Fail", "ReviewOverdue", []string{"due for review", "review date is renewed"}, nil}, within},
		{"vital interest without a review date", vital(nil), store, false, "ReviewOverdue", nil, true, time.Time{},
			wantControl{"LawfulBasis", "Fail", "ReviewOverdue", []string{"due for review"}, nil}, within},
		{"next transition is the earliest future boundary", with(vital(mt(later)), func(s *v1alpha1.SharingAgreementSpec) {
			s.ValidFrom, s.ValidUntil = mt(testNow.Add(-time.Hour)), mt(soon)
		}), store, true, "InForce", []string{"until 2026-03-15T13:00:00Z"}, true, soon,
			wantControl{"LawfulBasis", "Pass", "BasisDocumented", nil, []string{"justification recorded", "review 2026-04-15T12:00:00Z"}}, within},
		{"an expired window still wakes for the review date", with(vital(mt(later)), func(s *v1alpha1.SharingAgreementSpec) {
			s.ValidUntil = mt(testNow.Add(-time.Minute))
		}), store, false, "Expired", nil, true, later,
			wantControl{"LawfulBasis", "Pass", "BasisDocumented", nil, []string{"justification recorded", "review 2026-04-15T12:00:00Z"}}, within},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := EvaluateAgreement(testAgreement(tc.spec), tc.store, testNow)
			if v.InForce != tc.inForce || v.Reason != tc.reason {
				t.Errorf("verdict = in force %v, %s (%q); want %v, %s", v.InForce, v.Reason, v.Message, tc.inForce, tc.reason)
			}
			if v.Message == "" {
				t.Errorf("verdict has no message")
			}
			assertContains(t, "message", v.Message, tc.message)
			if v.NotifyClient != tc.notify {
				t.Errorf("NotifyClient = %v; want %v", v.NotifyClient, tc.notify)
			}
			if !v.NextTransition.Equal(tc.next) {
				t.Errorf("NextTransition = %s; want %s", v.NextTransition, tc.next)
			}
			assertControls(t, v.Controls, tc.basis, tc.minim)
		})
	}
}

// TestPartnerMaxima pins the most each partner type may receive, in the
// canonical order, and checks that one category more is refused.
func TestPartnerMaxima(t *testing.T) {
	all := "[identity, bsn, contact, request, plan, reports, decisions, health, safety, finance, family]"
	want := map[string]string{
		"ReferralIndex":             "[identity, contact]",
		"MunicipalityBilling":       "[identity, bsn, contact, decisions, finance]",
		"School":                    "[identity, contact, request, plan]",
		"GeneralPractitioner":       "[identity, bsn, contact, request, plan, reports, health, family]",
		"HousingCorporation":        "[identity, contact, request, finance]",
		"CareProvider":              "[identity, bsn, contact, request, plan, reports, decisions, health, safety, family]",
		"VeiligThuis":               all,
		"CertifiedInstitution":      all,
		"CouncilForChildProtection": all,
		"Police":                    "[identity, contact, safety]",
		"ComplaintsCommittee":       "[identity, contact, request, plan, reports, decisions]",
		"Ombudsman":                 "[identity, contact, request, plan, reports, decisions]",
		"DisciplinaryBoard":         "[identity, request, plan, reports, decisions, health, safety, family]",
		"Inspectorate":              "[identity, contact, request, plan, reports, decisions, health, safety, family]",
		"Other":                     "[identity, contact]",
	}
	if len(PartnerMaxima) != len(want) {
		t.Errorf("PartnerMaxima has %d partner types; want %d", len(PartnerMaxima), len(want))
	}
	everything := StoreView{Found: true, Ready: true, Categories: v1alpha1.AllDataCategories}
	for partner, categories := range want {
		t.Run(partner, func(t *testing.T) {
			maximum, ok := PartnerMaxima[v1alpha1.PartnerType(partner)]
			if !ok {
				t.Fatalf("no maximum for partner type %s", partner)
			}
			if got := joinCategories(maximum); got != categories {
				t.Errorf("maximum = %s; want %s", got, categories)
			}
			spec := &v1alpha1.SharingAgreementSpec{Partner: v1alpha1.Partner{Type: v1alpha1.PartnerType(partner)}, Categories: maximum}
			if c := minimisationControl(spec, everything); c.Result != "Pass" || c.Reason != "WithinMaximum" {
				t.Errorf("sharing exactly the maximum: %s/%s (%s); want Pass/WithinMaximum", c.Result, c.Reason, c.Message)
			}
			for _, extra := range v1alpha1.AllDataCategories {
				if strings.Contains(categories, string(extra)) {
					continue
				}
				spec.Categories = append(append([]v1alpha1.DataCategory{}, maximum...), extra)
				c := minimisationControl(spec, everything)
				if c.Result != "Fail" || c.Reason != "MinimisationViolated" || !strings.Contains(c.Message, "not ["+string(extra)+"]") {
					t.Errorf("sharing %s too: %s/%s (%s); want Fail/MinimisationViolated naming it", extra, c.Result, c.Reason, c.Message)
				}
			}
		})
	}
	// A partner type unknown to the table may receive nothing.
	spec := &v1alpha1.SharingAgreementSpec{Partner: v1alpha1.Partner{Type: "Newspaper"}, Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}}
	if c := minimisationControl(spec, everything); c.Result != "Fail" || !strings.Contains(c.Message, "a Newspaper may receive at most [], not [identity]") {
		t.Errorf("unknown partner type: %s/%s (%s); want Fail naming the type", c.Result, c.Reason, c.Message)
	}
}

func TestTransferControl(t *testing.T) {
	mismatch := []string{"does not match the agreement's state"}
	cases := []struct {
		name                  string
		inForce, policyExists bool
		want                  wantControl
	}{
		{"access while in force", true, true, wantControl{"TransferControl", "Pass", "AccessWhileInForce",
			[]string{"exists while the agreement is in force"}, []string{"NetworkPolicy/share-school-plan"}}},
		{"no access out of force", false, false, wantControl{"TransferControl", "Pass", "NoAccessOutOfForce",
			[]string{"no network access"}, nil}},
		{"in force without access", true, false, wantControl{"TransferControl", "Fail", "NetworkAccessMismatch", mismatch, nil}},
		{"access left after the agreement ended", false, true, wantControl{"TransferControl", "Fail", "NetworkAccessMismatch", mismatch, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, TransferControl(tc.inForce, tc.policyExists, "share-school-plan"), tc.want)
		})
	}
}
