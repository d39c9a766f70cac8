package egressgateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/httpserve"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/policyfile"
)

// The problem types of the gateway, besides the audit proxy's.
const (
	ProblemUnknownAgreement      = auditproxy.ProblemTypeBase + "unknown-agreement"
	ProblemCallerNotWorkload     = auditproxy.ProblemTypeBase + "caller-not-workload"
	ProblemPartnerUnavailable    = auditproxy.ProblemTypeBase + "partner-unavailable"
	ProblemPartnerTLSUnavailable = auditproxy.ProblemTypeBase + "partner-tls-unavailable"
)

// WorkloadAuthenticator says which pod of the store's (NAMESPACE/NAME)
// workload a bearer token belongs to; *logbook.KubernetesSenders is one. A
// refusal is a *logbook.SenderError; any other error means it could not
// decide.
type WorkloadAuthenticator interface {
	AuthenticateWorkload(ctx context.Context, token, store string) (logbook.Workload, error)
}

// Options configure a Gateway.
type Options struct {
	// Policies supplies the egress document in force. Required.
	Policies *policyfile.Source[Policy]
	// Callers authenticates the application's pods. Required.
	Callers WorkloadAuthenticator
	// Consents answers for agreements with per-dossier consent; nil means
	// none is configured, and such agreements allow nothing.
	Consents auditproxy.ConsentChecker
	// SubjectRequests supplies the restrictions and objections of the
	// store's dossiers; nil enforces none.
	SubjectRequests auditproxy.SubjectRequestSource
	// Transports reach the partners. Required.
	Transports *PartnerTransports
	// Audit records the events; Append returns once an event is durable.
	// Required.
	Audit auditproxy.EventSink
	// PseudonymKey makes the data-subject pseudonyms.
	PseudonymKey []byte
	// SyncCompletion appends the completion event before the partner's
	// response is passed on, instead of in the background.
	SyncCompletion bool
	// Now is the clock decisions are made by; nil means time.Now.
	Now func() time.Time
	// Logger receives the gateway's own log; never dossier ids or tokens.
	Logger *slog.Logger
	// Backlog, when set, is the number of audit events recorded locally and
	// not yet acknowledged by the logbook (auditlog.Writer.Unshipped),
	// exported as a metric.
	Backlog func() int
}

// Gateway is the egress gateway's HTTP handler.
type Gateway struct {
	policies   *policyfile.Source[Policy]
	callers    WorkloadAuthenticator
	consents   auditproxy.ConsentChecker
	requests   auditproxy.SubjectRequestSource
	transports *PartnerTransports
	audit      auditproxy.EventSink
	record     *auditproxy.Recorder
	key        []byte
	now        func() time.Time
	log        *slog.Logger
	metrics    *gatewayMetrics
	rp         *httputil.ReverseProxy

	inflight sync.WaitGroup
	stopping atomic.Bool
}

// New returns a Gateway.
func New(opts Options) (*Gateway, error) {
	switch {
	case opts.Policies == nil:
		return nil, errors.New("egress gateway: no policy source")
	case opts.Callers == nil:
		return nil, errors.New("egress gateway: no workload authenticator")
	case opts.Transports == nil:
		return nil, errors.New("egress gateway: no partner transports")
	case opts.Audit == nil:
		return nil, errors.New("egress gateway: no audit log")
	}
	if err := auditlog.CheckPseudonymKey(opts.PseudonymKey); err != nil {
		return nil, fmt.Errorf("egress gateway: %w", err)
	}
	g := &Gateway{policies: opts.Policies, callers: opts.Callers, consents: opts.Consents, requests: opts.SubjectRequests,
		transports: opts.Transports, audit: opts.Audit, key: opts.PseudonymKey, now: opts.Now, log: opts.Logger}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.metrics = newGatewayMetrics(opts.Backlog)
	g.audit = g.metrics.Metered(opts.Audit)
	g.consents = consentsOf(opts.Consents, g.metrics, g.policies.Current)
	g.record = auditproxy.NewRecorder(g.audit, opts.SyncCompletion, g.log, &g.inflight)
	g.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      meteredTransport{m: g.metrics},
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.partnerError,
		// Its messages can hold the partner URL, with a dossier id in it.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return g, nil
}

// requestState travels with an allowed request to the partner.
type requestState struct {
	auditproxy.Completion
	store     string
	out       Outbound
	transport http.RoundTripper
	// traceparent is the header the partner receives.
	traceparent string
}

type stateKey struct{}

// rewrite makes the request to the partner: the endpoint with the matched
// partner path appended and the caller's query; the caller's token and
// credentials removed (hop-by-hop headers, including those named in
// Connection, and X-Forwarded headers are gone already).
func rewrite(pr *httputil.ProxyRequest) {
	st, _ := pr.In.Context().Value(stateKey{}).(*requestState)
	if st == nil {
		return
	}
	ep := st.out.Endpoint
	out := &url.URL{Scheme: ep.Scheme, Host: ep.Host, Path: strings.TrimSuffix(ep.Path, "/") + st.out.PartnerPath, RawQuery: pr.In.URL.RawQuery}
	if ep.RawPath != "" {
		out.RawPath = strings.TrimSuffix(ep.RawPath, "/") + st.out.PartnerPath
	}
	pr.Out.URL, pr.Out.Host = out, ""
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
		pr.Out.Header.Del(h)
	}
	pr.Out.Header.Set(auditproxy.TraceparentHeader, st.traceparent)
	pr.Out.Trailer = nil
}

// stateTransport sends a request with the transport of its agreement.
type stateTransport struct{}

func (stateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	st, _ := r.Context().Value(stateKey{}).(*requestState)
	if st == nil {
		return nil, errors.New("no agreement transport")
	}
	return st.transport.RoundTrip(r)
}

// ServeHTTP decides, records and forwards one outbound request. Every
// outbound request, whatever its method, is sent only once its decision
// event is durable: the request itself is the disclosure to the partner (its
// path names the dossier), so it is not overlapped with the append as the
// audit proxy does for safe requests to the store's own application.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.inflight.Add(1)
	defer g.inflight.Done()
	start := time.Now()
	tr := auditproxy.NewTrace(r.Header.Get(auditproxy.TraceparentHeader))
	ev := auditlog.Event{Time: start, TraceID: tr.TraceID(), OperationID: auditproxy.NewOperationID(), ParentOperationID: tr.ParentID(),
		Actor: auditproxy.AnonymousActor, Action: auditlog.ActionExport, Outcome: auditlog.OutcomeDenied, Method: auditproxy.EventMethod(r.Method)}
	prob := &auditproxy.Problem{OperationID: ev.OperationID, TraceID: ev.TraceID}

	pol := g.policies.Current()
	out, ok := g.admit(r, pol, &ev, prob)
	if !ok {
		g.deny(w, r, &ev, prob)
		return
	}
	a := out.Agreement
	dec := auditproxy.AuthoriseSharing(r.Context(), accesspolicy.Outbound, []*accesspolicy.Agreement{&a.Agreement}, out.Match, g.now(), g.consents)
	ev.Sharing = dec.Sharing.Event(a.Partner)
	if dec.Sharing.ConsentErr != nil {
		g.log.Warn("consent source gave no answer; refusing the outbound request", "agreement", a.Name, "route", out.Match.Route.Name,
			"operationID", ev.OperationID, "error", auditproxy.ErrorClass(dec.Sharing.ConsentErr))
	}
	if !dec.Allowed {
		prob.Type, prob.Title, prob.Status = auditproxy.ProblemAccessDenied, "Sharing refused", http.StatusForbidden
		prob.Detail, prob.Reason = dec.Detail, string(dec.Reason)
		prob.MissingCategories, prob.MissingActivities = dec.Missing, dec.MissingActivities
		g.deny(w, r, &ev, prob)
		return
	}
	if activity, refused := auditproxy.RefusedBySubjectRequest(g.requests, out.Match, pol.Doc.ProcessingActivity, ev.DataSubject, nil, g.now(), prob); refused {
		if activity != "" {
			ev.ProcessingActivityID = pol.Doc.ActivityID(activity)
		}
		g.deny(w, r, &ev, prob)
		return
	}
	transport, err := g.transports.For(a.Name, a.ClientCertificate)
	if err != nil {
		g.log.Error("the partner's TLS material is not usable; refusing the outbound request", "agreement", a.Name, "operationID", ev.OperationID, "error", err.Error())
		prob.Type, prob.Title, prob.Status = ProblemPartnerTLSUnavailable, "Partner TLS not available", http.StatusServiceUnavailable
		prob.Detail = "the CA bundle or client certificate of this agreement could not be loaded, so nothing is sent"
		g.deny(w, r, &ev, prob)
		return
	}

	ev.Outcome = auditlog.OutcomeAllowed
	ev.ProcessingActivityID = pol.Doc.ActivityID(dec.Activity)
	ev.Duration = time.Since(start)
	if err := g.audit.Append(r.Context(), ev); err != nil {
		g.auditFailed(w, r, prob, err)
		return
	}
	g.metrics.decided(pol.Doc.Store, &ev, auditproxy.ReasonAgreement)
	st := &requestState{Completion: auditproxy.Completion{Event: ev, Start: start}, store: pol.Doc.Store, out: out, transport: transport, traceparent: tr.Traceparent(ev.OperationID)}
	g.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// admit identifies the caller and reads the request: the agreement named
// and the route of its partner path, filling ev. It refuses (false, with
// prob saying why) what is decided before the agreement is looked at.
func (g *Gateway) admit(r *http.Request, pol *Policy, ev *auditlog.Event, prob *auditproxy.Problem) (Outbound, bool) {
	var (
		out             Outbound
		matched, named  bool
		pathErr         error
		agreementName   string
		partnerPath     string
		storeName, wlNS string
	)
	if pol != nil {
		ev.ProcessingActivityID = pol.Doc.ProcessingActivity
		storeName, wlNS = pol.Doc.Store, pol.Doc.Namespace
		if agreementName, partnerPath, named = SplitPath(r.URL.EscapedPath()); named {
			out, matched, pathErr = pol.Match(r.Method, agreementName, partnerPath)
		}
		if a := out.Agreement; a != nil {
			ev.Sharing = (&auditproxy.SharingDecision{Agreement: &a.Agreement, Consent: auditlog.ConsentNotChecked}).Event(a.Partner)
		}
		if matched {
			ev.Route = out.Match.Route.Name
			ev.Categories = auditproxy.RouteCategories(out.Match.Route)
			if out.Match.HasDossier {
				ev.DataSubject = auditproxy.DossierPseudonym(g.key, out.Match.Dossier)
			}
			prob.Route, prob.Action = out.Match.Route.Name, string(out.Match.Route.Action)
		}
	}
	if !g.authenticate(r, wlNS+"/"+storeName, pol != nil, ev, prob) {
		return out, false
	}
	status, detail, noOverride := auditproxy.CheckRequestOverride(r)
	switch {
	case pol == nil:
		setProblem(prob, auditproxy.ProblemPolicyUnavailable, "Egress policy not loaded", http.StatusServiceUnavailable,
			"the gateway has no egress policy loaded yet, so nothing is sent")
	case !named || out.Agreement == nil:
		setProblem(prob, ProblemUnknownAgreement, "Unknown agreement", http.StatusForbidden,
			"the path must start with the name of a sharing agreement of this store that has a partner endpoint: /<agreement>/<partner path>")
	case !noOverride:
		setProblem(prob, auditproxy.ProblemRequestOverride, "Method or URL override", status, strings.ReplaceAll(detail, "the application", "the partner"))
	case pathErr != nil:
		setProblem(prob, auditproxy.ProblemNonCanonicalPath, "Non-canonical request path", http.StatusBadRequest, pathErr.Error())
	case !matched:
		setProblem(prob, auditproxy.ProblemNoRoute, "No outbound route", http.StatusForbidden,
			fmt.Sprintf("no outbound route of agreement %q matches this %s request; only the agreement's outbound routes are sent", out.Agreement.Name, ev.Method))
	case asksUpgrade(r):
		setProblem(prob, auditproxy.ProblemUpgradeNotAllowed, "Upgrade not allowed", http.StatusForbidden,
			"the gateway does not upgrade connections: after an upgrade it would see nothing more of what is sent")
	default:
		return out, true
	}
	return out, false
}

// authenticate checks that the caller is a pod of the store's workload.
func (g *Gateway) authenticate(r *http.Request, store string, havePolicy bool, ev *auditlog.Event, prob *auditproxy.Problem) bool {
	token := bearerToken(r)
	if token == "" {
		setProblem(prob, auditproxy.ProblemUnauthenticated, "Authentication required", http.StatusUnauthorized,
			"send the pod's projected ServiceAccount token of the gateway's audience as a bearer token")
		return false
	}
	if !havePolicy {
		return true // refused for the missing policy; the store is not known
	}
	wl, err := g.callers.AuthenticateWorkload(r.Context(), token, store)
	var se *logbook.SenderError
	switch {
	case err == nil:
		ev.Actor = wl.User()
		return true
	case errors.As(err, &se) && se.Status == http.StatusUnauthorized:
		setProblem(prob, auditproxy.ProblemUnauthenticated, "Authentication required", http.StatusUnauthorized, se.Message)
	case errors.As(err, &se) && (se.Status == http.StatusForbidden || se.Status == http.StatusBadRequest):
		setProblem(prob, ProblemCallerNotWorkload, "Caller is not the store's workload", http.StatusForbidden, se.Message)
	default:
		setProblem(prob, auditproxy.ProblemIdentityUnavailable, "Caller could not be verified", http.StatusServiceUnavailable,
			"the gateway could not verify the caller's token with the Kubernetes API; retry")
	}
	return false
}

// deny records a refused request and sends its problem, or 503 when the
// event cannot be recorded.
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, ev *auditlog.Event, prob *auditproxy.Problem) {
	ev.Status = prob.Status
	ev.Duration = time.Since(ev.Time)
	if err := g.audit.Append(auditlog.WithSource(r.Context(), sourceOf(r)), *ev); err != nil {
		g.auditFailed(w, r, &auditproxy.Problem{OperationID: prob.OperationID, TraceID: prob.TraceID}, err)
		return
	}
	g.metrics.decided(storeOf(g.policies.Current()), ev, auditproxy.DeniedReason(prob, MetricReasons))
	if prob.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dossierguard-egress"`)
	}
	auditproxy.WriteProblem(w, prob)
}

// auditFailed answers 503 when an event could not be recorded: nothing is
// sent then.
func (g *Gateway) auditFailed(w http.ResponseWriter, r *http.Request, prob *auditproxy.Problem, err error) {
	if r.Context().Err() == nil {
		g.log.Error("audit event not recorded; refusing the outbound request", "operationID", prob.OperationID, "error", err.Error())
	}
	*prob = auditproxy.Problem{Type: auditproxy.ProblemAuditUnavailable, Title: "Audit log unavailable", Status: http.StatusServiceUnavailable,
		Detail: "the request could not be recorded in the audit log, so it was not sent", OperationID: prob.OperationID, TraceID: prob.TraceID}
	auditproxy.WriteProblem(w, prob)
}

// modifyResponse records the completion once the partner's response
// headers have arrived.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(stateKey{}).(*requestState)
	if st == nil {
		return nil
	}
	return g.complete(st, resp.StatusCode)
}

// complete appends the completion event of an allowed request, once.
func (g *Gateway) complete(st *requestState, status int) error {
	return g.record.Complete(&st.Completion, status)
}

// partnerError answers 502 when the partner could not be reached or its
// certificate was not trusted, and records the completion.
func (g *Gateway) partnerError(w http.ResponseWriter, out *http.Request, err error) {
	st, _ := out.Context().Value(stateKey{}).(*requestState)
	prob := &auditproxy.Problem{Type: ProblemPartnerUnavailable, Title: "Partner unavailable", Status: http.StatusBadGateway,
		Detail: "the partner did not answer, or its TLS certificate is not trusted by the agreement's CA bundle"}
	if st != nil {
		prob.OperationID, prob.TraceID, prob.Route, prob.Action = st.Event.OperationID, st.Event.TraceID, st.Event.Route, string(st.Event.Action)
	}
	if errors.Is(err, auditproxy.ErrCompletionNotRecorded) {
		prob.Type, prob.Title, prob.Status = auditproxy.ProblemAuditUnavailable, "Audit log unavailable", http.StatusServiceUnavailable
		prob.Detail = "the partner answered, but the completion could not be recorded in the audit log"
		auditproxy.WriteProblem(w, prob)
		return
	}
	status := http.StatusBadGateway
	if out.Context().Err() != nil {
		status = 0 // the caller went away
	} else if st != nil {
		g.log.Warn("partner request failed", "agreement", st.out.Agreement.Name, "route", prob.Route, "operationID", prob.OperationID, "error", auditproxy.ErrorClass(err))
	}
	if st != nil && g.complete(st, status) != nil {
		prob.Type, prob.Title, prob.Status = auditproxy.ProblemAuditUnavailable, "Audit log unavailable", http.StatusServiceUnavailable
	}
	if status != 0 {
		auditproxy.WriteProblem(w, prob)
	}
}

// Ready reports whether the gateway can serve: a policy is loaded, the
// store's data-subject requests have been read, the audit log works and it
// is not shutting down.
func (g *Gateway) Ready() error {
	if g.stopping.Load() {
		return errors.New("shutting down")
	}
	if err := g.policies.Ready(); err != nil {
		return err
	}
	if err := auditproxy.RequestsLoaded(g.requests); err != nil {
		return err
	}
	if err := g.audit.Err(); err != nil {
		return fmt.Errorf("audit log failed: %w", err)
	}
	return nil
}

// BeginShutdown makes Ready fail.
func (g *Gateway) BeginShutdown() { g.stopping.Store(true) }

// Wait waits for requests in flight and pending completion events.
func (g *Gateway) Wait() { g.inflight.Wait() }

// HealthHandler serves /healthz, /readyz and /metrics (the gateway's
// Prometheus metrics, see metrics.go).
func (g *Gateway) HealthHandler() http.Handler {
	mux := httpserve.HealthMux(g.Ready)
	mux.Handle("/metrics", g.metrics.handler())
	return mux
}

func setProblem(p *auditproxy.Problem, typ, title string, status int, detail string) {
	p.Type, p.Title, p.Status, p.Detail = typ, title, status, detail
}

// asksUpgrade reports whether a request asks to switch protocols.
func asksUpgrade(r *http.Request) bool {
	return len(r.Header.Values("Upgrade")) > 0 || httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// bearerToken is the token of an "Authorization: Bearer" header, "" without.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// sourceOf is the address a request came from, by which floods of
// refusals are counted; it is not recorded.
func sourceOf(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
