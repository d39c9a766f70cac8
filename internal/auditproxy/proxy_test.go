package auditproxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// integrationDocument is testDocument plus a slow route.
func integrationDocument() accesspolicy.Document {
	doc := testDocument()
	doc.Routes = append(doc.Routes, accesspolicy.Route{Name: "slow", Method: "GET", Path: "/api/dossiers/{dossier}/slow",
		Categories: []v1alpha1.DataCategory{"identity"}, Action: "read"})
	return doc
}

// expectation is what the audit log must hold for one request.
type expectation struct {
	allowed    bool
	status     int
	route      string
	actor      string
	dossier    string
	breakGlass string // the reason, when allowed through break-glass
	// activity is the processing activity the event must record; the
	// document's ProcessingActivity when empty.
	activity string
}

// harness runs Run with an issuer, an application, an assignment source and
// a ConfigMap-style policy directory, and keeps track of every request.
type harness struct {
	t         *testing.T
	iss       *testIssuer
	app       *upstreamApp
	policy    *configMapDir
	keys      testKeys
	logPath   string
	mirror    *syncBuffer
	logs      *syncBuffer
	proxyURL  string
	healthURL string
	cancel    context.CancelFunc
	done      chan error

	direct  *http.Client // from 127.0.0.1, not trusted
	trusted *http.Client // from 127.0.0.2, the authenticating proxy

	mu     sync.Mutex
	expect map[string]expectation // by operation id
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, integrationDocument()) }

// newHarnessWith is newHarness serving doc.
func newHarnessWith(t *testing.T, doc accesspolicy.Document) *harness {
	h := &harness{t: t, iss: newTestIssuer(t), app: newUpstreamApp(t), policy: newConfigMapDir(t), keys: newTestKeys(t),
		mirror: &syncBuffer{}, logs: &syncBuffer{}, expect: map[string]expectation{}, done: make(chan error, 1)}
	h.policy.writeDoc(t, doc)
	h.logPath = filepath.Join(t.TempDir(), "audit.jsonl")

	assign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /assignments/{dossier}/{user}
		parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/assignments/"), "/")
		switch {
		case len(parts) == 2 && parts[0] == "DOWN":
			w.WriteHeader(http.StatusInternalServerError)
		case len(parts) == 2 && parts[0] == "D-1" && parts[1] == "bo%40example.nl":
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(assign.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.proxyURL, h.healthURL = "http://"+ln.Addr().String(), "http://"+hln.Addr().String()
	upstream, _ := url.Parse(h.app.srv.URL)
	cfg := Config{
		Listener: ln, HealthListener: hln, Upstream: upstream,
		PolicyPath: h.policy.path(), PolicyPollInterval: 50 * time.Millisecond,
		Identity: IdentityConfig{
			OIDC:              &OIDCConfig{IssuerURL: h.iss.srv.URL, Audience: testAudience},
			TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		},
		AssignmentURL: assign.URL + "/assignments/{dossier}/{user}", AssignmentCacheSize: 100, AssignmentCacheTTL: time.Minute,
		PseudonymKey: h.keys.pseudonym, AuditLogPath: h.logPath, AuditMirror: h.mirror, SigningKey: h.keys.signing,
		ShutdownTimeout: 10 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(h.logs, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- Run(ctx, cfg) }()
	t.Cleanup(func() { cancel() })

	h.direct = &http.Client{Transport: &http.Transport{}}
	h.trusted = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}

	// Ready once the policy is loaded and OIDC discovery is done.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(h.healthURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not ready: %v\n%s", err, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

// response is what a test request got.
type response struct {
	status  int
	header  http.Header
	problem Problem
	opID    string
}

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do sends a request and records what the audit log must hold for it.
func (h *harness) do(client *http.Client, method, path string, want expectation, opts ...reqOpt) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.proxyURL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		if err := json.Unmarshal(body, &r.problem); err != nil {
			h.t.Fatalf("problem body is not JSON: %v: %s", err, body)
		}
		r.opID = r.problem.OperationID
	} else if tp, ok := parseTraceparent(resp.Header.Get("X-Seen-Traceparent")); ok {
		r.opID = tp.parentID // the proxy's operation id is the app's parent span
	}
	if want.status < 0 { // checked by the caller
		want.status, want.allowed = r.status, r.status < 300
	} else if r.status != want.status {
		h.t.Errorf("%s %s: status %d, want %d (body %s)", method, path, r.status, want.status, body)
	}
	if r.opID == "" {
		h.t.Fatalf("%s %s: no operation id in the response", method, path)
	}
	h.mu.Lock()
	h.expect[r.opID] = want
	h.mu.Unlock()
	return r
}

// stop shuts the proxy down as SIGTERM does.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Fatal("Run did not return after shutdown")
	}
}

// checkLog verifies the audit log and that it holds exactly the expected
// events: one per denied request, decision and completion per allowed one.
func (h *harness) checkLog() {
	t := h.t
	t.Helper()
	data, err := os.ReadFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := auditlog.Verify(bytes.NewReader(data), h.keys.signing.Public().(ed25519.PublicKey))
	if err != nil || !res.OK {
		t.Fatalf("audit log does not verify: %v %s", err, res)
	}
	if h.mirror.String() != string(data) {
		t.Error("the stdout mirror differs from the audit log file")
	}
	byOp, events := readEvents(t, data)
	want := 0
	for op, exp := range h.expect {
		evs := byOp[op]
		if exp.allowed {
			want += 2
			if len(evs) != 2 {
				t.Errorf("allowed request %s (%s): %d events, want decision and completion", op, exp.route, len(evs))
				continue
			}
			if evs[0].Outcome != "allowed" || evs[0].Status != 0 || evs[1].Outcome != "allowed" || evs[1].Status != exp.status {
				t.Errorf("allowed request %s (%s): events %+v", op, exp.route, evs)
			}
			if evs[1].DurationNS < evs[0].DurationNS || evs[0].TraceID != evs[1].TraceID {
				t.Errorf("completion of %s does not follow its decision: %+v", op, evs)
			}
			if evs[0].BreakGlass != (exp.breakGlass != "") || evs[0].BreakGlassReason != exp.breakGlass {
				t.Errorf("request %s: break glass %v %q, want %q", op, evs[0].BreakGlass, evs[0].BreakGlassReason, exp.breakGlass)
			}
		} else {
			want++
			if len(evs) != 1 || evs[0].Outcome != "denied" || evs[0].Status != exp.status {
				t.Errorf("denied request %s (%s): events %+v, want one denied event with status %d", op, exp.route, evs, exp.status)
				continue
			}
		}
		ev := evs[0]
		if ev.Route != exp.route || ev.Actor != exp.actor {
			t.Errorf("request %s: route %q actor %q, want %q %q", op, ev.Route, ev.Actor, exp.route, exp.actor)
		}
		wantSubject := DossierPseudonym(h.keys.pseudonym, exp.dossier)
		if ev.DataSubject != wantSubject {
			t.Errorf("request %s: data subject %q, want the pseudonym of %q", op, ev.DataSubject, exp.dossier)
		}
		wantActivity := exp.activity
		if wantActivity == "" {
			wantActivity = testDocument().ProcessingActivity
		}
		if exp.route != "" && ev.Activity != wantActivity {
			t.Errorf("request %s (%s): processing activity %q, want %q", op, exp.route, ev.Activity, wantActivity)
		}
	}
	if events != want {
		t.Errorf("the log holds %d events, want %d", events, want)
	}
	if bytes.Contains(data, []byte("D-9")) || bytes.Contains(data, []byte("D-1\"")) {
		t.Error("a dossier id appears in the audit log")
	}
	logs := h.logs.String()
	for _, secret := range []string{"D-9", "D-1/", "bo@example.nl", "an@example.nl", "eyJ"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the proxy's own log holds %q:\n%s", secret, logs)
		}
	}
}

func TestProxyIntegration(t *testing.T) {
	h := newHarness(t)
	an := h.iss.token(t, "an@example.nl", []string{"coaches"}, nil)
	bo := func(groups ...string) string { return h.iss.token(t, "bo@example.nl", groups, nil) }
	anon := AnonymousActor

	t.Run("no credentials", func(t *testing.T) {
		r := h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: 401, route: "read-dossier", actor: anon, dossier: "D-9"})
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate %q", got)
		}
		if r.problem.Type != ProblemUnauthenticated || r.problem.Status != 401 {
			t.Errorf("problem %+v", r.problem)
		}
	})
	t.Run("token of another key", func(t *testing.T) {
		other := newTestIssuer(t)
		tok := signToken(t, other.signer, h.iss.claims("an@example.nl", []string{"coaches"}, nil))
		r := h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: 401, route: "read-dossier", actor: anon, dossier: "D-9"}, bearer(tok))
		if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q", got)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		tok := h.iss.token(t, "an@example.nl", []string{"coaches"}, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})
		r := h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: 401, route: "read-dossier", actor: anon, dossier: "D-9"}, bearer(tok))
		if !strings.Contains(r.problem.Detail, "expired") {
			t.Errorf("detail %q", r.problem.Detail)
		}
	})
	t.Run("token for another audience", func(t *testing.T) {
		tok := h.iss.token(t, "an@example.nl", []string{"coaches"}, map[string]any{"aud": "another-app"})
		h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: 401, route: "read-dossier", actor: anon, dossier: "D-9"}, bearer(tok))
	})
	t.Run("token of another issuer", func(t *testing.T) {
		tok := h.iss.token(t, "an@example.nl", []string{"coaches"}, map[string]any{"iss": "https://evil.example"})
		h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: 401, route: "read-dossier", actor: anon, dossier: "D-9"}, bearer(tok))
	})
	t.Run("allowed", func(t *testing.T) {
		calls := h.app.calls.Load()
		tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		r := h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{allowed: true, status: 200, route: "read-dossier", actor: "an@example.nl", dossier: "D-9"},
			bearer(an), header(TraceparentHeader, tp))
		if h.app.calls.Load() != calls+1 {
			t.Error("the application did not get the request")
		}
		seen, _ := parseTraceparent(r.header.Get("X-Seen-Traceparent"))
		if seen.traceID != "4bf92f3577b34da6a3ce929d0e0e4736" || seen.parentID == "00f067aa0ba902b7" || seen.flags != "01" {
			t.Errorf("the application saw traceparent %q", r.header.Get("X-Seen-Traceparent"))
		}
	})
	t.Run("write allowed", func(t *testing.T) {
		h.do(h.direct, "PUT", "/api/dossiers/D-9/plan", expectation{allowed: true, status: 201, route: "write-plan", actor: "an@example.nl", dossier: "D-9"}, bearer(an))
	})
	t.Run("missing category", func(t *testing.T) {
		calls := h.app.calls.Load()
		r := h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: 403, route: "read-dossier", actor: "bo@example.nl", dossier: "D-9"}, bearer(bo("coaches")))
		if h.app.calls.Load() != calls {
			t.Error("a denied request reached the application")
		}
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type %q", ct)
		}
		p := r.problem
		if p.Type != ProblemAccessDenied || p.Title == "" || p.Status != 403 || p.Route != "read-dossier" || p.Action != "read" ||
			!slices.Equal(p.MissingCategories, []string{"request"}) || p.Detail == "" || p.TraceID == "" {
			t.Errorf("problem %+v", p)
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		r := h.do(h.direct, "GET", "/api/admin/users", expectation{status: 403, actor: "an@example.nl"}, bearer(an))
		if r.problem.Type != ProblemNoRoute {
			t.Errorf("problem %+v", r.problem)
		}
	})
	t.Run("non-canonical path", func(t *testing.T) {
		r := h.do(h.direct, "GET", "/api/dossiers/D-9/%2e%2e/export", expectation{status: 400, actor: "an@example.nl"}, bearer(an))
		if r.problem.Type != ProblemNonCanonicalPath {
			t.Errorf("problem %+v", r.problem)
		}
	})
	t.Run("identity headers from an untrusted source are stripped", func(t *testing.T) {
		// Headers alone do not identify anyone.
		h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: 401, route: "read-dossier", actor: anon, dossier: "D-9"},
			header(DefaultUserHeader, "an@example.nl"), header(DefaultGroupsHeader, "coaches"))
		// And they never reach the application.
		r := h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{allowed: true, status: 200, route: "read-dossier", actor: "an@example.nl", dossier: "D-9"},
			bearer(an), header(DefaultUserHeader, "mallory"), header(DefaultGroupsHeader, "admins"))
		if u, g := r.header.Get("X-Seen-User"), r.header.Get("X-Seen-Groups"); u != "" || g != "" {
			t.Errorf("the application saw identity headers %q %q from an untrusted source", u, g)
		}
	})
	t.Run("identity headers from the trusted proxy", func(t *testing.T) {
		r := h.do(h.trusted, "GET", "/api/dossiers/D-9", expectation{allowed: true, status: 200, route: "read-dossier", actor: "an@example.nl", dossier: "D-9"},
			header(DefaultUserHeader, "an@example.nl"), header(DefaultGroupsHeader, "coaches, other"))
		if u := r.header.Get("X-Seen-User"); u != "an@example.nl" {
			t.Errorf("the application saw user header %q", u)
		}
		h.do(h.trusted, "GET", "/api/dossiers/D-9", expectation{status: 403, route: "read-dossier", actor: "bo@example.nl", dossier: "D-9"},
			header(DefaultUserHeader, "bo@example.nl"), header(DefaultGroupsHeader, "coaches"))
	})
	t.Run("assigned cases", func(t *testing.T) {
		h.do(h.direct, "GET", "/api/dossiers/D-1", expectation{allowed: true, status: 200, route: "read-dossier", actor: "bo@example.nl", dossier: "D-1"}, bearer(bo("casework")))
		h.do(h.direct, "GET", "/api/dossiers/D-2", expectation{status: 403, route: "read-dossier", actor: "bo@example.nl", dossier: "D-2"}, bearer(bo("casework")))
		r := h.do(h.direct, "GET", "/api/dossiers/DOWN", expectation{status: 403, route: "read-dossier", actor: "bo@example.nl", dossier: "DOWN"}, bearer(bo("casework")))
		if !strings.Contains(r.problem.Detail, "assignment source") {
			t.Errorf("detail %q", r.problem.Detail)
		}
	})
	t.Run("break-glass", func(t *testing.T) {
		const reason = "Melding acute onveiligheid, dienstdoende niet bereikbaar"
		h.do(h.direct, "GET", "/api/dossiers/D-9/safety", expectation{allowed: true, status: 200, route: "read-safety", actor: "bo@example.nl", dossier: "D-9", breakGlass: reason},
			bearer(bo("crisis")), header(BreakGlassHeader, reason))
		r := h.do(h.direct, "GET", "/api/dossiers/D-9/safety", expectation{status: 403, route: "read-safety", actor: "bo@example.nl", dossier: "D-9"}, bearer(bo("crisis")))
		if r.problem.BreakGlassHeader != BreakGlassHeader {
			t.Errorf("problem does not point at the break-glass header: %+v", r.problem)
		}
		h.do(h.direct, "GET", "/api/dossiers/D-9/safety", expectation{status: 400, route: "read-safety", actor: "bo@example.nl", dossier: "D-9"},
			bearer(bo("crisis")), header(BreakGlassHeader, strings.Repeat("x", MaxBreakGlassReasonLen+1)))
	})
	t.Run("policy reload", func(t *testing.T) {
		// Grant request to coaches; the file's mtime stays the same.
		doc := integrationDocument()
		doc.Roles[0].Categories = append(doc.Roles[0].Categories, "request")
		h.policy.writeDoc(t, doc)
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{status: -1, route: "read-dossier", actor: "bo@example.nl", dossier: "D-9"}, bearer(bo("coaches")))
			if r.status == 200 {
				break
			}
			if r.status != 403 {
				t.Fatalf("status %d while the policy is reloaded", r.status)
			}
			if time.Now().After(deadline) {
				t.Fatal("the new policy was not loaded")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// A broken document is refused and the last good one stays.
		h.policy.write(t, []byte(`{"version":1,"routes":[{"name":"x"`))
		time.Sleep(300 * time.Millisecond)
		h.do(h.direct, "GET", "/api/dossiers/D-9", expectation{allowed: true, status: 200, route: "read-dossier", actor: "bo@example.nl", dossier: "D-9"}, bearer(bo("coaches")))
		if !strings.Contains(h.logs.String(), "keeping the last good access policy") {
			t.Error("the refused policy was not logged")
		}
		resp, err := http.Get(h.healthURL + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("not ready with the last good policy: %v", err)
		}
		if resp != nil {
			_ = resp.Body.Close()
		}
	})
	t.Run("shutdown finishes requests in flight", func(t *testing.T) {
		got := make(chan response, 1)
		go func() {
			got <- h.do(h.direct, "GET", "/api/dossiers/D-9/slow", expectation{allowed: true, status: 200, route: "slow", actor: "an@example.nl", dossier: "D-9"}, bearer(an))
		}()
		select {
		case <-h.app.arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("the slow request did not reach the application")
		}
		h.cancel() // SIGTERM
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			resp, err := http.Get(h.healthURL + "/readyz")
			if err != nil {
				t.Fatalf("probe gone while a request is in flight: %v", err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("still ready while shutting down")
			}
		}
		close(h.app.block)
		if r := <-got; r.status != 200 {
			t.Errorf("in-flight request got %d", r.status)
		}
		h.stop()
	})
	h.checkLog()
}

// failingMirror makes the audit writer fail as a full or broken disk would.
type failingMirror struct{}

func (failingMirror) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestProxyRefusesWhenTheAuditLogFails(t *testing.T) {
	keys := newTestKeys(t)
	app := newUpstreamApp(t)
	w, err := auditlog.NewWriter(auditlog.Options{Path: filepath.Join(t.TempDir(), "audit.jsonl"), Mirror: failingMirror{}, SigningKey: keys.signing})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	p, _ := newTestProxy(t, app, w, keys, false)
	srv := httptest.NewServer(p)
	defer srv.Close()
	health := httptest.NewServer(p.HealthHandler())
	defer health.Close()

	for i := range 3 {
		req, _ := http.NewRequest("GET", srv.URL+"/api/dossiers/D-9", nil)
		req.Header.Set(DefaultUserHeader, "an@example.nl")
		req.Header.Set(DefaultGroupsHeader, "coaches")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var prob Problem
		_ = json.NewDecoder(resp.Body).Decode(&prob)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || prob.Type != ProblemAuditUnavailable {
			t.Errorf("request %d: %d %+v, want 503 audit-unavailable", i, resp.StatusCode, prob)
		}
	}
	// A safe request is forwarded while its decision is being written, so
	// the first one reached the application (its response was held and
	// refused); once the writer has failed nothing is forwarded.
	if n := app.calls.Load(); n > 1 {
		t.Errorf("the application saw %d requests while the audit log failed; want at most the first", n)
	}
	resp, err := http.Get(health.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "audit log failed") {
		t.Errorf("readyz %d %s", resp.StatusCode, body)
	}
}

// newTestProxy returns a proxy that trusts identity headers from loopback,
// in front of app, with the integration policy.
func newTestProxy(t testing.TB, app *upstreamApp, sink EventSink, keys testKeys, syncCompletion bool) (*Proxy, *PolicySource) {
	t.Helper()
	pol, err := NewPolicy(integrationDocument())
	if err != nil {
		t.Fatal(err)
	}
	src := NewPolicySource("unused", nil)
	src.Set(pol)
	auth, err := NewAuthenticator(context.Background(), IdentityConfig{TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	upstream, _ := url.Parse(app.srv.URL)
	p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: sink, PseudonymKey: keys.pseudonym, SyncCompletion: syncCompletion})
	if err != nil {
		t.Fatal(err)
	}
	return p, src
}

func TestProxyCompletionModes(t *testing.T) {
	for _, syncMode := range []bool{false, true} {
		keys := newTestKeys(t)
		app := newUpstreamApp(t)
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: keys.signing})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := newTestProxy(t, app, w, keys, syncMode)
		srv := httptest.NewServer(p)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("PUT", srv.URL+"/api/dossiers/D-9/plan", nil)
				req.Header.Set(DefaultUserHeader, "an@example.nl")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Errorf("status %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		srv.Close()
		p.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		byOp, events := readEvents(t, data)
		if events != 16 || len(byOp) != 8 {
			t.Fatalf("sync=%v: %d events for %d operations, want 16 for 8", syncMode, events, len(byOp))
		}
		for op, evs := range byOp {
			if len(evs) != 2 || evs[0].Status != 0 || evs[1].Status != 201 {
				t.Errorf("sync=%v: operation %s: %+v", syncMode, op, evs)
			}
		}
	}
}

func TestTraceparent(t *testing.T) {
	for v, ok := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":      false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":      false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":      false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":         false,
		"": false,
	} {
		if _, got := parseTraceparent(v); got != ok {
			t.Errorf("%q: %v, want %v", v, got, ok)
		}
	}
	tc := newTraceContext("garbage")
	if len(tc.traceID) != 32 || tc.parentID != "" {
		t.Errorf("new trace %+v", tc)
	}
}
