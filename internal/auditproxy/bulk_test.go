package auditproxy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

const surveyID = "https://register.example.nl/verwerkingen/clientervaringsonderzoek"

// bulkDocument is a store with a survey (cliëntervaringsonderzoek) beside
// the support: a per-dossier route of each, the survey's address export
// with records (identity and contact), a survey count (identity) and a
// support list (identity and contact) without records.
func bulkDocument() accesspolicy.Document {
	id := []v1alpha1.DataCategory{"identity"}
	address := []v1alpha1.DataCategory{"identity", "contact"}
	return accesspolicy.Document{
		Version: accesspolicy.Version, Store: "wijkteam-dossiers", Namespace: "wijkteam", ProcessingActivity: "legacy-register-entry",
		Routes: []accesspolicy.Route{
			{Name: "list", Method: "GET", Path: "/api/dossiers", Categories: address, Action: "read", Activities: []string{activitySupport}},
			{Name: "read-dossier", Method: "GET", Path: "/api/dossiers/{dossier}", Categories: id, Action: "read", Activities: []string{activitySupport}},
			{Name: "survey-addresses", Method: "GET", Path: "/api/survey/addresses", Categories: address, Action: "export", Activities: []string{activitySurvey},
				Records: &accesspolicy.Records{Format: v1alpha1.RecordsJSON, Items: "/addresses", DossierField: "/dossier", MaxBodyBytes: 4096}},
			{Name: "survey-count", Method: "GET", Path: "/api/survey/count", Categories: id, Action: "read", Activities: []string{activitySurvey}},
			{Name: "survey-dossier", Method: "GET", Path: "/api/survey/dossiers/{dossier}", Categories: id, Action: "read", Activities: []string{activitySurvey}},
		},
		Roles: []accesspolicy.Role{
			{Name: "coach", Purpose: "p", Subjects: []accesspolicy.Subject{{Kind: v1alpha1.SubjectGroup, Name: "coaches"}},
				Categories: address, Actions: []v1alpha1.Action{"read"}, Activities: []string{activitySupport}},
			{Name: "onderzoek", Purpose: "p", Subjects: []accesspolicy.Subject{{Kind: v1alpha1.SubjectUser, Name: "onderzoek@example.nl"}},
				Categories: address, Actions: []v1alpha1.Action{"read", "export"}, Activities: []string{activitySurvey}},
		},
		Agreements:  []accesspolicy.Agreement{},
		ActivityIDs: map[string]string{activitySurvey: surveyID, activitySupport: supportID},
	}
}

// surveyApp is the application: the address export of three families, in
// the shape the route declares unless mode says otherwise.
type surveyApp struct {
	srv  *httptest.Server
	mode atomic.Value // string
}

const surveyBody = `{"year":2026,"addresses":[` +
	`{"dossier":"D-A","name":"Gezin Alfa (fictief)","address":"Dorpsstraat 1"},` +
	`{"dossier":"D-B","name":"Gezin Bravo (fictief)","address":"Dorpsstraat 2"},` +
	`{"dossier":"d-c","name":"Gezin Charlie (fictief)","address":"Dorpsstraat 3"}],"source":"wijkteam"}`

func newSurveyApp(t *testing.T) *surveyApp {
	t.Helper()
	app := &surveyApp{}
	app.mode.Store("plain")
	app.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/survey/addresses" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
			return
		}
		w.Header().Set("X-Seen-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		w.Header().Set("ETag", `"upstream-etag"`)
		w.Header().Set("Content-Type", "application/json")
		switch app.mode.Load().(string) {
		case "gzip":
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = io.WriteString(zw, surveyBody)
			_ = zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
			_, _ = w.Write(b.Bytes())
		case "malformed":
			_, _ = io.WriteString(w, `{"addresses":[{"dossier":"D-B","name":"Gezin Bravo (fictief)"},{"name":"Gezin Alfa (fictief)"}]}`)
		case "truncated":
			_, _ = io.WriteString(w, surveyBody[:len(surveyBody)-40])
		case "html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, `<p>Gezin Alfa (fictief)</p>`)
		case "large":
			_, _ = io.WriteString(w, `{"addresses":[`+strings.Repeat(`{"dossier":"D-B","name":"Gezin Bravo (fictief)"},`, 100)+`{"dossier":"D-B"}]}`)
		default:
			_, _ = io.WriteString(w, surveyBody)
		}
	}))
	t.Cleanup(app.srv.Close)
	return app
}

// TestProxyBulkRoutes: an objection of A to the cliëntervaringsonderzoek
// refuses A's survey route and serves A's support route and B's survey
// route; the survey's address export leaves out objected A and restricted
// C and keeps B, with Content-Length recomputed, also from a gzip
// upstream; a route of the survey without records is refused whole, and
// so is the support list while C's restriction reaches it; an upstream
// body that is not the declared JSON, or too large, is refused with 502 and
// nothing of it leaves. The events record the activity and the number of
// items left out, never which.
func TestProxyBulkRoutes(t *testing.T) {
	keys := newTestKeys(t)
	app := newSurveyApp(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: keys.signing})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	p, policies := newTestProxy(t, &upstreamApp{srv: app.srv}, w, keys, true)
	pol, err := NewPolicy(bulkDocument())
	if err != nil {
		t.Fatal(err)
	}
	policies.Set(pol)
	decided := metav1.NewTime(time.Now().Add(-time.Minute))
	objection := subjectRequest(v1alpha1.RequestObjection, DossierPseudonym(keys.pseudonym, "D-A"), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Objection = &v1alpha1.ObjectionSpec{Purpose: "cliëntervaringsonderzoek", Activities: []v1alpha1.ActivityName{activitySurvey}}
		r.Spec.Decision.DecidedAt = decided
	})
	// C's contact data are restricted: the export and the list touch
	// them, the survey count does not.
	restriction := subjectRequest(v1alpha1.RequestRestriction, DossierPseudonym(keys.pseudonym, "D-C"), func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Restriction = &v1alpha1.RestrictionSpec{Categories: []v1alpha1.DataCategory{"contact"}}
		r.Spec.Decision.DecidedAt = decided
	})
	p.requests = StaticRequests{Set: NewRequestEffects("wijkteam-dossiers", []v1alpha1.DataSubjectRequest{objection, restriction})}
	srv := httptest.NewServer(p)
	defer srv.Close()

	type answer struct {
		code    int
		header  http.Header
		body    string
		problem Problem
	}
	do := func(path, user, groups string) answer {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set(DefaultUserHeader, user)
		if groups != "" {
			req.Header.Set(DefaultGroupsHeader, groups)
		}
		req.Header.Set("Accept-Encoding", "gzip") // the client's own; the proxy must not pass it on
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		a := answer{code: resp.StatusCode, header: resp.Header, body: string(body)}
		if resp.StatusCode >= 400 {
			_ = json.Unmarshal(body, &a.problem)
		}
		return a
	}
	const researcher, coach = "onderzoek@example.nl", "an@example.nl"

	// Per dossier: the objection by activity.
	if a := do("/api/survey/dossiers/D-A", researcher, ""); a.code != 403 || a.problem.Type != ProblemObjected {
		t.Errorf("A's survey route: %d %s, want 403 %s", a.code, a.problem.Type, ProblemObjected)
	}
	if a := do("/api/dossiers/D-A", coach, "coaches"); a.code != 200 {
		t.Errorf("A's support route: %d, want 200", a.code)
	}
	if a := do("/api/survey/dossiers/D-B", researcher, ""); a.code != 200 {
		t.Errorf("B's survey route: %d, want 200", a.code)
	}

	// The export: A and C left out, B kept, whether the upstream
	// compresses or not.
	for _, mode := range []string{"plain", "gzip"} {
		app.mode.Store(mode)
		a := do("/api/survey/addresses", researcher, "")
		want := `{"year":2026,"addresses":[{"dossier":"D-B","name":"Gezin Bravo (fictief)","address":"Dorpsstraat 2"}],"source":"wijkteam"}`
		if a.code != 200 || a.body != want {
			t.Fatalf("%s export: %d %s; want 200 %s", mode, a.code, a.body, want)
		}
		if cl := a.header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
			t.Errorf("%s export: Content-Length %q, want %d", mode, cl, len(want))
		}
		if ce, etag, seen := a.header.Get("Content-Encoding"), a.header.Get("ETag"), a.header.Get("X-Seen-Accept-Encoding"); ce != "" || etag != "" || seen == "" && mode == "gzip" {
			t.Errorf("%s export: Content-Encoding %q, ETag %q (want neither); the application saw Accept-Encoding %q", mode, ce, etag, seen)
		}
	}

	// A survey route without records, and the support list that C's
	// restriction reaches: refused whole.
	for _, c := range []struct{ path, user, groups string }{{"/api/survey/count", researcher, ""}, {"/api/dossiers", coach, "coaches"}} {
		if a := do(c.path, c.user, c.groups); a.code != 403 || a.problem.Type != ProblemRouteUnfilterable || !strings.Contains(a.problem.Detail, "records") {
			t.Errorf("%s: %d %s %q, want 403 %s", c.path, a.code, a.problem.Type, a.problem.Detail, ProblemRouteUnfilterable)
		}
	}

	// What the application sends that is not the declared JSON, or more
	// than the bound: 502, and none of it.
	for _, c := range []struct{ mode, problem string }{
		{"malformed", ProblemRecordsUnfilterable}, {"truncated", ProblemRecordsUnfilterable},
		{"html", ProblemRecordsUnfilterable}, {"large", ProblemResponseTooLarge},
	} {
		app.mode.Store(c.mode)
		a := do("/api/survey/addresses", researcher, "")
		if a.code != 502 || a.problem.Type != c.problem {
			t.Errorf("%s upstream body: %d %s, want 502 %s", c.mode, a.code, a.problem.Type, c.problem)
		}
		if strings.Contains(a.body, "Gezin") || strings.Contains(a.body, "Dorpsstraat") || strings.Contains(a.body, "D-B") {
			t.Errorf("%s upstream body leaked: %s", c.mode, a.body)
		}
	}

	p.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	for _, leak := range []string{"D-A", "d-c", "D-B", "Gezin", "Dorpsstraat"} {
		if strings.Contains(data, leak) {
			t.Errorf("the audit log holds %q", leak)
		}
	}
	byOp, _ := readEvents(t, []byte(data))
	var exports, refusedExports, objected, unfilterable int
	for _, evs := range byOp {
		for _, e := range evs {
			switch {
			case e.Route == "survey-addresses" && e.Status == 200:
				exports++
				if e.ItemsWithheld != 2 || e.Activity != surveyID || e.Outcome != "allowed" {
					t.Errorf("export completion %+v; want 2 items withheld under %s", e, surveyID)
				}
			case e.Route == "survey-addresses" && e.Status == 502:
				refusedExports++
				if e.ItemsWithheld != 0 {
					t.Errorf("a refused export records %d items withheld", e.ItemsWithheld)
				}
			case e.Route == "survey-dossier" && e.Status == 403:
				objected++
				if e.Activity != surveyID || e.DataSubject != DossierPseudonym(keys.pseudonym, "D-A") {
					t.Errorf("objection refusal %+v; want activity %s on A", e, surveyID)
				}
			case e.Status == 403 && (e.Route == "survey-count" || e.Route == "list"):
				unfilterable++
				if want := map[string]string{"survey-count": surveyID, "list": supportID}[e.Route]; e.Activity != want {
					t.Errorf("unfilterable refusal of %s records activity %q, want %q", e.Route, e.Activity, want)
				}
			}
		}
	}
	if exports != 2 || refusedExports != 4 || objected != 1 || unfilterable != 2 {
		t.Errorf("events: %d filtered exports, %d refused exports, %d objections, %d unfilterable; want 2, 4, 1, 2", exports, refusedExports, objected, unfilterable)
	}
}
