package egressgateway

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/metrics"
)

// gatewayMetrics are the gateway's Prometheus metrics, on its own registry
// and served at /metrics on the health port, in the audit proxy's style and
// vocabulary. Their labels are the store, agreement names of the egress
// document in force (empty when the request named none of them), the
// outcome and a reason of the fixed vocabulary MetricReasons: never a
// caller, a dossier, a path or free text.
type gatewayMetrics struct {
	registry  *prometheus.Registry
	decisions *prometheus.CounterVec
	consents  *prometheus.CounterVec
	// partner times each request to a partner until its response headers
	// arrive or it fails; partnerFailures counts those that failed.
	partner         *prometheus.HistogramVec
	partnerFailures *prometheus.CounterVec
	*auditproxy.AuditMetrics
	all []prometheus.Collector
}

// MetricReasons is every value of the reason label of
// dossierguard_egressgateway_decisions_total: agreement for an allowed
// request; for a refusal the sharing decision's reason, or the problem type
// of a refusal made before the agreement was looked at; other for anything
// else (none is expected).
var MetricReasons = []auditproxy.DecisionReason{
	auditproxy.ReasonAgreement,
	auditproxy.ReasonNoAgreementInForce, auditproxy.ReasonActionNotShared, auditproxy.ReasonCategoriesNotShared,
	auditproxy.ReasonActivityNotServed, auditproxy.ReasonConsentNotGiven, auditproxy.ReasonConsentWithdrawn, auditproxy.ReasonConsentUnavailable,
	"unauthenticated", "caller-not-workload", "identity-unavailable", "policy-unavailable", "unknown-agreement",
	"request-override", "non-canonical-path", "no-route", "upgrade-not-allowed",
	"restricted", "objection", "subject-requests-unavailable", "route-unfilterable", "partner-tls-unavailable",
	auditproxy.ReasonOther,
}

// newGatewayMetrics returns the metrics; backlog, when not nil, is the
// number of audit events not yet acknowledged by the logbook.
func newGatewayMetrics(backlog func() int) *gatewayMetrics {
	m := &gatewayMetrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dossierguard_egressgateway_decisions_total",
			Help: "Outbound requests decided and recorded in the audit log, by store, agreement (empty when the path named none of the egress document), outcome (allowed, denied) and reason (docs/egress-gateway.md, Metrics).",
		}, []string{"store", "agreement", "outcome", "reason"}),
		consents: auditproxy.NewConsentLookups("egressgateway", "outbound requests"),
		partner: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dossierguard_egressgateway_partner_request_duration_seconds",
			Help:    "Time from sending an allowed request to the partner until its response headers arrived or it failed, by store and agreement.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"store", "agreement"}),
		partnerFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dossierguard_egressgateway_partner_failures_total",
			Help: "Allowed requests that got no answer from the partner (unreachable, timed out, or its TLS certificate not trusted), by store and agreement; the application got 502.",
		}, []string{"store", "agreement"}),
		AuditMetrics: auditproxy.NewAuditMetrics("egressgateway", backlog),
	}
	m.all = append([]prometheus.Collector{m.decisions, m.consents, m.partner, m.partnerFailures}, m.Collectors()...)
	m.all = append(m.all, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(m.all...)
	return m
}

// MetricNames are the metrics a gateway exports on /metrics, as its
// registry describes them.
func MetricNames() []string {
	return metrics.DescribedNames(newGatewayMetrics(func() int { return 0 }).all...)
}

func (m *gatewayMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// decided counts one recorded decision.
func (m *gatewayMetrics) decided(store string, ev *auditlog.Event, reason auditproxy.DecisionReason) {
	agreement := ""
	if ev.Sharing != nil {
		agreement = ev.Sharing.Agreement
	}
	m.decisions.WithLabelValues(store, agreement, string(ev.Outcome), string(auditproxy.BoundedReason(reason, MetricReasons))).Inc()
}

// partnerAnswered times one request to a partner; failed when it got no
// response.
func (m *gatewayMetrics) partnerAnswered(store, agreement string, start time.Time, failed bool) {
	m.partner.WithLabelValues(store, agreement).Observe(time.Since(start).Seconds())
	if failed {
		m.partnerFailures.WithLabelValues(store, agreement).Inc()
	}
}

// storeOf is the store of the document in force, "" before one is loaded.
func storeOf(p *Policy) string {
	if p == nil {
		return ""
	}
	return p.Doc.Store
}

// meteredTransport is stateTransport timed per agreement.
type meteredTransport struct{ m *gatewayMetrics }

func (t meteredTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := stateTransport{}.RoundTrip(r)
	if st, _ := r.Context().Value(stateKey{}).(*requestState); st != nil && r.Context().Err() == nil {
		t.m.partnerAnswered(st.store, st.out.Agreement.Name, start, err != nil)
	}
	return resp, err
}

// consentsOf meters the consent source's look-ups, nil without one.
func consentsOf(next auditproxy.ConsentChecker, m *gatewayMetrics, policies func() *Policy) auditproxy.ConsentChecker {
	if next == nil {
		return nil
	}
	return auditproxy.MeteredConsents(next, m.consents, func() string { return storeOf(policies()) })
}
