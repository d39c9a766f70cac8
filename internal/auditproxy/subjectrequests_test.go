package auditproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

var (
	effectsNow       = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	testPseudonymKey = bytes.Repeat([]byte{3}, 32)
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// subjectRequest is a granted request of the test store on the dossier
// with this pseudonym, decided an hour before effectsNow.
func subjectRequest(typ v1alpha1.RequestType, pseudonym string, mutate ...func(*v1alpha1.DataSubjectRequest)) v1alpha1.DataSubjectRequest {
	r := v1alpha1.DataSubjectRequest{Spec: v1alpha1.DataSubjectRequestSpec{
		StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"}, Type: typ, Dossier: v1alpha1.DossierPseudonym(pseudonym),
		Decision: &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(effectsNow.Add(-time.Hour))},
	}}
	if typ == v1alpha1.RequestObjection {
		r.Spec.Objection = &v1alpha1.ObjectionSpec{Purpose: "tevredenheidsonderzoek", Routes: []string{"export"}}
	}
	for _, m := range mutate {
		m(&r)
	}
	return r
}

func routeNamed(t *testing.T, name string) *accesspolicy.Route {
	t.Helper()
	doc := testDocument()
	for i := range doc.Routes {
		if doc.Routes[i].Name == name {
			return &doc.Routes[i]
		}
	}
	t.Fatalf("no route %s", name)
	return nil
}

// TestRequestEffectsCheck: which request a restriction or objection
// refuses, for whom, and when.
func TestRequestEffectsCheck(t *testing.T) {
	a, b := DossierPseudonym(testPseudonymKey, "D-1"), DossierPseudonym(testPseudonymKey, "D-2")
	cases := []struct {
		name  string
		reqs  []v1alpha1.DataSubjectRequest
		route string
		roles []string
		dos   string
		at    time.Time
		want  Refusal
	}{
		{"no requests", nil, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"restriction of the whole dossier", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a)}, "read-dossier", []string{"basis"}, a, effectsNow, RefusedRestricted},
		{"another dossier is served", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a)}, "read-dossier", []string{"basis"}, b, effectsNow, NotRefused},
		{"an exempt role is served", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Restriction = &v1alpha1.RestrictionSpec{ExemptRoles: []string{"intake"}}
		})}, "read-dossier", []string{"basis", "intake"}, a, effectsNow, NotRefused},
		{"a restricted category on the route", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Restriction = &v1alpha1.RestrictionSpec{Categories: []v1alpha1.DataCategory{"contact"}}
		})}, "read-dossier", []string{"basis"}, a, effectsNow, RefusedRestricted},
		{"a restricted category not on the route", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Restriction = &v1alpha1.RestrictionSpec{Categories: []v1alpha1.DataCategory{"safety"}}
		})}, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"refused restriction", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Decision.Outcome = v1alpha1.DecisionRefused
		})}, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"undecided restriction", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Decision = nil
		})}, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"restriction ended", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.EndedAt = &metav1.Time{Time: effectsNow.Add(-time.Minute)}
		})}, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"restriction until later", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.EndedAt = &metav1.Time{Time: effectsNow.Add(time.Minute)}
		})}, "read-dossier", []string{"basis"}, a, effectsNow, RefusedRestricted},
		{"decided for a later moment", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a)}, "read-dossier", []string{"basis"}, a, effectsNow.Add(-2 * time.Hour), NotRefused},
		{"another store's request", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.StoreRef.Name = "cjg-dossiers"
		})}, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"an access request has no effect", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestAccess, a)}, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"objection to the route", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestObjection, a)}, "export", []string{"batch"}, a, effectsNow, RefusedObjected},
		{"objection: other routes go on", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestObjection, a)}, "read-dossier", []string{"basis"}, a, effectsNow, NotRefused},
		{"restriction wins over objection", []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestObjection, a), subjectRequest(v1alpha1.RequestRestriction, a)}, "export", []string{"batch"}, a, effectsNow, RefusedRestricted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := NewRequestEffects("wijkteam-dossiers", tc.reqs)
			if got, _ := set.Check(tc.dos, TargetOf(&accesspolicy.Document{}, routeNamed(t, tc.route), tc.roles), tc.at); got != tc.want {
				t.Errorf("Check = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRequestEffectsCheckActivities: an objection to a processing
// activity refuses, for its dossier, every route that serves it (a route
// without activities serves the document's processingActivity), names the
// activity, and leaves the other routes and dossiers alone; CheckAny finds
// an effect of any dossier.
func TestRequestEffectsCheckActivities(t *testing.T) {
	a, b := DossierPseudonym(testPseudonymKey, "D-1"), DossierPseudonym(testPseudonymKey, "D-2")
	byActivity := func(activities ...v1alpha1.ActivityName) func(*v1alpha1.DataSubjectRequest) {
		return func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Objection = &v1alpha1.ObjectionSpec{Purpose: "onderzoek", Activities: activities}
		}
	}
	doc := &accesspolicy.Document{ProcessingActivity: "ondersteuning"}
	survey := &accesspolicy.Route{Name: "survey", Categories: []v1alpha1.DataCategory{"identity"}, Activities: []string{"research", "survey"}}
	support := &accesspolicy.Route{Name: "read", Categories: []v1alpha1.DataCategory{"identity"}, Activities: []string{"ondersteuning"}}
	legacy := &accesspolicy.Route{Name: "legacy", Categories: []v1alpha1.DataCategory{"identity"}}
	cases := []struct {
		name         string
		req          v1alpha1.DataSubjectRequest
		route        *accesspolicy.Route
		dossier      string
		want         Refusal
		wantActivity string
	}{
		{"the route serves the activity", subjectRequest(v1alpha1.RequestObjection, a, byActivity("survey")), survey, a, RefusedObjected, "survey"},
		{"another dossier", subjectRequest(v1alpha1.RequestObjection, a, byActivity("survey")), survey, b, NotRefused, ""},
		{"a route of another activity", subjectRequest(v1alpha1.RequestObjection, a, byActivity("survey")), support, a, NotRefused, ""},
		{"a route without activities serves the store's", subjectRequest(v1alpha1.RequestObjection, a, byActivity("ondersteuning")), legacy, a, RefusedObjected, "ondersteuning"},
		{"an activity no route serves", subjectRequest(v1alpha1.RequestObjection, a, byActivity("bestaat-niet")), survey, a, NotRefused, ""},
		{"routes and activities together", subjectRequest(v1alpha1.RequestObjection, a, func(r *v1alpha1.DataSubjectRequest) {
			r.Spec.Objection = &v1alpha1.ObjectionSpec{Purpose: "p", Routes: []string{"read"}, Activities: []v1alpha1.ActivityName{"survey"}}
		}), support, a, RefusedObjected, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := NewRequestEffects("wijkteam-dossiers", []v1alpha1.DataSubjectRequest{tc.req})
			target := TargetOf(doc, tc.route, []string{"basis"})
			got, activity := set.Check(tc.dossier, target, effectsNow)
			if got != tc.want || activity != tc.wantActivity {
				t.Errorf("Check = %d %q, want %d %q", got, activity, tc.want, tc.wantActivity)
			}
			// The one effect is on A: some dossier is refused exactly when A is.
			wantAny, _ := set.Check(a, target, effectsNow)
			if anyDossier, _ := set.CheckAny(target, effectsNow); anyDossier != wantAny {
				t.Errorf("CheckAny = %d, want %d", anyDossier, wantAny)
			}
		})
	}
}

// swapRequests is a SubjectRequestSource a test changes while the proxy
// serves; nil is a source that is not synced.
type swapRequests struct {
	set atomic.Pointer[RequestEffects]
}

func (s *swapRequests) Effects() (*RequestEffects, error) {
	if e := s.set.Load(); e != nil {
		return e, nil
	}
	return nil, ErrRequestsNotSynced
}

// TestProxyRestrictionAndObjection: through the proxy, a restriction on A
// refuses A (403, "restricted", never why) and serves B, the exempt role,
// and the routes without a dossier; an objection refuses only its route;
// while the requests are not loaded every request for a dossier is 503;
// when the restriction ends A is served again. Every refusal is recorded.
func TestProxyRestrictionAndObjection(t *testing.T) {
	keys := newTestKeys(t)
	app := newUpstreamApp(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: keys.signing})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	p, policies := newTestProxy(t, app, w, keys, true)
	doc := integrationDocument()
	doc.Roles = append(doc.Roles, accesspolicy.Role{Name: "privacy-officer", Purpose: "p",
		Subjects:   []accesspolicy.Subject{{Kind: v1alpha1.SubjectUser, Name: "po@example.nl"}},
		Categories: []v1alpha1.DataCategory{"identity", "contact", "request"}, Actions: []v1alpha1.Action{"read"}})
	pol, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	policies.Set(pol)
	src := &swapRequests{}
	p.requests = src
	srv := httptest.NewServer(p)
	defer srv.Close()

	do := func(method, path, user, groups string) (int, Problem) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set(DefaultUserHeader, user)
		if groups != "" {
			req.Header.Set(DefaultGroupsHeader, groups)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var prob Problem
		if resp.StatusCode >= 400 {
			_ = json.NewDecoder(resp.Body).Decode(&prob)
		}
		return resp.StatusCode, prob
	}
	a := DossierPseudonym(keys.pseudonym, "D-1")

	// Not synced: every request is refused, also on a route without a
	// dossier, whose response may hold any dossier.
	if code, prob := do("GET", "/api/dossiers/D-2", "an@example.nl", "coaches"); code != 503 || prob.Type != ProblemRequestsUnavailable {
		t.Errorf("before sync: %d %s, want 503 %s", code, prob.Type, ProblemRequestsUnavailable)
	}
	if code, prob := do("GET", "/api/dossiers", "an@example.nl", "coaches"); code != 503 || prob.Type != ProblemRequestsUnavailable {
		t.Errorf("before sync, a route without a dossier: %d %s, want 503 %s", code, prob.Type, ProblemRequestsUnavailable)
	}

	restriction := subjectRequest(v1alpha1.RequestRestriction, a, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Restriction = &v1alpha1.RestrictionSpec{ExemptRoles: []string{"privacy-officer"}}
		r.Spec.Decision.DecidedAt = metav1.NewTime(time.Now().Add(-time.Minute))
	})
	objection := subjectRequest(v1alpha1.RequestObjection, DossierPseudonym(keys.pseudonym, "D-3"), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Objection.Routes = []string{"read-dossier"}
		r.Spec.Decision.DecidedAt = metav1.NewTime(time.Now().Add(-time.Minute))
	})
	src.set.Store(NewRequestEffects("wijkteam-dossiers", []v1alpha1.DataSubjectRequest{restriction, objection}))

	code, prob := do("GET", "/api/dossiers/D-1", "an@example.nl", "coaches")
	if code != 403 || prob.Type != ProblemRestricted || prob.Detail != "this dossier is restricted" {
		t.Errorf("restricted A: %d %s %q, want 403 restricted", code, prob.Type, prob.Detail)
	}
	if code, _ := do("GET", "/api/dossiers/d-1", "an@example.nl", "coaches"); code != 403 {
		t.Errorf("restricted A in lower case: %d, want 403 (the pseudonym is of the lower-cased id)", code)
	}
	if code, _ := do("GET", "/api/dossiers/D-2", "an@example.nl", "coaches"); code != 200 {
		t.Errorf("B while A is restricted: %d, want 200", code)
	}
	if code, _ := do("GET", "/api/dossiers/D-1", "po@example.nl", ""); code != 200 {
		t.Errorf("A by the exempt role: %d, want 200", code)
	}
	if code, prob := do("GET", "/api/dossiers/D-3", "an@example.nl", "coaches"); code != 403 || prob.Type != ProblemObjected {
		t.Errorf("objected route on D-3: %d %s, want 403 %s", code, prob.Type, ProblemObjected)
	}
	if code, _ := do("PUT", "/api/dossiers/D-3/plan", "an@example.nl", ""); code != 201 {
		t.Errorf("another route on D-3: %d, want 201", code)
	}

	// The restriction ends: A is served again.
	restriction.Spec.EndedAt = &metav1.Time{Time: time.Now()}
	src.set.Store(NewRequestEffects("wijkteam-dossiers", []v1alpha1.DataSubjectRequest{restriction, objection}))
	if code, _ := do("GET", "/api/dossiers/D-1", "an@example.nl", "coaches"); code != 200 {
		t.Errorf("A after the restriction ended: %d, want 200", code)
	}
	p.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	if strings.Contains(data, "D-1") || strings.Contains(data, "d-1") {
		t.Error("the audit log holds a raw dossier id")
	}
	if n := strings.Count(data, `"outcome":"denied"`); n != 5 {
		t.Errorf("%d denied events, want 5: two before the sync, A twice, the objected route", n)
	}
}

// TestProxyRestrictionRecordsActivity: a request the roles allow under an
// activity and a restriction refuses is recorded, and counted, under that
// activity, not the store's default.
func TestProxyRestrictionRecordsActivity(t *testing.T) {
	keys := newTestKeys(t)
	sink := &memorySink{}
	p, policies := newTestProxy(t, newUpstreamApp(t), sink, keys, true)
	doc := integrationDocument()
	for i := range doc.Routes {
		if doc.Routes[i].Name == "read-dossier" {
			doc.Routes[i].Activities = []string{activitySupport}
		}
	}
	doc.ActivityIDs = map[string]string{activitySupport: supportID}
	pol, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	policies.Set(pol)
	src := &swapRequests{}
	restriction := subjectRequest(v1alpha1.RequestRestriction, DossierPseudonym(keys.pseudonym, "D-1"), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Decision.DecidedAt = metav1.NewTime(time.Now().Add(-time.Minute))
	})
	src.set.Store(NewRequestEffects("wijkteam-dossiers", []v1alpha1.DataSubjectRequest{restriction}))
	p.requests = src
	srv := httptest.NewServer(p)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/api/dossiers/D-1", nil)
	req.Header.Set(DefaultUserHeader, "an@example.nl")
	req.Header.Set(DefaultGroupsHeader, "coaches")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("restricted dossier: %d, want 403", resp.StatusCode)
	}
	events := sink.all()
	if len(events) != 1 || events[0].Outcome != auditlog.OutcomeDenied || events[0].ProcessingActivityID != supportID {
		t.Fatalf("events %+v; want one denial recorded under %s", events, supportID)
	}
	if got := testutil.ToFloat64(p.metrics.activities.WithLabelValues("wijkteam-dossiers", activitySupport, "denied")); got != 1 {
		t.Errorf("activity decisions{activity=%s,outcome=denied} = %v; want 1", activitySupport, got)
	}
}

// failingRequests is a source whose watch fails after it has synced.
type failingRequests struct{ err error }

func (f failingRequests) Effects() (*RequestEffects, error) { return nil, f.err }

func TestRequestsLoaded(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  SubjectRequestSource
		want error
	}{
		{"no source configured", nil, nil},
		{"not synced", StaticRequests{}, ErrRequestsNotSynced},
		{"synced", StaticRequests{Set: NewRequestEffects("wijkteam-dossiers", nil)}, nil},
		// Each request says why (503); the pod stays in its Service.
		{"the watch failing after the first list", failingRequests{ErrWatchFailing}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := RequestsLoaded(tc.src); !errors.Is(err, tc.want) {
				t.Errorf("RequestsLoaded = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestNotReadyUntilTheSubjectRequestsAreRead: a proxy that would refuse
// every request for a dossier with 503 is not ready, so that the pod joins
// its Service only once it can serve.
func TestNotReadyUntilTheSubjectRequestsAreRead(t *testing.T) {
	keys := newTestKeys(t)
	p, _ := newTestProxy(t, newUpstreamApp(t), &memorySink{}, keys, false)
	health := httptest.NewServer(p.HealthHandler())
	defer health.Close()
	readyz := func() (int, string) {
		t.Helper()
		resp, err := http.Get(health.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	p.requests = StaticRequests{}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, ErrRequestsNotSynced.Error()) {
		t.Errorf("readyz before the requests were read: %d %q", code, body)
	}
	p.requests = StaticRequests{Set: NewRequestEffects("wijkteam-dossiers", nil)}
	if code, body := readyz(); code != http.StatusOK {
		t.Errorf("readyz once the requests were read: %d %q", code, body)
	}
}
