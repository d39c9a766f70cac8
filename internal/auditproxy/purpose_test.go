package auditproxy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

const (
	activitySupport = "ondersteuning"
	activitySurvey  = "clientervaringsonderzoek"
	supportID       = "https://register.example.nl/verwerkingen/ondersteuning"
)

// purposeDocument is testDocument with processing activities: the role
// basis (identity and contact, read) serves ondersteuning only; the route
// list serves ondersteuning, survey-addresses (identity, read: within what
// basis grants) serves the cliëntervaringsonderzoek only, and survey-export
// is the survey's export route, used by the role survey that serves the
// survey and nothing else; survey-contacts serves both and asks for health,
// which no role grants.
func purposeDocument() accesspolicy.Document {
	doc := testDocument()
	for i := range doc.Routes {
		if doc.Routes[i].Name == "list" {
			doc.Routes[i].Activities = []string{activitySupport}
		}
	}
	doc.Routes = append(doc.Routes,
		accesspolicy.Route{Name: "survey-addresses", Method: "GET", Path: "/api/survey/addresses",
			Categories: []v1alpha1.DataCategory{"identity"}, Action: "read", Activities: []string{activitySurvey}},
		accesspolicy.Route{Name: "survey-export", Method: "GET", Path: "/api/survey/export",
			Categories: []v1alpha1.DataCategory{"identity"}, Action: "export", Activities: []string{activitySurvey}},
		accesspolicy.Route{Name: "survey-contacts", Method: "GET", Path: "/api/survey/contacts",
			Categories: []v1alpha1.DataCategory{"identity", "health"}, Action: "read", Activities: []string{activitySurvey, activitySupport}})
	for i := range doc.Roles {
		if doc.Roles[i].Name == "basis" {
			doc.Roles[i].Activities = []string{activitySupport}
		}
	}
	doc.Roles = append(doc.Roles, accesspolicy.Role{Name: "survey", Purpose: "p",
		Subjects:   []accesspolicy.Subject{{Kind: v1alpha1.SubjectServiceAccount, Namespace: "wijkteam", Name: "survey"}},
		Categories: []v1alpha1.DataCategory{"identity"}, Actions: []v1alpha1.Action{"read", "export"}, Activities: []string{activitySurvey}})
	doc.ActivityIDs = map[string]string{activitySupport: supportID}
	return doc
}

func TestAuthorisePurposeLimitation(t *testing.T) {
	pol, err := NewPolicy(purposeDocument())
	if err != nil {
		t.Fatal(err)
	}
	match := func(method, path string) RouteMatch {
		m, ok, err := pol.Match(method, path)
		if err != nil || !ok {
			t.Fatalf("%s %s matches no route: %v", method, path, err)
		}
		return m
	}
	coach := Identity{User: "bo@example.nl", Groups: []string{"coaches"}}
	survey := Identity{User: "system:serviceaccount:wijkteam:survey"}
	cases := []struct {
		name     string
		id       Identity
		method   string
		path     string
		allowed  bool
		activity string
		reason   DecisionReason
	}{
		{"role under A on a route of A", coach, "GET", "/api/dossiers", true, activitySupport, ReasonNone},
		// A denial records the activity the processing would have fallen
		// under: the route's, never the store's default.
		{"role under A on a route of B with matching categories", coach, "GET", "/api/survey/addresses", false, activitySurvey, ReasonActivityNotServed},
		{"role under A on a route without activities", coach, "GET", "/api/dossiers/D-9", false, "", ReasonCategoriesNotGranted},
		{"survey role on its export route", survey, "GET", "/api/survey/export", true, activitySurvey, ReasonNone},
		{"survey role on a route of another activity", survey, "GET", "/api/dossiers", false, activitySupport, ReasonActivityNotServed},
		{"survey role reads nothing else", survey, "GET", "/api/dossiers/D-9", false, "", ReasonCategoriesNotGranted},
		// Of a route of two activities, the one the caller's role serves
		// (the second) is recorded, not the route's first.
		{"role under A refused categories on a route of B and A", coach, "GET", "/api/survey/contacts", false, activitySupport, ReasonCategoriesNotGranted},
		{"survey role on a route of B and A", survey, "GET", "/api/survey/contacts", false, activitySurvey, ReasonCategoriesNotGranted},
		{"no role at all on a route of B and A", Identity{User: "nobody"}, "GET", "/api/survey/contacts", false, activitySurvey, ReasonCategoriesNotGranted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := pol.Authorise(context.Background(), tc.id, match(tc.method, tc.path), "", nil)
			if d.Allowed != tc.allowed || d.Activity != tc.activity || d.Reason != tc.reason {
				t.Fatalf("decision %+v; want allowed=%v activity=%q reason=%q", d, tc.allowed, tc.activity, tc.reason)
			}
			if route := match(tc.method, tc.path).Route; tc.reason == ReasonActivityNotServed && !slices.Equal(d.MissingActivities, route.Activities) {
				t.Errorf("denial names activities %v; want the route's %v", d.MissingActivities, route.Activities)
			}
		})
	}
}

// TestProxyPurposeLimitation: through the running proxy, a role allowed
// under activity A gets 403 naming activity B on a route of B, although it
// grants the route's categories; the event of the allowed request records
// A's register ID, and a route without activities keeps recording the
// store's ProcessingActivity.
func TestProxyPurposeLimitation(t *testing.T) {
	h := newHarnessWith(t, purposeDocument())
	coach := h.iss.token(t, "bo@example.nl", []string{"coaches"}, nil)

	h.do(h.direct, "GET", "/api/dossiers", expectation{allowed: true, status: 200, route: "list", actor: "bo@example.nl", activity: supportID}, bearer(coach))
	// The denial on the survey's route records the survey (by its name, as
	// the document has no register ID for it), not the store's default.
	r := h.do(h.direct, "GET", "/api/survey/addresses", expectation{status: 403, route: "survey-addresses", actor: "bo@example.nl", activity: activitySurvey}, bearer(coach))
	if r.problem.Type != ProblemAccessDenied || !slices.Equal(r.problem.MissingActivities, []string{activitySurvey}) || len(r.problem.MissingCategories) != 0 {
		t.Errorf("problem %+v; want access-denied naming activity %s and no missing category", r.problem, activitySurvey)
	}
	if want := `none of your roles serves processing activity clientervaringsonderzoek of route "survey-addresses"`; len(r.problem.Detail) < len(want) || r.problem.Detail[:len(want)] != want {
		t.Errorf("detail %q", r.problem.Detail)
	}
	// Refused for its categories on a route of both activities, the
	// coach's request records the one the coach's role serves.
	h.do(h.direct, "GET", "/api/survey/contacts", expectation{status: 403, route: "survey-contacts", actor: "bo@example.nl", activity: supportID}, bearer(coach))
	// Refused before the roles are looked at (no identity), a request is
	// recorded under the route's first activity.
	h.do(h.direct, "GET", "/api/survey/contacts", expectation{status: 401, route: "survey-contacts", actor: AnonymousActor, activity: activitySurvey})
	// A route without activities keeps the store's ProcessingActivity.
	h.do(h.direct, "GET", "/api/dossiers/D-9/safety", expectation{status: 403, route: "read-safety", actor: "bo@example.nl", dossier: "D-9"}, bearer(coach))
	h.stop()
	h.checkLog()
}

// TestAuthorisePartnerPurposeLimitation: a partner whose agreement serves
// activity A receives a route of A, and is refused a route of B that asks
// only for categories the agreement shares (the refusal recorded under B);
// an agreement naming no activity keeps working under the route's first
// activity.
func TestAuthorisePartnerPurposeLimitation(t *testing.T) {
	agreement := func(name, client string, activities ...string) accesspolicy.Agreement {
		return accesspolicy.Agreement{Name: name, Partner: "Onderzoeksbureau", PartnerType: v1alpha1.PartnerOther, Direction: v1alpha1.DirectionIngress,
			Subjects:   []accesspolicy.PartnerSubject{{Kind: v1alpha1.PartnerSubjectClient, Name: client}},
			Categories: []v1alpha1.DataCategory{"identity"}, Purpose: "p", LegalBasis: v1alpha1.BasisPublicTask, LegalReference: "Wmo 2015 art. 2.5.1",
			Activities: activities}
	}
	doc := purposeDocument()
	doc.Agreements = []accesspolicy.Agreement{agreement("bureau", "bureau", activitySurvey), agreement("legacy", "legacy")}
	pol, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	match := func(path string) RouteMatch {
		m, ok, err := pol.Match("GET", path)
		if err != nil || !ok {
			t.Fatalf("GET %s matches no route: %v", path, err)
		}
		return m
	}
	decide := func(client, path string) Decision {
		id := Identity{User: client, ClientID: client}
		return pol.AuthorisePartner(context.Background(), pol.PartnerAgreements(id), match(path), time.Now(), nil)
	}
	if d := decide("bureau", "/api/survey/addresses"); !d.Allowed || d.Activity != activitySurvey {
		t.Errorf("survey route for the survey agreement: %+v; want allowed under %s", d, activitySurvey)
	}
	if d := decide("bureau", "/api/dossiers"); d.Allowed || d.Reason != ReasonActivityNotServed || !slices.Equal(d.MissingActivities, []string{activitySupport}) || d.Activity != activitySupport {
		t.Errorf("support route for the survey agreement: %+v; want activity-not-served naming %s, recorded under it", d, activitySupport)
	}
	// Refused for its categories on a route of both activities, the
	// partner's request records the activity its agreement serves.
	if d := decide("bureau", "/api/survey/contacts"); d.Allowed || d.Reason != ReasonCategoriesNotShared || d.Activity != activitySurvey {
		t.Errorf("a route of both activities asking for health: %+v; want categories-not-shared under %s", d, activitySurvey)
	}
	if d := decide("legacy", "/api/dossiers"); !d.Allowed || d.Activity != activitySupport {
		t.Errorf("an agreement without activities: %+v; want allowed as before, recorded under %s", d, activitySupport)
	}
}
