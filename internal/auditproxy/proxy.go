package auditproxy

import (
	"bytes"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/httpserve"
)

// BreakGlassHeader carries the reason for a break-glass access.
const BreakGlassHeader = "X-Break-Glass-Reason"

// MaxBreakGlassReasonLen is the longest reason accepted, in bytes.
const MaxBreakGlassReasonLen = 1024

// EventSink records audit events; *auditlog.Writer is one. Append returns
// only once the event is durable, or with an error.
type EventSink interface {
	Append(ctx context.Context, ev auditlog.Event) error
	Err() error
}

// Options configure a Proxy.
type Options struct {
	// Upstream is the application, such as http://127.0.0.1:8080.
	Upstream *url.URL
	// Policies supplies the access policy in force.
	Policies *PolicySource
	// Authenticator identifies callers.
	Authenticator *Authenticator
	// Assignments answers for roles limited to assigned cases; nil means
	// none is configured, and such roles never count.
	Assignments AssignmentChecker
	// Consents answers for agreements with per-dossier consent; nil means
	// none is configured, and such agreements allow nothing.
	Consents ConsentChecker
	// SubjectRequests supplies the restrictions and objections of the
	// store's data-subject requests; nil means none are enforced. While it
	// is not synced every request for a dossier is refused (503).
	SubjectRequests SubjectRequestSource
	// Now is the clock partner decisions are made by; nil means time.Now.
	Now func() time.Time
	// Audit records the events. Required.
	Audit EventSink
	// PseudonymKey makes the data-subject pseudonyms (auditlog.Pseudonymise).
	PseudonymKey []byte
	// SyncCompletion appends the completion event before the response is
	// sent on; by default it is appended in the background (see
	// docs/benchmarks-auditproxy.md for why).
	SyncCompletion bool
	// Transport reaches the upstream; nil means a transport tuned for one
	// local upstream.
	Transport http.RoundTripper
	// Logger receives the proxy's own log; never dossier ids, names or
	// tokens.
	Logger *slog.Logger
	// Backlog, when set, is the number of audit events recorded locally and
	// not yet acknowledged by the logbook (auditlog.Writer.Unshipped), which
	// the proxy exports as a metric.
	Backlog func() int
}

// Proxy is the audit proxy's HTTP handler.
type Proxy struct {
	policies    *PolicySource
	auth        *Authenticator
	assignments AssignmentChecker
	consents    ConsentChecker
	requests    SubjectRequestSource
	now         func() time.Time
	audit       EventSink
	record      *Recorder
	// pseudonyms makes DossierPseudonym's pseudonyms under the pseudonym
	// key, reusing its HMACs.
	pseudonyms *auditlog.Pseudonymiser
	log        *slog.Logger
	metrics    *proxyMetrics
	rp         *httputil.ReverseProxy

	// inflight counts requests being served and completion events being
	// appended in the background; Wait waits for it.
	inflight sync.WaitGroup
	stopping atomic.Bool

	// tunnels ends when CloseTunnels is called; upgraded connections
	// (WebSockets) are closed then.
	tunnels      context.Context
	closeTunnels context.CancelFunc
}

// New returns a Proxy.
func New(opts Options) (*Proxy, error) {
	switch {
	case opts.Upstream == nil || opts.Upstream.Host == "":
		return nil, errors.New("audit proxy: no upstream URL")
	case opts.Policies == nil:
		return nil, errors.New("audit proxy: no policy source")
	case opts.Authenticator == nil:
		return nil, errors.New("audit proxy: no authenticator")
	case opts.Audit == nil:
		return nil, errors.New("audit proxy: no audit log")
	}
	if err := auditlog.CheckPseudonymKey(opts.PseudonymKey); err != nil {
		return nil, fmt.Errorf("audit proxy: %w", err)
	}
	p := &Proxy{
		policies:    opts.Policies,
		auth:        opts.Authenticator,
		assignments: opts.Assignments,
		consents:    opts.Consents,
		requests:    opts.SubjectRequests,
		now:         opts.Now,
		pseudonyms:  auditlog.NewPseudonymiser(opts.PseudonymKey),
		log:         opts.Logger,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.metrics = newProxyMetricsWith(opts.Backlog)
	p.audit = p.metrics.Metered(opts.Audit)
	p.record = NewRecorder(p.audit, opts.SyncCompletion, p.log, &p.inflight)
	if opts.Consents != nil {
		p.consents = MeteredConsents(opts.Consents, p.metrics.consents, p.storeName)
	}
	p.tunnels, p.closeTunnels = context.WithCancel(context.Background())
	if p.now == nil {
		p.now = time.Now
	}
	transport := opts.Transport
	if transport == nil {
		transport = NewUpstreamTransport()
	}
	upstream := opts.Upstream
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host // the application sees the host the client asked for
			pr.SetXForwarded()
			// Hop-by-hop headers, including those a client names in
			// Connection, are gone from Out by now: set what the decision
			// was made on last, so that no Connection option removes it.
			// Request trailers arrive after the decision and could carry
			// identity headers; the application gets none.
			pr.Out.Trailer = nil
			if st, _ := pr.In.Context().Value(stateKey{}).(*requestState); st != nil {
				for k, v := range st.forward {
					pr.Out.Header[k] = v
				}
				if st.records != nil {
					// The whole response, in a coding the proxy reads: the
					// transport asks for gzip and decompresses it.
					pr.Out.Header.Del("Accept-Encoding")
					pr.Out.Header.Del("Range")
					pr.Out.Header.Del("If-Range")
				}
			}
		},
		Transport:      transport,
		BufferPool:     copyBuffers{},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.proxyError,
		// Its messages can hold the upstream URL, with a dossier id in it;
		// upstreamError logs what matters.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return p, nil
}

// NewUpstreamTransport returns the transport to a local application: no
// environment proxy, and enough idle connections for many concurrent
// requests.
func NewUpstreamTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// copyBuffers reuses the buffers that copy response bodies, which
// ReverseProxy would otherwise allocate (32 KiB) for every response.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

// requestState travels with an allowed request to ModifyResponse.
type requestState struct {
	Completion
	// held is the client's response while the decision is being made
	// durable (a safe request); nil when it was durable before forwarding.
	held *HeldResponse
	// forward are the headers the application receives exactly as the
	// proxy decided on them, after hop-by-hop processing.
	forward http.Header
	// records filters the response of a route without {dossier} that
	// declares records; nil for every other route.
	records *recordsFilter
}

// recordsFilter is how the response of a records route is filtered: the
// route's records and whether the items of a dossier id are left out.
type recordsFilter struct {
	spec     *accesspolicy.Records
	withhold func(dossierID string) bool
}

type stateKey struct{}

// ServeHTTP identifies, authorises and records the request. It forwards an
// unsafe request only once its decision event is durable; a safe one
// (OverlapsDurability) while its decision is being made durable, holding
// every byte of the response until it is.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inflight.Add(1)
	defer p.inflight.Done()
	start := time.Now()
	tc := newTraceContext(r.Header.Get(TraceparentHeader))
	ev := auditlog.Event{
		Time:              start,
		TraceID:           tc.traceID,
		OperationID:       randomHexID(8),
		ParentOperationID: tc.parentID,
		Actor:             AnonymousActor,
		Action:            methodAction(r.Method),
		Outcome:           auditlog.OutcomeDenied,
		Method:            eventMethod(r.Method),
	}
	prob := &Problem{OperationID: ev.OperationID, TraceID: ev.TraceID}

	in, ok := p.admit(w, r, &ev, prob)
	if !ok {
		p.deny(w, r, &ev, prob)
		return
	}
	pol, id, m, tunnel := in.pol, in.id, in.m, in.tunnel
	dec, reason := p.decide(r, pol, id, m, in.reason, &ev)
	if dec.AssignmentErr != nil {
		p.log.Warn("assignment source gave no answer; denying roles limited to assigned cases", "route", m.Route.Name, "operationID", ev.OperationID, "error", dec.AssignmentErr.Error())
	}
	ev.Roles = dec.Roles
	// The activity the request was allowed under (purpose limitation), or
	// the one it was refused under; the store's ProcessingActivity when the
	// route names none.
	recordActivity(&pol.Doc, &ev, prob, dec.Activity)
	var records *recordsFilter
	if dec.Allowed {
		var refused bool
		if records, refused = p.refusedBySubjectRequest(pol, m, dec.Roles, &ev, prob); refused {
			p.deny(w, r, &ev, prob)
			return
		}
	}
	if !dec.Allowed {
		prob.Type, prob.Title, prob.Status = ProblemAccessDenied, "Access denied", http.StatusForbidden
		prob.Detail = dec.Detail
		prob.MissingCategories = dec.Missing
		prob.MissingActivities = dec.MissingActivities
		if strings.Contains(dec.Detail, BreakGlassHeader) {
			prob.BreakGlassHeader = BreakGlassHeader
		}
		prob.reason = dec.Reason
		p.deny(w, r, &ev, prob)
		return
	}

	ev.Outcome = auditlog.OutcomeAllowed
	if dec.BreakGlass {
		ev.BreakGlass, ev.BreakGlassReason = true, reason
	}
	ev.Duration = time.Since(start)
	st := &requestState{Completion: Completion{Event: ev, Start: start}, forward: http.Header{}, records: records}
	recorded := func() { p.metrics.decided(pol.Doc.Store, ev.Route, ev.Outcome, allowedReason(dec), prob.activity) }
	w, wait, ok := p.recordDecision(w, r, st, prob, !tunnel && OverlapsDurability(r.Method, m.Route.Action))
	if !ok {
		return
	}
	defer func() {
		if wait() == nil {
			recorded()
		}
	}()
	// The completion that modifyResponse ended, after the last byte of the
	// response (or its failure: ReverseProxy panics when the copy fails).
	defer p.record.Finish(&st.Completion)

	st.forward.Set(TraceparentHeader, tc.traceparent(ev.OperationID))
	for _, h := range p.auth.decisionHeaders() {
		if v := r.Header[h]; len(v) > 0 {
			st.forward[h] = slices.Clone(v)
		}
	}
	if reason != "" {
		st.forward.Set(BreakGlassHeader, reason)
	}
	p.forward(w, r, st, tunnel)
}

// forward passes an allowed request on to the application and its response
// back, flushed before the completion is appended.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *requestState, tunnel bool) {
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	if tunnel {
		// ReverseProxy closes the tunnel when the request's context ends;
		// end it on shutdown too, as http.Server.Shutdown leaves hijacked
		// connections alone and ServeHTTP (which Wait waits for) returns
		// only when the tunnel closes.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(p.tunnels, cancel)()
	}
	p.rp.ServeHTTP(w, r.WithContext(ctx))
	if st.Ended() {
		// The response's last bytes leave now, not after ServeHTTP
		// returns, so that they do not wait for the completion's append.
		_ = http.NewResponseController(w).Flush()
	}
}

// admission is what admit found out about a request.
type admission struct {
	pol    *Policy
	id     Identity
	m      RouteMatch
	reason string // the break-glass reason, "" when none
	tunnel bool   // an allowed WebSocket upgrade
}

// admit identifies the caller and matches the request to a route, filling
// ev, and refuses (false, with prob saying why) what is decided before the
// roles are looked at: no identity, no policy, a method or URL override, a
// non-canonical path, no route, an upgrade the route does not allow, an
// unusable break-glass reason.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, ev *auditlog.Event, prob *Problem) (admission, bool) {
	var in admission
	id, authErr := p.auth.Authenticate(r)
	in.pol = p.policies.Current()
	var (
		matched bool
		pathErr error
	)
	if in.pol != nil {
		ev.ProcessingActivityID = in.pol.Doc.ProcessingActivity
		if in.m, matched, pathErr = in.pol.Match(r.Method, r.URL.EscapedPath()); matched {
			p.recordRoute(ev, prob, in.m)
			// Refused before the decision, the request is recorded under
			// the route's first activity: the register entry it would have
			// fallen under.
			if len(in.m.Route.Activities) > 0 {
				recordActivity(&in.pol.Doc, ev, prob, in.m.Route.Activities[0])
			}
		}
	}
	if authErr != nil {
		authProblem(w, authErr, prob)
		return in, false
	}
	in.id, ev.Actor = id, id.User
	if in.pol == nil {
		prob.set(ProblemPolicyUnavailable, "Access policy not loaded", http.StatusServiceUnavailable,
			"the proxy has no access policy loaded yet, so nothing is allowed")
		return in, false
	}
	override := checkOverrides(r)
	var problem string
	switch {
	case override != nil:
		prob.set(ProblemRequestOverride, "Method or URL override", override.status, override.detail)
	case pathErr != nil:
		prob.set(ProblemNonCanonicalPath, "Non-canonical request path", http.StatusBadRequest, pathErr.Error())
	case !matched:
		prob.set(ProblemNoRoute, "No audited route", http.StatusForbidden,
			fmt.Sprintf("no route of the access policy matches this %s request; requests to unaudited routes are refused", ev.Method))
	default:
		if in.tunnel, problem = checkUpgrade(r, in.m.Route); problem != "" {
			prob.set(ProblemUpgradeNotAllowed, "Upgrade not allowed", http.StatusForbidden, problem)
		} else if in.reason, problem = breakGlassReason(r.Header); problem != "" {
			prob.set(ProblemInvalidBreakGlassReason, "Invalid break-glass reason", http.StatusBadRequest, problem)
			prob.BreakGlassHeader = BreakGlassHeader
		} else {
			return in, true
		}
	}
	return in, false
}

// recordRoute puts the matched route, and the dossier's pseudonym, into the
// event and the problem.
func (p *Proxy) recordRoute(ev *auditlog.Event, prob *Problem, m RouteMatch) {
	ev.Route = m.Route.Name
	ev.Action = auditlog.Action(m.Route.Action)
	ev.Categories = routeCategories(m.Route)
	if m.HasDossier {
		ev.DataSubject = p.dossierPseudonym(m.Dossier)
	}
	prob.Route, prob.Action = m.Route.Name, string(m.Route.Action)
}

// recordActivity puts the processing activity a request is decided under
// into its event (its register ID, Document.ActivityID: the store's
// ProcessingActivity for "") and, as its bounded metric label, into the
// problem.
func recordActivity(doc *accesspolicy.Document, ev *auditlog.Event, prob *Problem, activity string) {
	ev.ProcessingActivityID = doc.ActivityID(activity)
	prob.activity = metricActivity(doc, activity)
}

// authProblem is the problem of a request without an identity: 401 with a
// challenge, 400 for an ambiguous identity, 503 while the identity
// provider's keys are not available.
func authProblem(w http.ResponseWriter, authErr *AuthError, prob *Problem) {
	prob.Status, prob.Detail = authErr.Status, authErr.Description
	switch authErr.Status {
	case http.StatusBadRequest:
		prob.Type, prob.Title = ProblemAmbiguousIdentity, "Ambiguous identity"
	case http.StatusUnauthorized:
		prob.Type, prob.Title = ProblemUnauthenticated, "Authentication required"
		challenge := `Bearer realm="dossierguard"`
		if authErr.Code != "" {
			challenge += fmt.Sprintf(`, error=%q, error_description=%q`, authErr.Code, authErr.Description)
		}
		w.Header().Set("WWW-Authenticate", challenge)
	default:
		prob.Type, prob.Title = ProblemIdentityUnavailable, "Identity provider unavailable"
	}
}

// decide authorises a matched request: a partner's (a caller named by an
// agreement's subjects) from its agreements only, with what the event
// records of it; anyone else's from roles, with the request's break-glass
// reason. It returns the reason that counted: "" for a partner, since
// break-glass is for staff only; a partner's reason header is removed, so
// that none is recorded or reaches the application.
func (p *Proxy) decide(r *http.Request, pol *Policy, id Identity, m RouteMatch, reason string, ev *auditlog.Event) (Decision, string) {
	partner := pol.PartnerAgreements(id)
	if len(partner) == 0 {
		return pol.Authorise(r.Context(), id, m, reason, p.assignments), reason
	}
	r.Header.Del(BreakGlassHeader)
	dec := pol.AuthorisePartner(r.Context(), partner, m, p.now(), p.consents)
	ev.Sharing = dec.Sharing.Event(partner[0].Partner)
	if dec.Sharing.ConsentErr != nil {
		p.log.Warn("consent source gave no answer; refusing the partner's request", "route", m.Route.Name,
			"agreement", ev.Sharing.Agreement, "operationID", ev.OperationID, "error", dec.Sharing.ConsentErr.Error())
	}
	return dec, ""
}

// refusedBySubjectRequest refuses an allowed request that a granted
// restriction or objection covers, and every request while the
// restrictions and objections are not known (503), as
// RefusedBySubjectRequest says. A route without {dossier} that declares
// records is served with the filter it returns, which leaves out the items
// of the dossiers covered. An objection through an activity records that
// activity in the event.
func (p *Proxy) refusedBySubjectRequest(pol *Policy, m RouteMatch, roles []string, ev *auditlog.Event, prob *Problem) (*recordsFilter, bool) {
	if p.requests == nil {
		return nil, false
	}
	if !m.HasDossier && m.Route.Records != nil {
		set, err := p.requests.Effects()
		if err != nil {
			requestsUnavailable(prob)
			return nil, true
		}
		t, now := TargetOf(&pol.Doc, m.Route, roles), p.now()
		return &recordsFilter{spec: m.Route.Records, withhold: func(id string) bool {
			return set.Withheld(p.dossierPseudonym(id), t, now)
		}}, false
	}
	activity, refused := RefusedBySubjectRequest(p.requests, m, pol.Doc.ProcessingActivity, ev.DataSubject, roles, p.now(), prob)
	if activity != "" {
		recordActivity(&pol.Doc, ev, prob, activity)
	}
	return nil, refused
}

// deny records a denied request and sends its problem, or 503 when the
// event cannot be recorded.
func (p *Proxy) deny(w http.ResponseWriter, r *http.Request, ev *auditlog.Event, prob *Problem) {
	ev.Status = prob.Status
	ev.Duration = time.Since(ev.Time)
	if err := p.audit.Append(auditlog.WithSource(r.Context(), sourceOf(r)), *ev); err != nil {
		w.Header().Del("WWW-Authenticate")
		p.auditFailed(w, r, &Problem{OperationID: prob.OperationID, TraceID: prob.TraceID}, err)
		return
	}
	p.metrics.decided(p.storeName(), ev.Route, ev.Outcome, deniedReason(prob), prob.activity)
	writeProblem(w, prob)
}

// dossierPseudonym is DossierPseudonym(key, id) under the proxy's pseudonym key.
func (p *Proxy) dossierPseudonym(id string) string {
	return p.pseudonyms.Pseudonym(strings.ToLower(id))
}

// storeName is the store of the access policy in force, "" before one is
// loaded.
func (p *Proxy) storeName() string {
	if p.policies == nil {
		return ""
	}
	if pol := p.policies.Current(); pol != nil {
		return pol.Doc.Store
	}
	return ""
}

// sourceOf is the address a request came from, which floods of denials are
// counted by (see auditlog.FloodGuard); it is not recorded.
func sourceOf(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// auditFailed answers 503 when an event could not be recorded.
func (p *Proxy) auditFailed(w http.ResponseWriter, r *http.Request, prob *Problem, err error) {
	p.refuseUnrecorded(w, r, prob, err, "the request could not be recorded in the audit log, so it was not forwarded")
}

// refuseUnrecorded answers 503 audit-unavailable with detail.
func (p *Proxy) refuseUnrecorded(w http.ResponseWriter, r *http.Request, prob *Problem, err error, detail string) {
	if r.Context().Err() == nil {
		p.log.Error("audit event not recorded; refusing the request", "operationID", prob.OperationID, "error", err.Error())
	}
	prob.Type, prob.Title, prob.Status = ProblemAuditUnavailable, "Audit log unavailable", http.StatusServiceUnavailable
	prob.Detail = detail
	prob.MissingCategories, prob.MissingActivities, prob.BreakGlassHeader = nil, nil, ""
	writeProblem(w, prob)
}

// recordDecision appends the decision event of an allowed request. With
// overlap (a safe request, while the log has not failed) it only starts the
// append and returns the writer that holds the response until the event is
// durable; otherwise it waits, and answers 503 (ok false) when the event
// could not be recorded. wait returns the outcome of the append.
func (p *Proxy) recordDecision(w http.ResponseWriter, r *http.Request, st *requestState, prob *Problem, overlap bool) (_ http.ResponseWriter, wait func() error, ok bool) {
	// A log already known to have failed would refuse the event: such a
	// request is not forwarded at all.
	if overlap && p.audit.Err() == nil {
		decision := p.record.Begin(r.Context(), st.Event)
		st.held = NewHeldResponse(w, decision, func(w http.ResponseWriter, err error) { p.heldRefused(w, r, prob, err) })
		return st.held, decision.Wait, true
	}
	if err := p.audit.Append(r.Context(), st.Event); err != nil {
		p.auditFailed(w, r, prob, err)
		return w, nil, false
	}
	return w, func() error { return nil }, true
}

// heldRefused answers 503 for a safe request whose decision event could not
// be recorded while it was being forwarded: nothing of the application's
// response is sent.
func (p *Proxy) heldRefused(w http.ResponseWriter, r *http.Request, prob *Problem, err error) {
	refusal := &Problem{OperationID: prob.OperationID, TraceID: prob.TraceID}
	p.refuseUnrecorded(w, r, refusal, err, "the request could not be recorded in the audit log, so nothing of the application's response was sent")
}

// modifyResponse records the completion of an allowed request once the
// application's response headers have arrived, and the decision is durable.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(stateKey{}).(*requestState)
	if st == nil {
		return nil
	}
	if st.held != nil && !st.held.Release() {
		_ = resp.Body.Close()
		return ErrDecisionNotRecorded
	}
	if st.records != nil {
		if err := filterResponse(resp, st); err != nil {
			return err
		}
	}
	if p.record.sync || resp.StatusCode == http.StatusSwitchingProtocols {
		// Recorded before the response is passed on; a tunnel's when it
		// opens, not when it closes.
		return p.complete(st, resp.StatusCode)
	}
	st.End(resp.StatusCode) // appended by ServeHTTP once the response is passed on
	return nil
}

// filterResponse replaces the body of a records route's response by the
// body without the withheld items, and records their number in the
// completion event. A response without a body (HEAD, 204, 304) is left as
// it is; a partial one (206) cannot be filtered.
func filterResponse(resp *http.Response, st *requestState) error {
	if resp.Request.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return nil
	}
	if resp.StatusCode == http.StatusPartialContent {
		_ = resp.Body.Close()
		return recordsErr("a partial response (206) cannot be filtered")
	}
	encoding := strings.Join(resp.Header.Values("Content-Encoding"), ",")
	out, withheld, err := filterRecords(st.records.spec, resp.Header.Get("Content-Type"), encoding, resp.Body, st.records.withhold)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.TransferEncoding, resp.Trailer, resp.Uncompressed = nil, nil, false
	h := resp.Header
	h.Set("Content-Length", strconv.Itoa(len(out)))
	// The body is no longer the application's: no coding, no validators
	// or digests of the other body.
	for _, k := range []string{"Content-Encoding", "Etag", "Content-Md5", "Digest", "Content-Digest", "Repr-Digest", "Accept-Ranges", "Trailer"} {
		h.Del(k)
	}
	st.Event.ItemsWithheld = withheld
	return nil
}

// complete appends the completion event of an allowed request, once.
func (p *Proxy) complete(st *requestState, status int) error {
	return p.record.Complete(&st.Completion, status)
}

// proxyError is the reverse proxy's error handler: a held response whose
// decision was not recorded has had its 503; every other error is
// upstreamError's.
func (p *Proxy) proxyError(w http.ResponseWriter, out *http.Request, err error) {
	if st, _ := out.Context().Value(stateKey{}).(*requestState); st != nil && st.held != nil && !st.held.Release() {
		return
	}
	p.upstreamError(w, out, err)
}

// upstreamError answers when the application could not be reached, and
// records the completion.
func (p *Proxy) upstreamError(w http.ResponseWriter, out *http.Request, err error) {
	st, _ := out.Context().Value(stateKey{}).(*requestState)
	prob := &Problem{Type: ProblemUpstreamUnavailable, Title: "Application unavailable", Status: http.StatusBadGateway,
		Detail: "the application behind the audit proxy did not answer"}
	if st != nil {
		prob.OperationID, prob.TraceID, prob.Route, prob.Action = st.Event.OperationID, st.Event.TraceID, st.Event.Route, string(st.Event.Action)
	}
	if errors.Is(err, errOverrideInBody) {
		// Found while the body was being forwarded: the application got
		// it without its end. Answer as if found before.
		prob.Type, prob.Title, prob.Status = ProblemRequestOverride, "Method or URL override", http.StatusBadRequest
		prob.Detail = fmt.Sprintf("the body holds a %s field, which would let the application see another method than the one audited; the application received the body incomplete", methodParam)
		p.log.Warn("a multipart body held a method override after it was forwarded in part; the request was cut off", "route", prob.Route, "operationID", prob.OperationID)
		if st != nil && p.complete(st, http.StatusBadRequest) != nil {
			prob.Type, prob.Title, prob.Status = ProblemAuditUnavailable, "Audit log unavailable", http.StatusServiceUnavailable
		}
		writeProblem(w, prob)
		return
	}
	if rerr := (*RecordsError)(nil); errors.As(err, &rerr) {
		prob.Type, prob.Title, prob.Status = ProblemRecordsUnfilterable, "Response cannot be filtered", http.StatusBadGateway
		if rerr.TooLarge {
			prob.Type, prob.Title = ProblemResponseTooLarge, "Response too large to filter"
		}
		prob.Detail = "the application's response on this route could not be filtered, so none of it was sent: " + rerr.Reason
		p.log.Warn("a records route's response could not be filtered; refused", "route", prob.Route, "operationID", prob.OperationID, "reason", rerr.Reason)
		if st != nil && p.complete(st, http.StatusBadGateway) != nil {
			prob.Type, prob.Title, prob.Status = ProblemAuditUnavailable, "Audit log unavailable", http.StatusServiceUnavailable
		}
		writeProblem(w, prob)
		return
	}
	if errors.Is(err, ErrCompletionNotRecorded) {
		prob.Type, prob.Title, prob.Status = ProblemAuditUnavailable, "Audit log unavailable", http.StatusServiceUnavailable
		prob.Detail = "the application answered, but its completion could not be recorded in the audit log"
		prob.Route, prob.Action = "", ""
		writeProblem(w, prob)
		return
	}
	status := http.StatusBadGateway
	if out.Context().Err() != nil {
		status = 0 // the client went away; nothing is returned
	} else {
		// Only the class: the error's text can quote the application's
		// response (personal data) and its URL a dossier id.
		p.log.Warn("upstream request failed", "route", prob.Route, "operationID", prob.OperationID, "error", errorClass(err))
	}
	if st != nil {
		if cerr := p.complete(st, status); cerr != nil {
			prob.Type, prob.Title, prob.Status = ProblemAuditUnavailable, "Audit log unavailable", http.StatusServiceUnavailable
		}
	}
	if status != 0 {
		writeProblem(w, prob)
	}
}

// Ready reports whether the proxy can serve: a policy is loaded, the
// store's data-subject requests have been read, the audit log works, tokens
// can be verified, and it is not shutting down.
func (p *Proxy) Ready() error {
	if p.stopping.Load() {
		return errors.New("shutting down")
	}
	if err := p.policies.Ready(); err != nil {
		return err
	}
	if err := RequestsLoaded(p.requests); err != nil {
		return err
	}
	if err := p.audit.Err(); err != nil {
		return fmt.Errorf("audit log failed: %w", err)
	}
	return p.auth.Ready()
}

// BeginShutdown makes Ready fail, so that no new traffic is sent here.
func (p *Proxy) BeginShutdown() { p.stopping.Store(true) }

// CloseTunnels closes every upgraded connection (WebSocket) and every one
// upgraded from now on. Call it on shutdown, before Wait.
func (p *Proxy) CloseTunnels() { p.closeTunnels() }

// checkUpgrade decides a request that asks to switch protocols (an Upgrade
// header, or upgrade among the Connection options). Only a WebSocket on a
// route with allowWebSocket may: a GET over HTTP/1.1 with one Upgrade value,
// websocket, and upgrade in Connection; tunnel is true then. Everything else
// that asks to upgrade (h2c, other protocols, other routes) gets a problem
// detail, because after the switch the proxy sees nothing more.
func checkUpgrade(r *http.Request, route *accesspolicy.Route) (tunnel bool, problem string) {
	upgrade := r.Header.Values("Upgrade")
	connUpgrade := httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
	if len(upgrade) == 0 && !connUpgrade {
		return false, ""
	}
	switch {
	case !route.AllowWebSocket:
		return false, fmt.Sprintf("route %q does not allow upgrading the connection (Upgrade: %s): after an upgrade the audit proxy sees nothing more", route.Name, upgradeNames(upgrade))
	case len(upgrade) != 1 || !strings.EqualFold(strings.TrimSpace(upgrade[0]), "websocket"):
		return false, fmt.Sprintf("route %q allows an upgrade to websocket only", route.Name)
	case !connUpgrade || r.Method != http.MethodGet || r.ProtoMajor != 1:
		return false, "a WebSocket opens with an HTTP/1.1 GET carrying Connection: upgrade and Upgrade: websocket"
	}
	return true, ""
}

// upgradeNames lists the protocols asked for, for a problem detail: only
// protocol tokens, nothing else of the header.
func upgradeNames(values []string) string {
	var names []string
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if name, _, _ := strings.Cut(tok, "/"); name != "" && httpguts.ValidHeaderFieldName(name) && len(name) <= 32 {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return "none named"
	}
	return strings.Join(names, ", ")
}

// Wait waits until every request being served has finished and every
// completion event has been appended. Call it after the server stopped
// accepting requests and before closing the audit log.
func (p *Proxy) Wait() { p.inflight.Wait() }

// HealthHandler serves /healthz (the process is alive), /readyz (Ready) and
// /metrics (the proxy's Prometheus metrics, see metrics.go).
func (p *Proxy) HealthHandler() http.Handler {
	mux := httpserve.HealthMux(p.Ready)
	mux.Handle("/metrics", p.metrics.handler())
	return mux
}

// breakGlassReason returns the stated break-glass reason ("" when none),
// or why the header is refused: a reason goes into the audit log and in
// front of reviewers, so it must be one line of visible text that shows as
// it is stored (see reasonRuneAllowed).
func breakGlassReason(h http.Header) (reason string, problem string) {
	values := h.Values(BreakGlassHeader)
	if len(values) > 1 {
		return "", fmt.Sprintf("the %s header is given more than once; state one reason", BreakGlassHeader)
	}
	if len(values) == 0 {
		return "", ""
	}
	v := strings.Trim(values[0], " ")
	switch {
	case v == "":
		return "", ""
	case len(v) > MaxBreakGlassReasonLen:
		return "", fmt.Sprintf("the %s header must be at most %d bytes", BreakGlassHeader, MaxBreakGlassReasonLen)
	case !utf8.ValidString(v):
		return "", fmt.Sprintf("the %s header must be valid UTF-8", BreakGlassHeader)
	case strings.ContainsFunc(v, func(r rune) bool { return !reasonRuneAllowed(r) }):
		return "", fmt.Sprintf("the %s header may hold only letters, marks, digits, punctuation, symbols and spaces (U+0020): no control, format (such as bidirectional or zero-width), private-use, unassigned or other invisible characters", BreakGlassHeader)
	}
	return v, ""
}

// reasonRuneAllowed reports whether r may appear in a break-glass reason: a
// letter, mark, number, punctuation, symbol or the ASCII space, and not a
// variation selector, a default-ignorable or a noncharacter. Everything
// else (Cc, Cf with the bidi and zero-width controls, Co, Cs, Cn, Zl, Zp and
// the other spaces) could hide or reorder what a reviewer reads.
func reasonRuneAllowed(r rune) bool {
	if r == ' ' {
		return true
	}
	if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) {
		return false
	}
	return !unicode.In(r, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point, unicode.Noncharacter_Code_Point)
}

// methodAction is the action recorded for a request that matched no route.
func methodAction(method string) auditlog.Action {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return auditlog.ActionRead
	}
	return auditlog.ActionWrite
}

// eventMethod fits a method into an event (at most 16 characters).
func eventMethod(method string) string {
	if len(method) > 16 {
		return method[:16]
	}
	if method == "" {
		return http.MethodGet
	}
	return method
}

func routeCategories(r *accesspolicy.Route) []string {
	out := make([]string, len(r.Categories))
	for i, c := range r.Categories {
		out[i] = string(c)
	}
	return out
}
