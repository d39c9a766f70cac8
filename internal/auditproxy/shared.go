package auditproxy

import (
	"context"
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

// RefusedBySubjectRequest fills prob and returns true for a request on
// route m of the dossier with pseudonym that a granted restriction or
// objection of src covers (403), or for any request for a dossier while
// src has not loaded them (503, fail closed); roles are the roles it was
// decided under (none for a partner or an outbound request). The problem
// says restricted, never why. A nil src enforces nothing.
func RefusedBySubjectRequest(src SubjectRequestSource, m RouteMatch, pseudonym string, roles []string, now time.Time, prob *Problem) bool {
	if src == nil || !m.HasDossier {
		return false
	}
	set, err := src.Effects()
	if err != nil {
		prob.set(ProblemRequestsUnavailable, "Restrictions not loaded", http.StatusServiceUnavailable,
			"the restrictions and objections of this store's dossiers are not loaded yet; no request for a dossier is served until they are")
		return true
	}
	switch set.Check(pseudonym, m.Route, roles, now) {
	case RefusedRestricted:
		prob.set(ProblemRestricted, "Restricted", http.StatusForbidden, "this dossier is restricted")
	case RefusedObjected:
		prob.set(ProblemObjected, "Objection", http.StatusForbidden, "the data subject has objected to this processing of the dossier")
	default:
		return false
	}
	return true
}

// EventMethod fits a request method into an audit event (at most 16
// characters; GET for none).
func EventMethod(method string) string { return eventMethod(method) }

// RouteCategories are the route's categories as an event records them.
func RouteCategories(r *accesspolicy.Route) []string { return routeCategories(r) }
