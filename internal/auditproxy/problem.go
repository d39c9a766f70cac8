package auditproxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemTypeBase is the prefix of the problem types; docs/audit-proxy.md
// describes each.
const ProblemTypeBase = "https://dossierguard.io/problems/"

// The problem types of the proxy.
const (
	ProblemUnauthenticated         = ProblemTypeBase + "unauthenticated"
	ProblemAmbiguousIdentity       = ProblemTypeBase + "ambiguous-identity"
	ProblemAccessDenied            = ProblemTypeBase + "access-denied"
	ProblemNoRoute                 = ProblemTypeBase + "no-route"
	ProblemNonCanonicalPath        = ProblemTypeBase + "non-canonical-path"
	ProblemRequestOverride         = ProblemTypeBase + "request-override"
	ProblemUpgradeNotAllowed       = ProblemTypeBase + "upgrade-not-allowed"
	ProblemInvalidBreakGlassReason = ProblemTypeBase + "invalid-break-glass-reason"
	ProblemAuditUnavailable        = ProblemTypeBase + "audit-unavailable"
	ProblemPolicyUnavailable       = ProblemTypeBase + "policy-unavailable"
	ProblemIdentityUnavailable     = ProblemTypeBase + "identity-unavailable"
	ProblemUpstreamUnavailable     = ProblemTypeBase + "upstream-unavailable"
	ProblemRestricted              = ProblemTypeBase + "restricted"
	ProblemObjected                = ProblemTypeBase + "objection"
	ProblemRequestsUnavailable     = ProblemTypeBase + "subject-requests-unavailable"
	// ProblemRouteUnfilterable: a route without {dossier} and without
	// records, which a restriction or objection in force reaches, is
	// refused whole (403).
	ProblemRouteUnfilterable = ProblemTypeBase + "route-unfilterable"
	// ProblemRecordsUnfilterable: the application's response on a records
	// route is not the declared JSON (502); nothing of it is sent.
	ProblemRecordsUnfilterable = ProblemTypeBase + "records-unfilterable"
	// ProblemResponseTooLarge: the application's response on a records
	// route exceeds records.maxBodyBytes (502); nothing of it is sent.
	ProblemResponseTooLarge = ProblemTypeBase + "response-too-large"
)

// Problem is an RFC 9457 problem details object with the proxy's extension
// members. It never holds the dossier id, the caller's name or a token.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`

	// Route is the name of the matched route.
	Route string `json:"route,omitempty"`
	// Action is the route's action.
	Action string `json:"action,omitempty"`
	// MissingCategories are the route's categories the caller's roles do
	// not grant.
	MissingCategories []string `json:"missingCategories,omitempty"`
	// MissingActivities are the route's processing activities, none of
	// which the caller's roles (or the partner's agreements) serve.
	MissingActivities []string `json:"missingActivities,omitempty"`
	// BreakGlassHeader names the header that states a break-glass reason,
	// when a break-glass role would apply.
	BreakGlassHeader string `json:"breakGlassHeader,omitempty"`
	// Reason is the decision's reason of a refusal under a sharing
	// agreement (such as categories-not-shared or consent-unavailable),
	// set by the egress gateway.
	Reason string `json:"reason,omitempty"`
	// OperationID and TraceID find the request's event in the audit log.
	OperationID string `json:"operationId,omitempty"`
	TraceID     string `json:"traceId,omitempty"`

	// reason is the decision's reason of an access denial, and activity
	// the label of the processing activity the request was decided under
	// (metricActivity), for the metrics only; they are not sent.
	reason   DecisionReason
	activity string
}

// set fills the members every problem has.
func (p *Problem) set(typ, title string, status int, detail string) {
	p.Type, p.Title, p.Status, p.Detail = typ, title, status, detail
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"about:blank","status":500}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
