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

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// brokenSink refuses every event, as a full disk would.
type brokenSink struct{}

func (brokenSink) Append(context.Context, auditlog.Event) error {
	return errors.New("no space left on device")
}
func (brokenSink) Err() error { return nil }

// TestMeteredSink: decisions are counted by route and outcome (completions
// are not decisions), every append is timed, failures are counted and do
// not move the last-recorded timestamp.
func TestMeteredSink(t *testing.T) {
	m := newProxyMetrics()
	ok := meteredSink{next: &memorySink{}, m: m}
	ctx := context.Background()
	for _, ev := range []auditlog.Event{
		{Route: "dossier", Outcome: auditlog.OutcomeAllowed},              // decision
		{Route: "dossier", Outcome: auditlog.OutcomeAllowed, Status: 200}, // its completion
		{Route: "dossier", Outcome: auditlog.OutcomeDenied, Status: 403},
		{Outcome: auditlog.OutcomeDenied, Status: 404}, // no route matched
	} {
		if err := ok.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		route, outcome string
		want           float64
	}{{"dossier", "allowed", 1}, {"dossier", "denied", 1}, {"", "denied", 1}} {
		if got := testutil.ToFloat64(m.decisions.WithLabelValues(c.route, c.outcome)); got != c.want {
			t.Errorf("decisions{route=%q,outcome=%q} = %v, want %v", c.route, c.outcome, got, c.want)
		}
	}
	last := testutil.ToFloat64(m.lastOK)
	if last == 0 {
		t.Error("no last-recorded timestamp after successful appends")
	}

	broken := meteredSink{next: brokenSink{}, m: m}
	if err := broken.Append(ctx, auditlog.Event{Route: "dossier", Outcome: auditlog.OutcomeAllowed}); err == nil {
		t.Fatal("the sink's error was swallowed")
	}
	if got := testutil.ToFloat64(m.failures); got != 1 {
		t.Errorf("failures %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.decisions.WithLabelValues("dossier", "allowed")); got != 1 {
		t.Errorf("an unrecorded decision was counted: %v", got)
	}
	if got := testutil.ToFloat64(m.lastOK); got != last {
		t.Errorf("a failed append moved the last-recorded timestamp")
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Errorf("latency histogram series %d, want 1", n)
	}
}

// TestHealthPortServesMetrics: /metrics on the health handler exposes the
// proxy's metrics and no event content.
func TestHealthPortServesMetrics(t *testing.T) {
	p := &Proxy{metrics: newProxyMetrics()}
	sink := meteredSink{next: &memorySink{}, m: p.metrics}
	if err := sink.Append(context.Background(), auditlog.Event{Route: "dossier", Outcome: auditlog.OutcomeDenied, Status: 403,
		Actor: "pseudonym-of-someone", DataSubject: "pseudonym-of-a-client"}); err != nil {
		t.Fatal(err)
	}
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
		`dossierguard_auditproxy_decisions_total{outcome="denied",route="dossier"} 1`,
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
