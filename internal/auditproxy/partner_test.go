package auditproxy

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// sharingT0 is "now" in the partner tests; the school's window is
// [T0-1h, T0+1h).
var sharingT0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func tp(d time.Duration) *time.Time { t := sharingT0.Add(d); return &t }

// sharingDocument is testDocument with the agreements of one store: a
// school with per-dossier consent, a GP with one consent for the whole
// agreement, Veilig Thuis on a vital interest, an expired and a refused one.
func sharingDocument() accesspolicy.Document {
	doc := testDocument()
	cats := func(c ...v1alpha1.DataCategory) []v1alpha1.DataCategory { return c }
	group := func(n string) []accesspolicy.PartnerSubject {
		return []accesspolicy.PartnerSubject{{Kind: v1alpha1.PartnerSubjectGroup, Name: n}}
	}
	doc.Routes = append(doc.Routes,
		accesspolicy.Route{Name: "read-plan", Method: "GET", Path: "/api/dossiers/{dossier}/plan", Categories: cats("identity", "plan"), Action: "read"})
	doc.Agreements = []accesspolicy.Agreement{
		{Name: "school", Partner: "De Regenboog", PartnerType: v1alpha1.PartnerSchool, Direction: v1alpha1.DirectionIngress,
			Subjects:   []accesspolicy.PartnerSubject{{Kind: v1alpha1.PartnerSubjectClient, Name: "regenboog-lvs"}, {Kind: v1alpha1.PartnerSubjectGroup, Name: "regenboog"}},
			Categories: cats("identity", "contact", "request", "plan"), Purpose: "Afstemming met school",
			LegalBasis: v1alpha1.BasisConsent, ConsentMode: v1alpha1.ConsentPerDossier, ValidFrom: tp(-time.Hour), ValidUntil: tp(time.Hour)},
		{Name: "huisarts", Partner: "Huisartsenpraktijk Oost", PartnerType: v1alpha1.PartnerGeneralPractitioner, Direction: v1alpha1.DirectionBoth,
			Subjects: group("huisarts"), Categories: cats("identity", "contact", "request"), Purpose: "Zorgafstemming",
			LegalBasis: v1alpha1.BasisConsent, ConsentMode: v1alpha1.ConsentAgreement, ConsentReference: "TOE-7"},
		{Name: "veilig-thuis", Partner: "Veilig Thuis Utrecht", PartnerType: v1alpha1.PartnerVeiligThuis, Direction: v1alpha1.DirectionIngress,
			Subjects: group("veilig-thuis"), Categories: cats("identity", "contact", "request", "safety"), Purpose: "Meldcode stap 5",
			LegalBasis: v1alpha1.BasisVitalInterest, ReviewBy: tp(24 * time.Hour)},
		{Name: "leerplicht", Partner: "Leerplicht", PartnerType: v1alpha1.PartnerOther, Direction: v1alpha1.DirectionIngress,
			Subjects: group("leerplicht"), Categories: cats("identity"), Purpose: "Verzuim",
			LegalBasis: v1alpha1.BasisLegalObligation, LegalReference: "Leerplichtwet art. 18", ValidUntil: tp(-time.Minute)},
		{Name: "greedy", Partner: "Iemand", PartnerType: v1alpha1.PartnerOther, Direction: v1alpha1.DirectionIngress,
			Subjects: group("greedy"), Categories: cats("plan"), Purpose: "Te veel",
			LegalBasis: v1alpha1.BasisConsent, ConsentMode: v1alpha1.ConsentAgreement, ConsentReference: "TOE-9", Refused: "MinimisationViolated"},
	}
	return doc
}

// fakeConsents answers per dossier: D-1 given, D-2 given for identity
// only, D-3 withdrawn, D-4 ended, DOWN an error, SLOW waits for the
// context; anything else none.
type fakeConsents struct {
	calls atomic.Int32
	last  ConsentQuery
}

func (f *fakeConsents) Consent(ctx context.Context, q ConsentQuery) (ConsentAnswer, error) {
	f.calls.Add(1)
	f.last = q
	switch q.Dossier {
	case "D-1":
		return ConsentAnswer{Given: true}, nil
	case "D-2":
		return ConsentAnswer{Given: true, Categories: []v1alpha1.DataCategory{"identity"}}, nil
	case "D-3":
		return ConsentAnswer{Withdrawn: true}, nil
	case "D-4":
		return ConsentAnswer{Given: true, Until: sharingT0.Add(-time.Second)}, nil
	case "DOWN":
		return ConsentAnswer{}, errors.New("consent source answered 500")
	case "SLOW":
		<-ctx.Done()
		return ConsentAnswer{}, ctx.Err()
	}
	return ConsentAnswer{}, nil
}

func TestAuthorisePartner(t *testing.T) {
	pol, err := NewPolicy(sharingDocument())
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		allowed   bool
		reason    DecisionReason
		agreement string
		consent   auditlog.ConsentOutcome
		notice    bool
		asked     bool
	}
	cases := []struct {
		name    string
		id      Identity
		method  string
		path    string
		at      time.Duration
		sources bool // with a consent source
		want    want
	}{
		{"per-dossier consent given", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-1/plan", 0, true,
			want{true, ReasonNone, "school", auditlog.ConsentGiven, false, true}},
		{"same by group", Identity{User: "juf@regenboog.nl", Groups: []string{"regenboog"}}, "GET", "/api/dossiers/D-1/plan", 0, true,
			want{true, ReasonNone, "school", auditlog.ConsentGiven, false, true}},
		{"no consent for the dossier", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-9/plan", 0, true,
			want{false, ReasonConsentNotGiven, "school", auditlog.ConsentNone, false, true}},
		{"consent withdrawn", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-3/plan", 0, true,
			want{false, ReasonConsentWithdrawn, "school", auditlog.ConsentWithdrawn, false, true}},
		{"consent ended", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-4/plan", 0, true,
			want{false, ReasonConsentNotGiven, "school", auditlog.ConsentNone, false, true}},
		{"consent narrower than the route", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-2/plan", 0, true,
			want{false, ReasonConsentNotGiven, "school", auditlog.ConsentNone, false, true}},
		{"consent source down", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/DOWN/plan", 0, true,
			want{false, ReasonConsentUnavailable, "school", auditlog.ConsentUnavailable, false, true}},
		{"no consent source", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-1/plan", 0, false,
			want{false, ReasonConsentUnavailable, "school", auditlog.ConsentUnavailable, false, false}},
		{"route without a dossier", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers", 0, true,
			want{false, ReasonConsentNotGiven, "school", auditlog.ConsentNotChecked, false, false}},
		{"category outside the agreement", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-1/safety", 0, true,
			want{false, ReasonCategoriesNotShared, "school", auditlog.ConsentNotChecked, false, false}},
		{"write is never shared", Identity{ClientID: "regenboog-lvs"}, "PUT", "/api/dossiers/D-1/plan", 0, true,
			want{false, ReasonActionNotShared, "school", auditlog.ConsentNotChecked, false, false}},
		{"window closed", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-1/plan", time.Hour, true,
			want{false, ReasonNoAgreementInForce, "school", auditlog.ConsentNotChecked, false, false}},
		{"window not open yet", Identity{ClientID: "regenboog-lvs"}, "GET", "/api/dossiers/D-1/plan", -2 * time.Hour, true,
			want{false, ReasonNoAgreementInForce, "school", auditlog.ConsentNotChecked, false, false}},
		{"whole-agreement consent", Identity{Groups: []string{"huisarts"}}, "GET", "/api/dossiers/D-9", 0, false,
			want{true, ReasonNone, "huisarts", auditlog.ConsentAgreementCovers, false, false}},
		{"vital interest without look-up, flagged for notice", Identity{Groups: []string{"veilig-thuis"}}, "GET", "/api/dossiers/D-9/safety", 0, true,
			want{true, ReasonNone, "veilig-thuis", auditlog.ConsentNotRequired, true, false}},
		{"vital interest past its review", Identity{Groups: []string{"veilig-thuis"}}, "GET", "/api/dossiers/D-9/safety", 24 * time.Hour, true,
			want{false, ReasonNoAgreementInForce, "veilig-thuis", auditlog.ConsentNotChecked, false, false}},
		{"expired legal obligation", Identity{Groups: []string{"leerplicht"}}, "GET", "/api/dossiers", 0, true,
			want{false, ReasonNoAgreementInForce, "leerplicht", auditlog.ConsentNotChecked, false, false}},
		{"refused agreement", Identity{Groups: []string{"greedy"}}, "GET", "/api/dossiers/D-1/plan", 0, true,
			want{false, ReasonNoAgreementInForce, "greedy", auditlog.ConsentNotChecked, false, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			partner := pol.PartnerAgreements(tc.id)
			if len(partner) == 0 {
				t.Fatal("the caller is not recognised as a partner")
			}
			m, ok, err := pol.Match(tc.method, tc.path)
			if !ok || err != nil {
				t.Fatalf("no route for %s %s: %v", tc.method, tc.path, err)
			}
			src := &fakeConsents{}
			var consents ConsentChecker
			if tc.sources {
				consents = src
			}
			d := pol.AuthorisePartner(context.Background(), partner, m, sharingT0.Add(tc.at), consents)
			got := want{d.Allowed, d.Reason, "", d.Sharing.Consent, d.Sharing.NoticeRequired, src.calls.Load() > 0}
			if d.Sharing.Agreement != nil {
				got.agreement = d.Sharing.Agreement.Name
			}
			if got != tc.want {
				t.Errorf("got %+v (detail %q); want %+v", got, d.Detail, tc.want)
			}
			if !d.Allowed && d.Detail == "" {
				t.Error("a denial without detail")
			}
			if strings.Contains(d.Detail, "D-") {
				t.Errorf("the detail names the dossier: %q", d.Detail)
			}
			if got.asked && (src.last.Agreement != "school" || src.last.Partner != "De Regenboog") {
				t.Errorf("consent asked as %+v", src.last)
			}
			if len(d.Roles) != 0 {
				t.Errorf("a partner's decision counted roles %v", d.Roles)
			}
		})
	}
}

func TestSlowConsentSourceIsRefused(t *testing.T) {
	pol, err := NewPolicy(sharingDocument())
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{ClientID: "regenboog-lvs"}
	m, _, _ := pol.Match("GET", "/api/dossiers/SLOW/plan")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d := pol.AuthorisePartner(ctx, pol.PartnerAgreements(id), m, sharingT0, &fakeConsents{})
	if d.Allowed || d.Reason != ReasonConsentUnavailable || d.Sharing.ConsentErr == nil {
		t.Errorf("a slow consent source: %+v", d)
	}
}

// A subject named by both a role and an agreement is a partner: its
// requests are decided from agreements only, the role grants it nothing.
func TestPartnerIsNeverDecidedByRoles(t *testing.T) {
	doc := sharingDocument()
	// Group coaches holds role basis (identity, contact read); make it a
	// partner too, with an agreement that is not in force.
	doc.Agreements[3].Subjects = append(doc.Agreements[3].Subjects, accesspolicy.PartnerSubject{Kind: v1alpha1.PartnerSubjectGroup, Name: "coaches"})
	pol, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{User: "cor@example.nl", Groups: []string{"coaches"}}
	partner := pol.PartnerAgreements(id)
	if len(partner) != 1 || partner[0].Name != "leerplicht" {
		t.Fatalf("partner agreements %v", partner)
	}
	m, _, _ := pol.Match("GET", "/api/dossiers")
	if d := pol.AuthorisePartner(context.Background(), partner, m, sharingT0, nil); d.Allowed {
		t.Error("the role granted a partner subject what its agreements do not")
	}
	if d := pol.Authorise(context.Background(), id, m, "", nil); !d.Allowed {
		t.Error("test premise: the role alone would allow the request")
	}
}

func TestPartnerSubjectMatches(t *testing.T) {
	subjects := []accesspolicy.PartnerSubject{
		{Kind: v1alpha1.PartnerSubjectUser, Name: "lvs@regenboog.nl"},
		{Kind: v1alpha1.PartnerSubjectGroup, Name: "regenboog"},
		{Kind: v1alpha1.PartnerSubjectServiceAccount, Namespace: "school", Name: "lvs"},
		{Kind: v1alpha1.PartnerSubjectClient, Name: "regenboog-lvs"},
	}
	for _, tc := range []struct {
		id   Identity
		want bool
	}{
		{Identity{User: "lvs@regenboog.nl"}, true},
		{Identity{User: "x", Groups: []string{"regenboog"}}, true},
		{Identity{User: "system:serviceaccount:school:lvs"}, true},
		{Identity{User: "system:serviceaccount:other:lvs"}, false},
		{Identity{User: "x", ClientID: "regenboog-lvs"}, true},
		{Identity{User: "regenboog-lvs"}, false}, // a user name is not a client id
		{Identity{ClientID: "lvs@regenboog.nl"}, false},
		{Identity{}, false},
	} {
		if got := partnerSubjectMatches(subjects, tc.id); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestPolicyRefusesAgreementsItCannotEnforce(t *testing.T) {
	for name, mutate := range map[string]func(*accesspolicy.Agreement){
		"no name":           func(a *accesspolicy.Agreement) { a.Name = "" },
		"no categories":     func(a *accesspolicy.Agreement) { a.Categories = nil },
		"unknown basis":     func(a *accesspolicy.Agreement) { a.LegalBasis = "Whim" },
		"consent sans mode": func(a *accesspolicy.Agreement) { a.ConsentMode = "" },
		"unknown subject":   func(a *accesspolicy.Agreement) { a.Subjects[0].Kind = "Robot" },
	} {
		doc := sharingDocument()
		mutate(&doc.Agreements[0])
		if _, err := NewPolicy(doc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	doc := sharingDocument()
	doc.Agreements = append(doc.Agreements, doc.Agreements[0])
	if _, err := NewPolicy(doc); err == nil {
		t.Error("duplicate agreement accepted")
	}
}

// A machine-to-machine client is named by azp, else client_id; a partner
// agreement's Client subject matches it.
func TestTokenClientID(t *testing.T) {
	iss := newTestIssuer(t)
	a, err := NewAuthenticator(context.Background(), IdentityConfig{OIDC: &OIDCConfig{
		IssuerURL: iss.srv.URL, Audience: testAudience, StaticKeys: []crypto.PublicKey{&iss.key.PublicKey}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		extra map[string]any
		want  string
	}{
		{map[string]any{"azp": "regenboog-lvs"}, "regenboog-lvs"},
		{map[string]any{"client_id": "regenboog-lvs"}, "regenboog-lvs"},
		{map[string]any{"azp": "first", "client_id": "second"}, "first"},
		{nil, ""},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set("Authorization", "Bearer "+iss.token(t, "service-account-lvs", nil, tc.extra))
		id, aerr := a.Authenticate(r)
		if aerr != nil || id.ClientID != tc.want {
			t.Errorf("%v: client id %q (%v), want %q", tc.extra, id.ClientID, aerr, tc.want)
		}
	}
}
