package auditproxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// The cliëntervaringsonderzoek of the samples: the one export route and the
// ServiceAccount of its one role.
const (
	sampleSurveyRoute = "export-survey-addresses"
	sampleSurveyUser  = "system:serviceaccount:wijkteam:clientervaringsonderzoek-export"
)

// sampleDocuments are the access policies of the stores of config/samples,
// as accesspolicy.Build renders them for the reconciler, with every role of
// each store (none left out for failing a check, so nothing is refused that
// the reconciler would have allowed) and the register IDs of the samples'
// activities.
func sampleDocuments(t *testing.T) map[string]accesspolicy.Document {
	t.Helper()
	objs, err := testenv.Samples()
	if err != nil {
		t.Fatal(err)
	}
	var (
		stores     []v1alpha1.DossierStore
		roles      []v1alpha1.AccessRole
		agreements []v1alpha1.SharingAgreement
		activities []v1alpha1.ProcessingActivity
	)
	for _, u := range objs {
		var into any
		switch u.GetKind() {
		case "DossierStore":
			stores = append(stores, v1alpha1.DossierStore{})
			into = &stores[len(stores)-1]
		case "AccessRole":
			roles = append(roles, v1alpha1.AccessRole{})
			into = &roles[len(roles)-1]
		case "SharingAgreement":
			agreements = append(agreements, v1alpha1.SharingAgreement{})
			into = &agreements[len(agreements)-1]
		case "ProcessingActivity":
			activities = append(activities, v1alpha1.ProcessingActivity{})
			into = &activities[len(activities)-1]
		default:
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	docs := map[string]accesspolicy.Document{}
	for i := range stores {
		s := &stores[i]
		var own []v1alpha1.AccessRole
		for _, r := range roles {
			if r.Namespace == s.Namespace && r.Spec.StoreRef.Name == s.Name {
				own = append(own, r)
			}
		}
		var entries []accesspolicy.Agreement
		for j := range agreements {
			if a := &agreements[j]; a.Namespace == s.Namespace && a.Spec.StoreRef.Name == s.Name {
				entries = append(entries, accesspolicy.AgreementEntry(a, ""))
			}
		}
		var nsActivities []v1alpha1.ProcessingActivity
		for _, a := range activities {
			if a.Namespace == s.Namespace {
				nsActivities = append(nsActivities, a)
			}
		}
		doc := accesspolicy.Build(s, own, entries)
		accesspolicy.SetActivityIDs(&doc, nsActivities)
		docs[s.Namespace+"/"+s.Name] = doc
	}
	if len(docs) < 3 {
		t.Fatalf("%d stores in the samples; want three", len(docs))
	}
	return docs
}

// samplePath is a request path that matches route: {dossier} and every *
// filled in.
func samplePath(r accesspolicy.Route) string {
	return strings.NewReplacer("{dossier}", "D-1", "*", "x").Replace(r.Path)
}

// allAssigned says every dossier is assigned to everyone: the most a role
// limited to assigned cases could ever be granted.
type allAssigned struct{}

func (allAssigned) Assigned(context.Context, string, string) (bool, error) { return true, nil }

// TestSamplesSurveyRoleReadsNothingElse: in the samples, the role of the
// cliëntervaringsonderzoek may use its one export route and is refused on
// every other route of every store, even with every dossier assigned and a
// break-glass reason stated; on its own store's routes the refusal is
// recorded under the activity the route serves.
func TestSamplesSurveyRoleReadsNothingElse(t *testing.T) {
	survey := Identity{User: sampleSurveyUser}
	allowed := 0
	for name, doc := range sampleDocuments(t) {
		pol, err := NewPolicy(doc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, r := range doc.Routes {
			m, ok, err := pol.Match(r.Method, samplePath(r))
			if err != nil || !ok || m.Route.Name != r.Name {
				t.Fatalf("%s: %s %s matches %v (%v, %v); want route %s", name, r.Method, samplePath(r), m.Route, ok, err, r.Name)
			}
			for _, reason := range []string{"", "Melding 2026-118"} {
				d := pol.Authorise(context.Background(), survey, m, reason, allAssigned{})
				if r.Name == sampleSurveyRoute && reason == "" {
					if !d.Allowed || d.Activity != "clientervaringsonderzoek" {
						t.Errorf("%s: the survey role on its export route: %+v; want allowed under clientervaringsonderzoek", name, d)
					}
					allowed++
					continue
				}
				if r.Name != sampleSurveyRoute && d.Allowed {
					t.Errorf("%s: the survey role is allowed on route %s (%s %s, %v) with reason %q: %+v", name, r.Name, r.Action, r.Categories, r.Activities, reason, d)
				}
			}
		}
	}
	if allowed != 1 {
		t.Fatalf("the survey's export route was decided %d times; want once, in store wijkteam/wijkteam-dossiers", allowed)
	}
}

// TestProxySamplesSurveyRole: through the running proxy with the policy of
// the samples' neighbourhood team, the survey's ServiceAccount gets the
// addresses from its export route, and 403 from every other route; every
// refusal is recorded under the route's activity, the allowed export under
// the survey's register ID.
func TestProxySamplesSurveyRole(t *testing.T) {
	doc := sampleDocuments(t)["wijkteam/wijkteam-dossiers"]
	h := newHarnessWith(t, doc)
	token := h.iss.token(t, sampleSurveyUser, nil, nil)
	for _, r := range doc.Routes {
		exp := expectation{status: http.StatusForbidden, route: r.Name, actor: sampleSurveyUser, activity: doc.ActivityID(r.Activities[0])}
		if strings.Contains(r.Path, "{dossier}") {
			exp.dossier = "D-1"
		}
		if r.Name == sampleSurveyRoute {
			exp.allowed, exp.status = true, http.StatusOK
		}
		resp := h.do(h.direct, r.Method, samplePath(r), exp, bearer(token))
		if !exp.allowed && resp.problem.Type != ProblemAccessDenied {
			t.Errorf("route %s: problem %q; want access-denied", r.Name, resp.problem.Type)
		}
	}
	if id := doc.ActivityID("clientervaringsonderzoek"); id != "https://register.voorbeeldstad.nl/verwerkingen/clientervaringsonderzoek" {
		t.Errorf("the survey's register ID %q; want the samples' registerID", id)
	}
	h.stop()
	h.checkLog()
}
