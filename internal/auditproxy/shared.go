package auditproxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// This file is the part of the proxy's decision, trace, problem and audit
// code that the egress gateway (internal/egressgateway) shares: the gateway
// decides outbound requests with the same functions rather than a copy.

// Trace is the W3C trace context of one request: the caller's, from a
// valid traceparent header, or a new trace.
type Trace struct{ tc traceContext }

// NewTrace returns the trace of a request with this traceparent header
// value ("" or malformed starts a new trace).
func NewTrace(traceparent string) Trace { return Trace{newTraceContext(traceparent)} }

// TraceID is the trace's id, 32 lowercase hex digits.
func (t Trace) TraceID() string { return t.tc.traceID }

// ParentID is the caller's span id, "" when the request carried none.
func (t Trace) ParentID() string { return t.tc.parentID }

// Traceparent is the header value for a request made in span spanID.
func (t Trace) Traceparent(spanID string) string { return t.tc.traceparent(spanID) }

// NewOperationID returns a new span id (16 lowercase hex digits, never all
// zero) for an audit event's OperationID.
func NewOperationID() string { return randomHexID(8) }

// WriteProblem sends p as application/problem+json with its status.
func WriteProblem(w http.ResponseWriter, p *Problem) { writeProblem(w, p) }

// CheckAgreements refuses agreement entries the decision code could not
// enforce exactly (no name, a name twice, no categories, an unknown legal
// basis or consent mode, an unknown subject kind).
func CheckAgreements(agreements []accesspolicy.Agreement) error { return checkAgreements(agreements) }

// ErrorClass names the kind of a transport error without its text, which
// can quote what the peer sent; it is what may be logged of such an error.
func ErrorClass(err error) string { return errorClass(err) }

// OpenAuditLog opens the audit log with opts; with signingKeyDir the newest
// active signing key of that directory signs the checkpoints, and the
// directory is followed (every poll, DefaultSigningKeyPollInterval when 0)
// until ctx ends, so that a rotated version is taken into use.
func OpenAuditLog(ctx context.Context, opts auditlog.Options, signingKeyDir string, poll time.Duration, log *slog.Logger) (*auditlog.Writer, error) {
	var keys *SigningKeySource
	if signingKeyDir != "" {
		keys = NewSigningKeySource(signingKeyDir, nil, log)
		var err error
		if opts.SigningKey, err = keys.Start(); err != nil {
			return nil, err
		}
	}
	writer, err := auditlog.NewWriter(opts)
	if err != nil {
		return nil, err
	}
	if keys != nil {
		go keys.Run(ctx, poll, writer.SetSigningKey)
	}
	return writer, nil
}

// CheckRequestOverride refuses a request that could make the receiver see
// another method or URL than the one decided on (see checkOverrides): ok is
// false with the status (400) and a detail for the problem body.
func CheckRequestOverride(r *http.Request) (status int, detail string, ok bool) {
	if o := checkOverrides(r); o != nil {
		return o.status, o.detail, false
	}
	return 0, "", true
}

// RefusedBySubjectRequest refuses a request that a granted restriction or
// objection covers, and every request while the restrictions and
// objections are not known (503). For a route with {dossier} that is the
// dossier's (pseudonym); a route without {dossier} is refused whole while
// an effect in force covers it for some dossier, as it cannot be filtered
// (the audit proxy filters a route that declares records itself, before
// this is asked). storeActivity is the store's ProcessingActivity, which a
// route without activities serves. It returns the activity an objection
// refused the request through, if any. The problem says restricted, never
// why.
func RefusedBySubjectRequest(src SubjectRequestSource, m RouteMatch, storeActivity, pseudonym string, roles []string, now time.Time, prob *Problem) (activity string, refused bool) {
	if src == nil {
		return "", false
	}
	set, err := src.Effects()
	if err != nil {
		requestsUnavailable(prob)
		return "", true
	}
	t := TargetFor(m.Route, storeActivity, roles)
	var refusal Refusal
	if m.HasDossier {
		refusal, activity = set.Check(pseudonym, t, now)
	} else if refusal, activity = set.CheckAny(t, now); refusal != NotRefused {
		prob.set(ProblemRouteUnfilterable, "Route cannot be filtered", http.StatusForbidden,
			fmt.Sprintf("a restriction or objection in force covers dossiers that route %q may return, and the route declares no records, so they cannot be left out; it is refused until spec.audit.routes[].records is declared or the effect ends", m.Route.Name))
		return activity, true
	}
	switch refusal {
	case RefusedRestricted:
		prob.set(ProblemRestricted, "Restricted", http.StatusForbidden, "this dossier is restricted")
	case RefusedObjected:
		prob.set(ProblemObjected, "Objection", http.StatusForbidden, "the data subject has objected to this processing of the dossier")
	default:
		return "", false
	}
	return activity, true
}

// requestsUnavailable is the problem of a request while the restrictions
// and objections of the store's dossiers are not known.
func requestsUnavailable(prob *Problem) {
	prob.set(ProblemRequestsUnavailable, "Restrictions not loaded", http.StatusServiceUnavailable,
		"the restrictions and objections of this store's dossiers are not loaded yet; no request is served until they are")
}

// EventMethod fits a request method into an audit event (at most 16
// characters; GET for none).
func EventMethod(method string) string { return eventMethod(method) }

// RouteCategories are the route's categories as an event records them.
func RouteCategories(r *accesspolicy.Route) []string { return routeCategories(r) }
