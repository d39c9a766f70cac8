package auditproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// brokenSink refuses every event, as a full disk would.
type brokenSink struct{}

func (brokenSink) Append(context.Context, auditlog.Event) error {
	return errors.New("no space left on device")
}
func (brokenSink) Err() error { return nil }

// TestMeteredSink: every append is timed, failures are counted and do not
// move the last-recorded timestamp; the sink counts no decisions (the proxy
// does, with their reason).
func TestMeteredSink(t *testing.T) {
	m := newProxyMetrics()
	ok := meteredSink{next: &memorySink{}, m: m.AuditMetrics}
	ctx := context.Background()
	for _, ev := range []auditlog.Event{
		{Route: "dossier", Outcome: auditlog.OutcomeAllowed},              // decision
		{Route: "dossier", Outcome: auditlog.OutcomeAllowed, Status: 200}, // its completion
	} {
		if err := ok.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := testutil.CollectAndCount(m.decisions); n != 0 {
		t.Errorf("the sink counted %d decision series", n)
	}
	last := testutil.ToFloat64(m.lastOK)
	if last == 0 {
		t.Error("no last-recorded timestamp after successful appends")
	}

	broken := meteredSink{next: brokenSink{}, m: m.AuditMetrics}
	if err := broken.Append(ctx, auditlog.Event{Route: "dossier", Outcome: auditlog.OutcomeAllowed}); err == nil {
		t.Fatal("the sink's error was swallowed")
	}
	if got := testutil.ToFloat64(m.failures); got != 1 {
		t.Errorf("failures %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.lastOK); got != last {
		t.Errorf("a failed append moved the last-recorded timestamp")
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Errorf("latency histogram series %d, want 1", n)
	}
}

func TestDeniedReason(t *testing.T) {
	cases := []struct {
		prob Problem
		want DecisionReason
	}{
		{Problem{Type: ProblemAccessDenied, reason: ReasonCategoriesNotGranted}, ReasonCategoriesNotGranted},
		{Problem{Type: ProblemAccessDenied, reason: ReasonConsentWithdrawn}, ReasonConsentWithdrawn},
		{Problem{Type: ProblemAccessDenied, reason: ReasonConsentUnavailable}, ReasonConsentUnavailable},
		{Problem{Type: ProblemAccessDenied, reason: ReasonActivityNotServed}, ReasonActivityNotServed},
		{Problem{Type: ProblemAccessDenied}, ReasonOther}, // access denied with no reason: not expected
		{Problem{Type: ProblemAccessDenied, reason: "someone's free text"}, ReasonOther},
		{Problem{Type: ProblemUnauthenticated}, "unauthenticated"},
		{Problem{Type: ProblemAmbiguousIdentity}, "ambiguous-identity"},
		{Problem{Type: ProblemIdentityUnavailable}, "identity-unavailable"},
		{Problem{Type: ProblemPolicyUnavailable}, "policy-unavailable"},
		{Problem{Type: ProblemRequestOverride}, "request-override"},
		{Problem{Type: ProblemNonCanonicalPath}, "non-canonical-path"},
		{Problem{Type: ProblemNoRoute}, "no-route"},
		{Problem{Type: ProblemUpgradeNotAllowed}, "upgrade-not-allowed"},
		{Problem{Type: ProblemInvalidBreakGlassReason}, "invalid-break-glass-reason"},
		{Problem{Type: "https://elsewhere.example/x"}, ReasonOther},
	}
	for _, c := range cases {
		if got := deniedReason(&c.prob); got != c.want {
			t.Errorf("deniedReason(%s, %q) = %q; want %q", c.prob.Type, c.prob.reason, got, c.want)
		}
	}
}

func TestAllowedReason(t *testing.T) {
	cases := []struct {
		name string
		dec  Decision
		want DecisionReason
	}{
		{"roles", Decision{Allowed: true, Roles: []string{"basis"}}, ReasonRole},
		{"break-glass", Decision{Allowed: true, BreakGlass: true}, ReasonBreakGlass},
		{"a partner under an agreement", Decision{Allowed: true, Sharing: &SharingDecision{}}, ReasonAgreement},
	}
	for _, c := range cases {
		if got := allowedReason(c.dec); got != c.want {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}

func TestConsentLookupOutcome(t *testing.T) {
	cases := []struct {
		a    ConsentAnswer
		err  error
		want string
	}{
		{ConsentAnswer{Given: true}, nil, ConsentLookupGiven},
		{ConsentAnswer{Withdrawn: true}, nil, ConsentLookupWithdrawn},
		{ConsentAnswer{}, nil, ConsentLookupNotGiven},
		{ConsentAnswer{Given: true}, errors.New("timeout"), ConsentLookupUnavailable},
		{ConsentAnswer{}, ErrNoConsentSource, ConsentLookupUnavailable},
	}
	for _, c := range cases {
		if got := consentLookup(c.a, c.err); got != c.want {
			t.Errorf("consentLookup(%+v, %v) = %q; want %q", c.a, c.err, got, c.want)
		}
	}
	m := newProxyMetrics()
	mc := meteredConsents{next: consentsFunc(func(q ConsentQuery) (ConsentAnswer, error) {
		if q.Dossier == "DOWN" {
			return ConsentAnswer{}, errors.New("connection refused")
		}
		return ConsentAnswer{Given: q.Dossier == "D-1"}, nil
	}), lookups: m.consents, store: func() string { return "cjg-dossiers" }}
	for _, d := range []string{"D-1", "D-1", "D-2", "DOWN"} {
		_, _ = mc.Consent(context.Background(), ConsentQuery{Agreement: "a", Partner: "p", Dossier: d})
	}
	for outcome, want := range map[string]float64{ConsentLookupGiven: 2, ConsentLookupNotGiven: 1, ConsentLookupUnavailable: 1, ConsentLookupWithdrawn: 0} {
		if got := testutil.ToFloat64(m.consents.WithLabelValues("cjg-dossiers", outcome)); got != want {
			t.Errorf("consent look-ups %s = %v; want %v", outcome, got, want)
		}
	}
}

type consentsFunc func(ConsentQuery) (ConsentAnswer, error)

func (f consentsFunc) Consent(_ context.Context, q ConsentQuery) (ConsentAnswer, error) { return f(q) }

// TestProxyCountsDecisions: requests through the proxy are counted once
// recorded, by store, route, outcome and reason; a request whose decision
// cannot be recorded is not counted.
func TestProxyCountsDecisions(t *testing.T) {
	app := newUpstreamApp(t)
	p, _ := newTestProxy(t, app, &memorySink{}, newTestKeys(t), true)
	srv := httptest.NewServer(p)
	defer srv.Close()
	send := func(method, path string, headers map[string]string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	an := map[string]string{DefaultUserHeader: "an@example.nl"}
	send("PUT", "/api/dossiers/D-9/plan", an)                                                                                                                                        // intake: allowed by role
	send("GET", "/api/dossiers/D-9/safety", an)                                                                                                                                      // categories not granted
	send("GET", "/api/nothing-here", an)                                                                                                                                             // no route
	send("GET", "/api/dossiers/D-9/safety", map[string]string{DefaultUserHeader: "bo@example.nl", DefaultGroupsHeader: "crisis", BreakGlassHeader: "Melding Veilig Thuis 2026-118"}) // break-glass
	send("GET", "/api/dossiers", nil)                                                                                                                                                // no identity
	p.Wait()
	for _, c := range []struct {
		route, outcome string
		reason         DecisionReason
		want           float64
	}{
		{"write-plan", "allowed", ReasonRole, 1},
		{"read-safety", "denied", ReasonCategoriesNotGranted, 1},
		{"", "denied", "no-route", 1},
		{"read-safety", "allowed", ReasonBreakGlass, 1},
		{"list", "denied", "unauthenticated", 1},
	} {
		if got := testutil.ToFloat64(p.metrics.decisions.WithLabelValues("wijkteam-dossiers", c.route, c.outcome, string(c.reason))); got != c.want {
			t.Errorf("decisions{route=%q,outcome=%q,reason=%q} = %v; want %v", c.route, c.outcome, c.reason, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(p.metrics.decisions); n != 5 {
		t.Errorf("%d decision series; want 5", n)
	}
	// Every reason label is of the vocabulary.
	metrics, _ := p.metrics.registry.Gather()
	for _, mf := range metrics {
		if mf.GetName() != "dossierguard_auditproxy_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && metricReason(DecisionReason(l.GetValue())) != DecisionReason(l.GetValue()) {
					t.Errorf("reason %q is not of MetricReasons", l.GetValue())
				}
			}
		}
	}

	broken, _ := newTestProxy(t, app, brokenSink{}, newTestKeys(t), true)
	bsrv := httptest.NewServer(broken)
	defer bsrv.Close()
	req, _ := http.NewRequest("PUT", bsrv.URL+"/api/dossiers/D-9/plan", nil)
	req.Header.Set(DefaultUserHeader, "an@example.nl")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
	}
	if n := testutil.CollectAndCount(broken.metrics.decisions); n != 0 {
		t.Errorf("an unrecorded decision was counted (%d series)", n)
	}
}

func TestBacklogMetric(t *testing.T) {
	backlog := 7
	m := newProxyMetricsWith(func() int { return backlog })
	srv := httptest.NewServer(m.handler())
	defer srv.Close()
	for _, want := range []string{"dossierguard_auditproxy_audit_backlog_events 7", "dossierguard_auditproxy_audit_backlog_events 0"} {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
		backlog = 0
	}
}

// TestHealthPortServesMetrics: /metrics on the health handler exposes the
// proxy's metrics and no event content.
func TestHealthPortServesMetrics(t *testing.T) {
	p := &Proxy{metrics: newProxyMetrics()}
	sink := meteredSink{next: &memorySink{}, m: p.metrics.AuditMetrics}
	if err := sink.Append(context.Background(), auditlog.Event{Route: "dossier", Outcome: auditlog.OutcomeDenied, Status: 403,
		Actor: "pseudonym-of-someone", DataSubject: "pseudonym-of-a-client"}); err != nil {
		t.Fatal(err)
	}
	p.metrics.decided("cjg-dossiers", "dossier", auditlog.OutcomeDenied, ReasonCategoriesNotGranted, "")
	srv := httptest.NewServer(p.HealthHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`dossierguard_auditproxy_decisions_total{outcome="denied",reason="categories-not-granted",route="dossier",store="cjg-dossiers"} 1`,
		"dossierguard_auditproxy_audit_append_duration_seconds_count 1",
		"dossierguard_auditproxy_audit_append_failures_total 0",
		"dossierguard_auditproxy_audit_last_append_timestamp_seconds",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "pseudonym-of") {
		t.Error("/metrics shows an actor or data subject")
	}
}

// TestProxyCountsDecisionsByActivity: recorded decisions are counted by the
// processing activity they were decided under (allowed or refused), by its
// name; a route without activities counts as none, a request that matches
// no route too, and an activity the store does not have as unknown, so that
// the label holds only the store's activities and those two.
func TestProxyCountsDecisionsByActivity(t *testing.T) {
	doc := purposeDocument()
	doc.ActivityIDs[activitySurvey] = "https://register.example.nl/verwerkingen/" + activitySurvey
	doc.Routes = append(doc.Routes, accesspolicy.Route{Name: "gone", Method: "GET", Path: "/api/gone",
		Categories: []v1alpha1.DataCategory{"identity"}, Action: "read", Activities: []string{"opgeheven"}})
	pol, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	app := newUpstreamApp(t)
	p, src := newTestProxy(t, app, &memorySink{}, newTestKeys(t), true)
	src.Set(pol)
	srv := httptest.NewServer(p)
	defer srv.Close()
	send := func(path string, headers map[string]string, want int) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
	coach := map[string]string{DefaultUserHeader: "bo@example.nl", DefaultGroupsHeader: "coaches"}
	survey := map[string]string{DefaultUserHeader: "system:serviceaccount:wijkteam:survey"}
	send("/api/dossiers", coach, 200)            // allowed under ondersteuning
	send("/api/survey/addresses", coach, 403)    // refused under the survey
	send("/api/survey/export", survey, 200)      // allowed under the survey
	send("/api/survey/export", nil, 401)         // no identity: the route's activity
	send("/api/dossiers/D-9/safety", coach, 403) // a route without activities
	send("/api/nothing-here", coach, 403)        // no route
	send("/api/gone", coach, 403)                // an activity the store does not have
	p.Wait()
	want := map[[2]string]float64{
		{activitySupport, "allowed"}: 1,
		{activitySurvey, "denied"}:   2,
		{activitySurvey, "allowed"}:  1,
		{ActivityNone, "denied"}:     2,
		{ActivityUnknown, "denied"}:  1,
	}
	for k, v := range want {
		if got := testutil.ToFloat64(p.metrics.activities.WithLabelValues("wijkteam-dossiers", k[0], k[1])); got != v {
			t.Errorf("activity decisions{activity=%q,outcome=%q} = %v; want %v", k[0], k[1], got, v)
		}
	}
	if n := testutil.CollectAndCount(p.metrics.activities); n != len(want) {
		t.Errorf("%d activity decision series; want %d", n, len(want))
	}
	// A refusal by purpose has its own reason, not other.
	if got := testutil.ToFloat64(p.metrics.decisions.WithLabelValues("wijkteam-dossiers", "survey-addresses", "denied", string(ReasonActivityNotServed))); got != 1 {
		t.Errorf("decisions{route=survey-addresses,reason=%s} = %v; want 1", ReasonActivityNotServed, got)
	}
	// Both counters count the same decisions.
	if a, d := sumCounter(t, p, "dossierguard_auditproxy_activity_decisions_total"), sumCounter(t, p, "dossierguard_auditproxy_decisions_total"); a != 7 || d != 7 {
		t.Errorf("%v decisions by activity, %v by route; want 7 of each", a, d)
	}
}

// sumCounter adds up every series of one of the proxy's counters.
func sumCounter(t *testing.T, p *Proxy, name string) float64 {
	t.Helper()
	families, err := p.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range families {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func TestMetricActivity(t *testing.T) {
	doc := &accesspolicy.Document{ActivityIDs: map[string]string{"ondersteuning": "https://register.example.nl/ondersteuning"}}
	for _, c := range []struct {
		doc      *accesspolicy.Document
		activity string
		want     string
	}{
		{doc, "ondersteuning", "ondersteuning"},
		{doc, "", ActivityNone},
		{doc, "opgeheven", ActivityUnknown},
		{nil, "ondersteuning", ActivityUnknown},
		{nil, "", ActivityNone},
	} {
		if got := metricActivity(c.doc, c.activity); got != c.want {
			t.Errorf("metricActivity(%v, %q) = %q; want %q", c.doc, c.activity, got, c.want)
		}
	}
}
