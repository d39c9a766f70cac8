package egressgateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
)

// scrape reads the gateway's /metrics from its health handler.
func scrape(t *testing.T, gw *Gateway) string {
	t.Helper()
	srv := httptest.NewServer(gw.HealthHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return string(body)
}

// TestMetricsEndpoint: /metrics on the health port shows an allowed
// request's decision, the partner's latency, the audit appends (decision
// and completion) and the consent look-up, and nothing of the dossier, its
// pseudonym, the caller or the token.
func TestMetricsEndpoint(t *testing.T) {
	perDossier := func(a *accesspolicy.EgressAgreement) {
		a.LegalBasis, a.LegalReference, a.ConsentMode = v1alpha1.BasisConsent, "", v1alpha1.ConsentPerDossier
	}
	w := newUnitWorld(t, perDossier, consentFunc(func(auditproxy.ConsentQuery) (auditproxy.ConsentAnswer, error) {
		return auditproxy.ConsentAnswer{Given: true}, nil
	}), nil)
	if rec, _ := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusCreated {
		t.Fatalf("status %d", rec.Code)
	}
	text := scrape(t, w.gw)
	for _, want := range []string{
		`dossierguard_egressgateway_decisions_total{agreement="verwijsindex",outcome="allowed",reason="agreement",store="cjg-dossiers"} 1`,
		`dossierguard_egressgateway_partner_request_duration_seconds_count{agreement="verwijsindex",store="cjg-dossiers"} 1`,
		`dossierguard_egressgateway_audit_append_duration_seconds_count 2`,
		`dossierguard_egressgateway_audit_append_failures_total 0`,
		`dossierguard_egressgateway_consent_lookups_total{outcome="given",store="cjg-dossiers"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	pseudonym := auditproxy.DossierPseudonym(testPseudonymKey, "D-1")
	for _, secret := range []string{"D-1", pseudonym, appPod.Pod, "app-token", "signalen"} {
		if strings.Contains(text, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
	if strings.Contains(text, "partner_failures_total{") {
		t.Error("a partner failure was counted for an answered request")
	}
}

// TestMetricsOfFailures: a partner that does not answer is timed and
// counted as a failure (the application gets 502); an event that cannot be
// recorded is an audit failure and no decision.
func TestMetricsOfFailures(t *testing.T) {
	w := newUnitWorld(t, nil, nil, nil)
	w.partner.srv.Close()
	if rec, _ := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusBadGateway {
		t.Fatalf("unreachable partner: status %d", rec.Code)
	}
	if got := testutil.ToFloat64(w.gw.metrics.partnerFailures.WithLabelValues("cjg-dossiers", "verwijsindex")); got != 1 {
		t.Errorf("partner failures %v, want 1", got)
	}
	if n := testutil.CollectAndCount(w.gw.metrics.partner); n != 1 {
		t.Errorf("partner latency series %d, want 1", n)
	}

	broken := newUnitWorld(t, nil, nil, nil)
	broken.sink.failing = true
	if rec, _ := broken.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("audit log down: status %d", rec.Code)
	}
	text := scrape(t, broken.gw)
	if !strings.Contains(text, "dossierguard_egressgateway_audit_append_failures_total 1") {
		t.Error("the failed append was not counted")
	}
	if strings.Contains(text, "dossierguard_egressgateway_decisions_total{") {
		t.Error("a decision that was not recorded was counted")
	}
	if len(broken.partner.received()) != 0 {
		t.Error("a request that was not recorded reached the partner")
	}
}

// TestMetricNames: the names the docs and the chart's rules may use.
func TestMetricNames(t *testing.T) {
	names := strings.Join(MetricNames(), " ")
	for _, want := range []string{
		"dossierguard_egressgateway_decisions_total", "dossierguard_egressgateway_partner_request_duration_seconds",
		"dossierguard_egressgateway_partner_failures_total", "dossierguard_egressgateway_consent_lookups_total",
		"dossierguard_egressgateway_audit_append_duration_seconds", "dossierguard_egressgateway_audit_append_failures_total",
		"dossierguard_egressgateway_audit_last_append_timestamp_seconds", "dossierguard_egressgateway_audit_backlog_events",
	} {
		if !strings.Contains(names, want) {
			t.Errorf("MetricNames lacks %s: %s", want, names)
		}
	}
}

// TestNotReadyUntilTheSubjectRequestsAreRead: a gateway that would refuse
// every request for a dossier with 503 is not ready.
func TestNotReadyUntilTheSubjectRequestsAreRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		requests auditproxy.SubjectRequestSource
		code     int
		body     string
	}{
		{"not read yet", auditproxy.StaticRequests{}, http.StatusServiceUnavailable, "not ready: " + auditproxy.ErrRequestsNotSynced.Error() + "\n"},
		{"read", auditproxy.StaticRequests{Set: auditproxy.NewRequestEffects("cjg-dossiers", nil)}, http.StatusOK, "ok\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newUnitWorld(t, nil, nil, tc.requests)
			rr := httptest.NewRecorder()
			w.gw.HealthHandler().ServeHTTP(rr, httptest.NewRequest("GET", "/readyz", nil))
			if rr.Code != tc.code || rr.Body.String() != tc.body {
				t.Errorf("readyz: %d %q, want %d %q", rr.Code, rr.Body.String(), tc.code, tc.body)
			}
		})
	}
}

// TestNoPolicyRefusesEverything: before an egress document has loaded the
// gateway is not ready, refuses every request with 503 policy-unavailable,
// records the refusal and sends nothing: it never decides without a policy.
func TestNoPolicyRefusesEverything(t *testing.T) {
	w := newUnitWorld(t, nil, nil, nil)
	empty := NewPolicySource(filepath.Join(t.TempDir(), "absent.json"), nil)
	if _, err := empty.Reload(); err == nil {
		t.Fatal("a missing document loaded")
	}
	w.gw.policies = empty
	rr := httptest.NewRecorder()
	w.gw.HealthHandler().ServeHTTP(rr, httptest.NewRequest("GET", "/readyz", nil))
	if rr.Code != http.StatusServiceUnavailable || rr.Body.String() != "not ready: no egress policy is loaded yet\n" {
		t.Errorf("readyz without a policy: %d %q", rr.Code, rr.Body.String())
	}
	rec, prob := w.send(t, "POST", "/verwijsindex/signalen/D-1", "app-token")
	if rec.Code != http.StatusServiceUnavailable || prob.Type != auditproxy.ProblemPolicyUnavailable {
		t.Fatalf("without a policy: %d %s", rec.Code, prob.Type)
	}
	if events := w.sink.all(); len(events) != 1 || events[0].Outcome != "denied" || events[0].Status != http.StatusServiceUnavailable {
		t.Errorf("events %+v; want the refusal recorded", events)
	}
	if len(w.partner.received()) != 0 {
		t.Error("a request reached the partner without a policy")
	}
	if got := testutil.ToFloat64(w.gw.metrics.decisions.WithLabelValues("", "", "denied", "policy-unavailable")); got != 1 {
		t.Errorf("decisions{reason=policy-unavailable} = %v, want 1", got)
	}
}
