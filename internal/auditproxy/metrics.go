package auditproxy

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// proxyMetrics are the proxy's Prometheus metrics, on its own registry and
// served at /metrics on the health port. Their labels are route names (the
// store's configuration) and the outcome, never an actor, a dossier or a
// path.
type proxyMetrics struct {
	registry  *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	failures  prometheus.Counter
	lastOK    prometheus.Gauge
}

func newProxyMetrics() *proxyMetrics {
	m := &proxyMetrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dossierguard_auditproxy_decisions_total",
			Help: "Access decisions recorded in the audit log, by route (empty when none matched) and outcome (allowed, denied).",
		}, []string{"route", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dossierguard_auditproxy_audit_append_duration_seconds",
			Help:    "Time to make one audit event durable (decision or completion), successful or not.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dossierguard_auditproxy_audit_append_failures_total",
			Help: "Audit events that could not be recorded; a decision that cannot be recorded refuses its request.",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dossierguard_auditproxy_audit_last_append_timestamp_seconds",
			Help: "When an audit event was last recorded, as a Unix timestamp.",
		}),
	}
	m.registry.MustRegister(m.decisions, m.latency, m.failures, m.lastOK,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *proxyMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// isDecision tells a request's decision event from its completion: a denial
// is always a decision; an allowed decision is appended before any status
// exists, its completion with the application's status.
func isDecision(ev auditlog.Event) bool {
	return ev.Outcome == auditlog.OutcomeDenied || ev.Status == 0
}

// meteredSink measures every append to the audit log and counts decisions.
type meteredSink struct {
	next EventSink
	m    *proxyMetrics
}

func (s meteredSink) Append(ctx context.Context, ev auditlog.Event) error {
	start := time.Now()
	err := s.next.Append(ctx, ev)
	s.m.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.failures.Inc()
		return err
	}
	s.m.lastOK.Set(float64(time.Now().UnixNano()) / 1e9)
	if isDecision(ev) {
		s.m.decisions.WithLabelValues(ev.Route, string(ev.Outcome)).Inc()
	}
	return nil
}

func (s meteredSink) Err() error { return s.next.Err() }
