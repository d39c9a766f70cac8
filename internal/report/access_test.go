package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// What the access report must never show: the staff's accounts, the
// break-glass reason (free text), the dossier's pseudonym.
var accessSecrets = []string{"j.jansen@gemeente.example", "s.smit@gemeente.example", "kind in gevaar", fixturePseudonym}

const fixturePseudonym = "3f0c2a9d5b7e4c1f8a6d2e9b0c7f1a3e5d8b2c4f6a9e1d3b5c7f9a2e4d6b8c0a"

// FixtureAccessInput is the fixed input of the access report's golden files
// and of the browser test in cmd/dossierguard.
func FixtureAccessInput() AccessInput {
	in := fixtureInput()
	at := func(d time.Duration) time.Time { return fixtureNow.Add(d) }
	return AccessInput{
		Request: v1alpha1.DataSubjectRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "inzage-2026-041"},
			Spec: v1alpha1.DataSubjectRequestSpec{
				StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"}, Type: v1alpha1.RequestAccess,
				Dossier: fixturePseudonym, ReceivedAt: metav1.NewTime(fixtureNow.Add(-72 * time.Hour)),
				Requester: v1alpha1.Requester{Relation: v1alpha1.RelationParent},
				Subject:   v1alpha1.DataSubject{AgeBand: v1alpha1.AgeUnder12}, Handler: "privacy-officer",
			},
			Status: v1alpha1.DataSubjectRequestStatus{DueDate: "2026-12-26", State: v1alpha1.StateOpen},
		},
		Store:    in.Stores[0],
		Roles:    in.Roles,
		Policies: in.Policies,
		Events: []auditlog.Event{
			{Time: at(-24 * time.Hour), Actor: "s.smit@gemeente.example", Roles: []string{"wijkcoach"}, Action: "write",
				Categories: []string{"plan"}, Outcome: "allowed", DataSubject: fixturePseudonym},
			{Time: at(-48 * time.Hour), Actor: "j.jansen@gemeente.example", Roles: []string{"wijkcoach"}, Action: "read",
				Categories: []string{"identity", "plan"}, Outcome: "allowed", DataSubject: fixturePseudonym},
			{Time: at(-20 * time.Hour), Actor: "j.jansen@gemeente.example", Roles: []string{"wijkcoach"}, Action: "read",
				Categories: []string{"plan"}, Outcome: "allowed", BreakGlass: true, BreakGlassReason: "kind in gevaar, zie melding"},
			{Time: at(-10 * time.Hour), Actor: "ggd-client", Action: "export", Categories: []string{"identity"}, Outcome: "allowed",
				Sharing: &auditlog.Sharing{Agreement: "ggd-jeugdgezondheid", Partner: "GGD Voorbeeldregio", LegalBasis: "LegalObligation",
					LegalReference: "Wet publieke gezondheid art. 5"}},
			{Time: at(-5 * time.Hour), Actor: "s.smit@gemeente.example", Roles: []string{"wijkcoach"}, Action: "read",
				Categories: []string{"health"}, Outcome: "denied"},
			{Time: at(-4 * time.Hour), Actor: "s.smit@gemeente.example", Roles: []string{"wijkcoach"}, Action: "read",
				Categories: []string{"health"}, Outcome: "denied", Count: 3},
		},
	}
}

func TestBuildAccess(t *testing.T) {
	r := BuildAccess(FixtureAccessInput(), fixtureMeta(LangNL))
	if len(r.Accesses) != 4 || r.Refused != 4 {
		t.Fatalf("%d accesses, %d refused; want 4 allowed and 4 refused (one and an aggregate of 3)", len(r.Accesses), r.Refused)
	}
	for i := 1; i < len(r.Accesses); i++ {
		if r.Accesses[i].Time.Before(r.Accesses[i-1].Time) {
			t.Errorf("accesses not oldest first: %v before %v", r.Accesses[i-1].Time, r.Accesses[i].Time)
		}
	}
	staff, partner := r.Accesses[0], r.Accesses[3]
	if staff.Disclosure || staff.Organisation != "Gemeente Voorbeeldstad, Sociaal Wijkteam" || strings.Join(staff.Roles, ",") != "wijkcoach" {
		t.Errorf("staff access %+v; want the store's organisation and the role", staff)
	}
	if staff.Purpose == "" {
		t.Errorf("staff access has no purpose; want the role's")
	}
	if !partner.Disclosure || partner.Organisation != "GGD Voorbeeldregio" || partner.Basis != "LegalObligation" ||
		partner.LegalReference != "Wet publieke gezondheid art. 5" {
		t.Errorf("disclosure %+v; want the partner, its agreement and basis", partner)
	}
	if !r.Accesses[2].BreakGlass {
		t.Error("the break-glass access is not marked")
	}
	if len(r.Retention) == 0 || r.Retention[0].Policy != "wijkteam-bewaartermijn" || r.Retention[0].Period != "P15Y" {
		t.Errorf("retention %+v; want the store's policy's rules", r.Retention)
	}
	if strings.Join(r.Categories, ",") != "identity,plan" {
		t.Errorf("categories %v; want the store's", r.Categories)
	}
	// Policies and roles of another store do not apply.
	in := FixtureAccessInput()
	in.Policies[0].Spec.StoreRef.Name = "andere-opslag"
	if got := BuildAccess(in, fixtureMeta(LangNL)).Retention; len(got) != 0 {
		t.Errorf("retention of another store applied: %+v", got)
	}
}

// The rendered access report of the fixed input, in each language, is the
// golden file (`go test ./internal/report -update` rewrites it).
func TestRenderAccessGolden(t *testing.T) {
	for _, lang := range Langs {
		t.Run(string(lang), func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderAccess(&buf, BuildAccess(FixtureAccessInput(), fixtureMeta(lang))); err != nil {
				t.Fatal(err)
			}
			html := buf.String()
			for _, s := range accessSecrets {
				if strings.Contains(html, s) {
					t.Errorf("the access report shows %q", s)
				}
			}
			checkGolden(t, "access."+string(lang)+".golden.html", buf.Bytes())
		})
	}
}

func TestRenderAccessContents(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderAccess(&buf, BuildAccess(FixtureAccessInput(), fixtureMeta(LangNL))); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, w := range []string{`<html lang="nl">`, "Overzicht van uw gegevens", "Medewerker van Gemeente Voorbeeldstad, Sociaal Wijkteam",
		"Verstrekt aan GGD Voorbeeldregio", "Wettelijke verplichting (AVG art. 6(1)(c))", "Wet publieke gezondheid art. 5",
		"noodtoegang", "identiteitsgegevens", "P15Y", "einde hulpverlening", "Inzage", "Correctie", "Aanvulling", "Verwijdering",
		"Afscherming", "Verzet", "Autoriteit Persoonsgegevens", "een ouder", "2026-12-26"} {
		if !strings.Contains(html, w) {
			t.Errorf("access report lacks %q", w)
		}
	}
	for _, bad := range []string{"<script", "<link", "<img", " src=", "url("} {
		if strings.Contains(html, bad) {
			t.Errorf("access report contains %q", bad)
		}
	}
}
