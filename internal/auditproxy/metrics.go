package auditproxy

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/metrics"
)

// proxyMetrics are the proxy's Prometheus metrics, on its own registry and
// served at /metrics on the health port. Their labels are the store, route
// names and processing activity names (the store's configuration, bounded
// by metricActivity), the outcome and a reason of the fixed vocabulary
// MetricReasons, never an actor, a dossier, a path or free text.
type proxyMetrics struct {
	registry  *prometheus.Registry
	decisions *prometheus.CounterVec
	// activities counts the same decisions by processing activity.
	activities *prometheus.CounterVec
	consents   *prometheus.CounterVec
	*AuditMetrics
	// all are the registered collectors.
	all []prometheus.Collector
}

// The reasons of the decisions metric: why a recorded request was allowed
// or denied. A denial of the roles or agreements carries its
// DecisionReason; one refused before the roles are looked at carries its
// problem type; anything else counts as ReasonOther, so that the label's
// values stay these.
const (
	// ReasonRole: allowed by the caller's roles.
	ReasonRole DecisionReason = "role"
	// ReasonBreakGlass: allowed only through a break-glass role.
	ReasonBreakGlass DecisionReason = "break-glass"
	// ReasonAgreement: a partner's request allowed under an agreement in force.
	ReasonAgreement DecisionReason = "agreement"
	// ReasonOther: a reason outside this vocabulary (none is expected).
	ReasonOther DecisionReason = "other"
)

// MetricReasons is every value of the reason label of
// dossierguard_auditproxy_decisions_total.
var MetricReasons = []DecisionReason{
	ReasonRole, ReasonBreakGlass, ReasonAgreement,
	ReasonCategoriesNotGranted, ReasonAssignmentUnavailable, ReasonActivityNotServed,
	ReasonNoAgreementInForce, ReasonActionNotShared, ReasonCategoriesNotShared,
	ReasonConsentNotGiven, ReasonConsentWithdrawn, ReasonConsentUnavailable,
	"unauthenticated", "ambiguous-identity", "identity-unavailable", "policy-unavailable",
	"request-override", "non-canonical-path", "no-route", "upgrade-not-allowed", "invalid-break-glass-reason",
	"restricted", "objection", "subject-requests-unavailable", "route-unfilterable", "records-unfilterable", "response-too-large",
	ReasonOther,
}

// The outcomes of the consent look-ups metric.
const (
	ConsentLookupGiven       = "given"
	ConsentLookupNotGiven    = "not-given"
	ConsentLookupWithdrawn   = "withdrawn"
	ConsentLookupUnavailable = "unavailable"
)

func newProxyMetrics() *proxyMetrics {
	return newProxyMetricsWith(nil)
}

// newProxyMetricsWith also exports backlog, when not nil, as the number of
// audit events recorded locally and not yet acknowledged by the logbook.
func newProxyMetricsWith(backlog func() int) *proxyMetrics {
	m := &proxyMetrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dossierguard_auditproxy_decisions_total",
			Help: "Access decisions recorded in the audit log, by store, route (empty when none matched), outcome (allowed, denied) and reason (docs/audit-proxy.md, Metrics).",
		}, []string{"store", "route", "outcome", "reason"}),
		activities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dossierguard_auditproxy_activity_decisions_total",
			Help: "Access decisions recorded in the audit log, by store, processing activity (the ProcessingActivity's name; none when the route names none, unknown when it names one that does not exist) and outcome (docs/audit-proxy.md, Metrics).",
		}, []string{"store", "activity", "outcome"}),
		consents:     NewConsentLookups("auditproxy", "partners' requests"),
		AuditMetrics: NewAuditMetrics("auditproxy", backlog),
	}
	m.all = append([]prometheus.Collector{m.decisions, m.activities, m.consents}, m.Collectors()...)
	m.all = append(m.all, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(m.all...)
	return m
}

// AuditMetrics measure a serving role's appends to its audit log, as
// dossierguard_<subsystem>_audit_*: the time to make an event durable, the
// events that could not be recorded, when one last was, and, with a
// logbook, the events not yet acknowledged. The audit proxy and the egress
// gateway each have one, on their own registries.
type AuditMetrics struct {
	latency  prometheus.Histogram
	failures prometheus.Counter
	lastOK   prometheus.Gauge
	backlog  prometheus.Collector
}

// NewAuditMetrics returns the audit metrics of a role (subsystem:
// auditproxy, egressgateway); backlog, when not nil, is exported as the
// number of events recorded locally and not yet acknowledged by the
// logbook (auditlog.Writer.Unshipped).
func NewAuditMetrics(subsystem string, backlog func() int) *AuditMetrics {
	name := func(n string) string { return "dossierguard_" + subsystem + "_audit_" + n }
	m := &AuditMetrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    name("append_duration_seconds"),
			Help:    "Time to make one audit event durable (a decision, a denial, a synchronous completion; not a background completion, which waits for the next commit by design), successful or not.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name("append_failures_total"),
			Help: "Audit events that could not be recorded; a decision that cannot be recorded refuses its request.",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: name("last_append_timestamp_seconds"),
			Help: "When an audit event was last recorded, as a Unix timestamp.",
		}),
	}
	if backlog != nil {
		m.backlog = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: name("backlog_events"),
			Help: "Audit events recorded locally and not yet acknowledged by the logbook; past the spool's bound, requests are refused.",
		}, func() float64 { return float64(backlog()) })
	}
	return m
}

// Collectors are the metrics to register.
func (m *AuditMetrics) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.latency, m.failures, m.lastOK}
	if m.backlog != nil {
		cs = append(cs, m.backlog)
	}
	return cs
}

// Metered returns next measured by m; the role counts its decisions itself,
// once their event is recorded.
func (m *AuditMetrics) Metered(next EventSink) EventSink { return meteredSink{next: next, m: m} }

// NewConsentLookups is the counter of a role's consent look-ups,
// dossierguard_<subsystem>_consent_lookups_total by store and outcome
// (ConsentLookupGiven and the others); what names the requests asked for.
func NewConsentLookups(subsystem, what string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dossierguard_" + subsystem + "_consent_lookups_total",
		Help: "Consent look-ups for " + what + ", by store and outcome (given, not-given, withdrawn, unavailable: no answer, and the request is refused).",
	}, []string{"store", "outcome"})
}

// MeteredConsents counts every look-up of next in lookups (see
// NewConsentLookups) under the store that store names at that moment.
func MeteredConsents(next ConsentChecker, lookups *prometheus.CounterVec, store func() string) ConsentChecker {
	return meteredConsents{next: next, lookups: lookups, store: store}
}

// MetricNames are the metrics an audit proxy exports on /metrics, as its
// registry describes them.
func MetricNames() []string {
	return metrics.DescribedNames(newProxyMetricsWith(func() int { return 0 }).all...)
}

func (m *proxyMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// metricReason bounds a reason to MetricReasons.
func metricReason(r DecisionReason) DecisionReason { return BoundedReason(r, MetricReasons) }

// BoundedReason is r when vocabulary lists it, else ReasonOther: a metric's
// reason label takes only the values of its vocabulary.
func BoundedReason(r DecisionReason, vocabulary []DecisionReason) DecisionReason {
	if slices.Contains(vocabulary, r) {
		return r
	}
	return ReasonOther
}

// allowedReason is why an allowed decision was allowed.
func allowedReason(dec Decision) DecisionReason {
	switch {
	case dec.Sharing != nil:
		return ReasonAgreement
	case dec.BreakGlass:
		return ReasonBreakGlass
	default:
		return ReasonRole
	}
}

// deniedReason is why a refused request was refused: the decision's reason
// for an access denial, else the problem type.
func deniedReason(prob *Problem) DecisionReason { return DeniedReason(prob, MetricReasons) }

// DeniedReason is the reason label of a refused request, bounded by
// vocabulary (BoundedReason): for an access denial the decision's reason,
// else the problem type without ProblemTypeBase.
func DeniedReason(prob *Problem, vocabulary []DecisionReason) DecisionReason {
	if prob.Type == ProblemAccessDenied {
		switch {
		case prob.reason != ReasonNone:
			return BoundedReason(prob.reason, vocabulary)
		case prob.Reason != "":
			return BoundedReason(DecisionReason(prob.Reason), vocabulary)
		}
	}
	return BoundedReason(DecisionReason(strings.TrimPrefix(prob.Type, ProblemTypeBase)), vocabulary)
}

// The activity label of a decision that names no processing activity, and
// of one that names an activity the store does not have.
const (
	ActivityNone    = "none"
	ActivityUnknown = "unknown"
)

// metricActivity bounds the activity label to the activities that exist
// for the store (those of the document's ActivityIDs, register names, not
// personal data): "" is ActivityNone, any other name ActivityUnknown.
func metricActivity(doc *accesspolicy.Document, activity string) string {
	switch {
	case activity == "":
		return ActivityNone
	case doc != nil && doc.ActivityIDs[activity] != "":
		return activity
	default:
		return ActivityUnknown
	}
}

// decided counts one recorded decision, by route and reason and by the
// activity label (metricActivity) it was decided under.
func (m *proxyMetrics) decided(store, route string, outcome auditlog.Outcome, reason DecisionReason, activity string) {
	m.decisions.WithLabelValues(store, route, string(outcome), string(metricReason(reason))).Inc()
	if activity == "" {
		activity = ActivityNone
	}
	m.activities.WithLabelValues(store, activity, string(outcome)).Inc()
}

// consentLookup is the outcome label of one consent look-up.
func consentLookup(a ConsentAnswer, err error) string {
	switch {
	case err != nil:
		return ConsentLookupUnavailable
	case a.Given:
		return ConsentLookupGiven
	case a.Withdrawn:
		return ConsentLookupWithdrawn
	default:
		return ConsentLookupNotGiven
	}
}

// meteredConsents counts every consent look-up by its outcome.
type meteredConsents struct {
	next    ConsentChecker
	lookups *prometheus.CounterVec
	store   func() string
}

func (c meteredConsents) Consent(ctx context.Context, q ConsentQuery) (ConsentAnswer, error) {
	a, err := c.next.Consent(ctx, q)
	c.lookups.WithLabelValues(c.store(), consentLookup(a, err)).Inc()
	return a, err
}

// meteredSink measures every append to the audit log; decisions are
// counted by the proxy once their event is recorded.
type meteredSink struct {
	next EventSink
	m    *AuditMetrics
}

func (s meteredSink) Append(ctx context.Context, ev auditlog.Event) error {
	start := time.Now()
	return s.observe(ctx, start, s.next.Append(ctx, ev))
}

// observe measures an append that began at start and ended with err.
func (s meteredSink) observe(ctx context.Context, start time.Time, err error) error {
	if !auditlog.CommitDeferred(ctx) { // a deferred event waits for others' commit by design
		s.m.latency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		s.m.failures.Inc()
		return err
	}
	s.m.lastOK.Set(float64(time.Now().UnixNano()) / 1e9)
	return nil
}

// Begin is Append in two steps (Beginner), measured the same way.
func (s meteredSink) Begin(ctx context.Context, ev auditlog.Event) func() error {
	start := time.Now()
	wait := beginAppend(s.next, ctx, ev)
	return func() error { return s.observe(ctx, start, wait()) }
}

// Queue is Append for an event nothing waits on (Queuer), measured the
// same way.
func (s meteredSink) Queue(ctx context.Context, ev auditlog.Event, done func(error)) {
	start := time.Now()
	queueAppend(s.next, ctx, ev, func(err error) { done(s.observe(ctx, start, err)) })
}

func (s meteredSink) Err() error { return s.next.Err() }
