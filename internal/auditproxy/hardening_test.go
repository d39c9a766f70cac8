package auditproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
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
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// memorySink keeps the events in memory.
type memorySink struct {
	mu     sync.Mutex
	events []auditlog.Event
}

func (m *memorySink) Append(_ context.Context, ev auditlog.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
	return nil
}

func (m *memorySink) Err() error { return nil }

func (m *memorySink) all() []auditlog.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// recordingApp is an application that remembers the headers and the target
// of every request it got.
type recordingApp struct {
	srv   *httptest.Server
	calls atomic.Int32

	mu       sync.Mutex
	headers  []http.Header
	trailers []http.Header
	targets  []string
	bodies   []bodySeen
}

// bodySeen is what the application read of a request body.
type bodySeen struct {
	sum [32]byte
	len int64
	err error
}

func newRecordingApp(t testing.TB) *recordingApp {
	t.Helper()
	app := &recordingApp{}
	app.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.calls.Add(1)
		h := sha256.New()
		n, err := io.Copy(h, r.Body) // trailers arrive after the body
		seen := bodySeen{len: n, err: err}
		h.Sum(seen.sum[:0])
		app.mu.Lock()
		app.bodies = append(app.bodies, seen)
		app.headers = append(app.headers, r.Header.Clone())
		app.trailers = append(app.trailers, r.Trailer.Clone())
		app.targets = append(app.targets, r.Method+" "+r.RequestURI)
		app.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(app.srv.Close)
	return app
}

// lastBody waits until the application has read the body of every request
// it got, and returns what it read of the last one.
func (a *recordingApp) lastBody(t testing.TB) bodySeen {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		a.mu.Lock()
		n := len(a.bodies)
		var seen bodySeen
		if n > 0 {
			seen = a.bodies[n-1]
		}
		a.mu.Unlock()
		if n > 0 && int32(n) == a.calls.Load() {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatal("the application is still reading a body")
		}
	}
}

// last returns the headers of the last request the application got.
func (a *recordingApp) last(t testing.TB) http.Header {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.headers) == 0 {
		t.Fatal("the application got no request")
	}
	return a.headers[len(a.headers)-1]
}

// trustedSource and untrustedSource are the peer addresses of requests in
// the tests of newHardenedProxy.
const (
	trustedSource   = "10.0.0.7:40000"
	untrustedSource = "192.0.2.1:40000"
)

// newHardenedProxy returns a proxy in front of upstream with the
// integration policy, trusting identity headers from 10.0.0.0/24 and
// bearer tokens of iss (when not nil).
func newHardenedProxy(t testing.TB, upstream string, iss *testIssuer) (*Proxy, *memorySink) {
	t.Helper()
	pol, err := NewPolicy(integrationDocument())
	if err != nil {
		t.Fatal(err)
	}
	src := NewPolicySource("unused", nil)
	src.Set(pol)
	cfg := IdentityConfig{TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}
	if iss != nil {
		cfg.OIDC = &OIDCConfig{IssuerURL: iss.srv.URL, Audience: testAudience, StaticKeys: []crypto.PublicKey{&iss.key.PublicKey}}
	}
	auth, err := NewAuthenticator(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(upstream)
	sink := &memorySink{}
	p, err := New(Options{Upstream: u, Policies: src, Authenticator: auth, Audit: sink, PseudonymKey: newTestKeys(t).pseudonym})
	if err != nil {
		t.Fatal(err)
	}
	return p, sink
}

// serve sends one request through the proxy's handler and returns the
// response and its problem body, if any.
func serve(t testing.TB, p http.Handler, r *http.Request) (*httptest.ResponseRecorder, Problem) {
	t.Helper()
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	var prob Problem
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
		if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil {
			t.Fatalf("problem body: %v", err)
		}
	}
	return w, prob
}

// identitySpellings are names a CGI, WSGI, Rack or PHP application reads as
// X-Forwarded-User (HTTP_X_FORWARDED_USER) although they are not that header.
var identitySpellings = []string{
	"X-Forwarded_User", "X_Forwarded_User", "x_forwarded_user", "X-Forwarded-User_", "X.Forwarded.User", "x-forwarded_user",
}

func TestIdentityHeaderSpellingsAreStrippedFromEverySource(t *testing.T) {
	a, err := NewAuthenticator(context.Background(), IdentityConfig{
		TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, source := range []string{untrustedSource, trustedSource} {
		for _, name := range identitySpellings {
			r := httptest.NewRequest("GET", "/api/dossiers/D-9", nil)
			r.RemoteAddr = source
			r.Header[name] = []string{"mallory"}
			r.Header["X-Forwarded_Groups"] = []string{"admins"}
			if source == trustedSource {
				r.Header.Set(DefaultUserHeader, "an@example.nl")
			}
			id, aerr := a.Authenticate(r)
			if source == trustedSource && (aerr != nil || id.User != "an@example.nl" || len(id.Groups) != 0) {
				t.Errorf("%s from the trusted proxy: identity %+v %v, want an@example.nl without groups", name, id, aerr)
			}
			if source == untrustedSource && aerr == nil {
				t.Errorf("%s from an untrusted source identified %+v", name, id)
			}
			for k := range r.Header {
				if k != DefaultUserHeader && (cgiName(k) == cgiName(DefaultUserHeader) || cgiName(k) == cgiName(DefaultGroupsHeader)) {
					t.Errorf("%s from %s: %q left in the request", name, source, k)
				}
			}
		}
	}
}

func TestBearerIdentityDropsIdentityHeaders(t *testing.T) {
	app := newRecordingApp(t)
	iss := newTestIssuer(t)
	p, _ := newHardenedProxy(t, app.srv.URL, iss)
	// The trusted proxy passes a client's groups header on, but no user: the
	// caller is the token's, and the application must not see other groups.
	r := httptest.NewRequest("PUT", "/api/dossiers/D-9/plan", nil)
	r.RemoteAddr = trustedSource
	r.Header.Set("Authorization", "Bearer "+iss.token(t, "an@example.nl", nil, nil))
	r.Header.Set(DefaultGroupsHeader, "admins")
	if w, _ := serve(t, p, r); w.Code != http.StatusCreated && w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if g := app.last(t).Values(DefaultGroupsHeader); len(g) != 0 {
		t.Errorf("the application got groups %q the identity does not have", g)
	}
}

func TestRequestTrailersDoNotReachTheApplication(t *testing.T) {
	app := newRecordingApp(t)
	p, _ := newHardenedProxy(t, app.srv.URL, nil)
	srv := httptest.NewServer(asTrustedProxy(p))
	defer srv.Close()
	code, _ := rawRequest(t, strings.TrimPrefix(srv.URL, "http://"), "PUT /api/dossiers/D-9/plan HTTP/1.1\r\nHost: app\r\n"+
		"X-Forwarded-User: an@example.nl\r\nTransfer-Encoding: chunked\r\nTrailer: X-Forwarded-User, X-Forwarded-Groups, Traceparent\r\nConnection: close\r\n\r\n"+
		"4\r\nplan\r\n0\r\nX-Forwarded-User: mallory\r\nX-Forwarded-Groups: admins\r\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if tr := app.trailers[len(app.trailers)-1]; len(tr) != 0 {
		t.Errorf("the application got request trailers %v", tr)
	}
}

func TestCommaInUserHeaderIsAmbiguous(t *testing.T) {
	a, err := NewAuthenticator(context.Background(), IdentityConfig{
		TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Applications that read the header as a list take the first or the
	// last element.
	r := httptest.NewRequest("GET", "/api/dossiers/D-9", nil)
	r.RemoteAddr = trustedSource
	r.Header.Set(DefaultUserHeader, "an@example.nl, mallory")
	if id, aerr := a.Authenticate(r); aerr == nil || aerr.Status != http.StatusBadRequest {
		t.Errorf("identity %+v %v, want 400 ambiguous", id, aerr)
	}
}

func TestAmbiguousIdentityIsRefused(t *testing.T) {
	a, err := NewAuthenticator(context.Background(), IdentityConfig{
		TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Header{
		"two user headers":     {DefaultUserHeader: {"an@example.nl", "mallory"}},
		"two groups headers":   {DefaultUserHeader: {"an@example.nl"}, DefaultGroupsHeader: {"coaches", "admins"}},
		"two Authorization":    {"Authorization": {"Bearer a", "Bearer b"}},
		"empty and a user":     {DefaultUserHeader: {"", "mallory"}},
		"user and empty value": {DefaultUserHeader: {"an@example.nl", ""}},
	} {
		r := httptest.NewRequest("GET", "/api/dossiers/D-9", nil)
		r.RemoteAddr = trustedSource
		r.Header = h
		id, aerr := a.Authenticate(r)
		if aerr == nil || aerr.Status != http.StatusBadRequest {
			t.Errorf("%s: identity %+v error %v, want 400 ambiguous identity", name, id, aerr)
		}
	}
}

func TestProxyForwardsOnlyTheCanonicalIdentityHeader(t *testing.T) {
	app := newRecordingApp(t)
	p, sink := newHardenedProxy(t, app.srv.URL, nil)

	r := httptest.NewRequest("GET", "/api/dossiers/D-9", nil)
	r.RemoteAddr = trustedSource
	r.Header.Set(DefaultUserHeader, "an@example.nl")
	r.Header.Set(DefaultGroupsHeader, "coaches")
	r.Header["X-Forwarded_User"] = []string{"mallory"}
	r.Header["X_Forwarded_Groups"] = []string{"admins"}
	w, _ := serve(t, p, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := app.last(t)
	for k, v := range got {
		n := cgiName(k)
		if (n == cgiName(DefaultUserHeader) || n == cgiName(DefaultGroupsHeader)) && k != DefaultUserHeader && k != DefaultGroupsHeader {
			t.Errorf("the application got %s: %q", k, v)
		}
	}
	if u := got.Values(DefaultUserHeader); !slices.Equal(u, []string{"an@example.nl"}) {
		t.Errorf("the application got user %q", u)
	}

	// Two user headers from the trusted proxy: refused, recorded, not forwarded.
	calls := app.calls.Load()
	r = httptest.NewRequest("GET", "/api/dossiers/D-9", nil)
	r.RemoteAddr = trustedSource
	r.Header[DefaultUserHeader] = []string{"an@example.nl", "mallory"}
	w, prob := serve(t, p, r)
	if w.Code != http.StatusBadRequest || prob.Type != ProblemTypeBase+"ambiguous-identity" || !strings.Contains(prob.Detail, DefaultUserHeader) {
		t.Errorf("duplicate user header: %d %+v", w.Code, prob)
	}
	if app.calls.Load() != calls {
		t.Error("an ambiguous request reached the application")
	}
	p.Wait()
	var recorded []auditlog.Event
	for _, ev := range sink.all() {
		if ev.OperationID == prob.OperationID {
			recorded = append(recorded, ev)
		}
	}
	if len(recorded) != 1 || recorded[0].Outcome != auditlog.OutcomeDenied || recorded[0].Status != http.StatusBadRequest || recorded[0].Actor != AnonymousActor {
		t.Errorf("ambiguous request recorded as %+v", recorded)
	}
}

// cgiName is the variable a CGI-style application reads a header as:
// HTTP_ and the name upper-cased with every other character an underscore.
func cgiName(h string) string {
	b := []byte("HTTP_" + strings.ToUpper(h))
	for i := 5; i < len(b); i++ {
		if c := b[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

func TestConnectionHeaderCannotStripWhatTheProxySets(t *testing.T) {
	app := newRecordingApp(t)
	iss := newTestIssuer(t)
	p, _ := newHardenedProxy(t, app.srv.URL, iss)
	tok := iss.token(t, "an@example.nl", []string{"coaches"}, nil)
	const reason = "Melding acute onveiligheid"
	for _, tc := range []struct {
		name   string
		source string
		set    map[string]string
		want   []string // headers the application must get as the proxy decided them
	}{
		{"trusted proxy", trustedSource, map[string]string{DefaultUserHeader: "an@example.nl", DefaultGroupsHeader: "coaches"},
			[]string{DefaultUserHeader, DefaultGroupsHeader, TraceparentHeader}},
		{"bearer token", untrustedSource, map[string]string{"Authorization": "Bearer " + tok},
			[]string{"Authorization", TraceparentHeader}},
		{"break-glass", untrustedSource, map[string]string{"Authorization": "Bearer " + iss.token(t, "bo@example.nl", []string{"crisis"}, nil), BreakGlassHeader: reason},
			[]string{"Authorization", BreakGlassHeader, TraceparentHeader}},
	} {
		for _, conn := range []string{
			strings.Join(tc.want, ", "),
			"keep-alive, " + strings.ToLower(strings.Join(tc.want, ",")),
		} {
			r := httptest.NewRequest("GET", "/api/dossiers/D-9", nil)
			if tc.name == "break-glass" {
				r = httptest.NewRequest("GET", "/api/dossiers/D-9/safety", nil)
			}
			r.RemoteAddr = tc.source
			for k, v := range tc.set {
				r.Header.Set(k, v)
			}
			r.Header.Set("Connection", conn)
			w, _ := serve(t, p, r)
			if w.Code != http.StatusOK {
				t.Fatalf("%s: status %d: %s", tc.name, w.Code, w.Body)
			}
			got := app.last(t)
			for _, h := range tc.want {
				switch {
				case h == TraceparentHeader:
					if _, ok := parseTraceparent(got.Get(h)); !ok {
						t.Errorf("%s, Connection: %s: the application got traceparent %q", tc.name, conn, got.Get(h))
					}
				case got.Get(h) != tc.set[h]:
					t.Errorf("%s, Connection: %s: the application did not get %s as sent", tc.name, conn, h)
				}
			}
		}
	}
}

// asTrustedProxy serves h as if every request came from the trusted proxy.
func asTrustedProxy(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = trustedSource
		h.ServeHTTP(w, r)
	})
}

// rawRequest sends one request as raw bytes and returns the status line's
// code and the problem body.
func rawRequest(t testing.TB, addr, raw string) (int, Problem) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var prob Problem
	_ = json.NewDecoder(resp.Body).Decode(&prob)
	return resp.StatusCode, prob
}

func TestProxyRefusesPathTricksOnTheWire(t *testing.T) {
	app := newRecordingApp(t)
	p, _ := newHardenedProxy(t, app.srv.URL, nil)
	srv := httptest.NewServer(asTrustedProxy(p))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, target := range append(slices.Clone(pathTricks), "http://x/api/dossiers/D-1%2F..%2Fplan") {
		if strings.ContainsAny(target, " \t") || strings.Contains(target, "Attachments") {
			continue // not a request line at all; a literal only testRoutes has
		}
		code, prob := rawRequest(t, addr, "GET "+target+" HTTP/1.1\r\nHost: app\r\nX-Forwarded-User: an@example.nl\r\nConnection: close\r\n\r\n")
		if code != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 400", target, code)
		} else if prob.Type != "" && prob.Type != ProblemNonCanonicalPath {
			t.Errorf("GET %s: problem %+v", target, prob)
		}
	}
	if n := app.calls.Load(); n != 0 {
		t.Errorf("the application got %d of the requests", n)
	}
}

func TestProxyRefusesMethodOverrideAndRewrites(t *testing.T) {
	app := newRecordingApp(t)
	doc := integrationDocument()
	doc.Routes = append(doc.Routes, accesspolicy.Route{Name: "add-note", Method: "POST", Path: "/api/dossiers/{dossier}/notes", Categories: []v1alpha1.DataCategory{"plan"}, Action: "write"})
	p, sink := newHardenedProxyWithDoc(t, app.srv.URL, doc)
	type req struct {
		method, target, name, value string
		body, contentType           string
	}
	var cases []req
	for _, h := range []string{
		"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Method",
		"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-URI", "X-Forwarded-Path", "X-Forwarded-Prefix", "X-Envoy-Original-Path",
		"X_HTTP_Method_Override", "x-http-method-override", "X.Original.URL", "X-Rewrite_Url",
	} {
		cases = append(cases, req{method: "PUT", target: "/api/dossiers/D-9/plan", name: h, value: "DELETE"})
	}
	for _, q := range []string{
		"_method=DELETE", "x=1&_method=DELETE", "x=1;_method=DELETE", "%5Fmethod=DELETE", "_METHOD=DELETE", "_method[]=DELETE",
		".method=DELETE", "+method=DELETE", "_method", "a=b&_method=",
	} {
		cases = append(cases, req{method: "PUT", target: "/api/dossiers/D-9/plan?" + q})
	}
	for _, b := range []string{"_method=DELETE", "plan=x&_method=delete", "plan=x;%5Fmethod=DELETE"} {
		cases = append(cases, req{method: "PUT", target: "/api/dossiers/D-9/plan", body: b, contentType: "application/x-www-form-urlencoded; charset=utf-8"})
	}
	// Laravel reads _method from a JSON body too.
	for _, b := range []string{`{"_method":"DELETE"}`, `{"plan":"x","_METHOD":"DELETE"}`, `{"\u005fmethod":"DELETE"}`, `{"plan":1,"_method":"PUT","_method":"DELETE"}`} {
		cases = append(cases, req{method: "POST", target: "/api/dossiers/D-9/notes", body: b, contentType: "application/json"})
		cases = append(cases, req{method: "POST", target: "/api/dossiers/D-9/notes", body: b, contentType: "application/vnd.api+json; charset=utf-8"})
	}
	for _, c := range cases {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		r := httptest.NewRequest(c.method, c.target, body)
		r.RemoteAddr = trustedSource
		r.Header.Set(DefaultUserHeader, "an@example.nl")
		if c.name != "" {
			r.Header[c.name] = []string{c.value}
		}
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		calls := app.calls.Load()
		w, prob := serve(t, p, r)
		if w.Code != http.StatusBadRequest || prob.Type != ProblemTypeBase+"request-override" {
			t.Errorf("%s %s %s %s: %d %+v, want 400 request-override", c.method, c.target, c.name, c.body, w.Code, prob)
		}
		if app.calls.Load() != calls {
			t.Errorf("%s %s %s %s reached the application", c.method, c.target, c.name, c.body)
		}
	}
	// A JSON body without an override reaches the application whole.
	r0 := httptest.NewRequest("PUT", "/api/dossiers/D-9/plan", strings.NewReader(`{"plan":"x","method":"post"}`))
	r0.RemoteAddr = trustedSource
	r0.Header.Set(DefaultUserHeader, "an@example.nl")
	r0.Header.Set("Content-Type", "application/json")
	if w, _ := serve(t, p, r0); w.Code != http.StatusOK {
		t.Errorf("a plain JSON body: %d %s", w.Code, w.Body)
	}
	// A form body without an override still reaches the application whole.
	r := httptest.NewRequest("PUT", "/api/dossiers/D-9/plan", strings.NewReader("plan=x&methods=2"))
	r.RemoteAddr = trustedSource
	r.Header.Set(DefaultUserHeader, "an@example.nl")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if w, _ := serve(t, p, r); w.Code != http.StatusOK {
		t.Errorf("a plain form: %d %s", w.Code, w.Body)
	}
	if evs := sink.all(); len(evs) == 0 || evs[0].Outcome != auditlog.OutcomeDenied || evs[0].Status != http.StatusBadRequest {
		t.Errorf("override not recorded as a denial (%d events)", len(evs))
	}
}

func TestBreakGlassReasonIsBoundedAndClean(t *testing.T) {
	app := newRecordingApp(t)
	iss := newTestIssuer(t)
	p, sink := newHardenedProxy(t, app.srv.URL, iss)
	tok := iss.token(t, "bo@example.nl", []string{"crisis"}, nil)
	send := func(values ...string) (*httptest.ResponseRecorder, Problem) {
		r := httptest.NewRequest("GET", "/api/dossiers/D-9/safety", nil)
		r.RemoteAddr = untrustedSource
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header[BreakGlassHeader] = values
		return serve(t, p, r)
	}
	for name, reason := range map[string]string{
		"right-to-left override":  "Melding \u202Eacute onveiligheid",
		"left-to-right isolate":   "Melding \u2066acute\u2069",
		"right-to-left mark":      "Melding\u200F acute",
		"arabic letter mark":      "Melding\u061C acute",
		"zero-width space":        "Mel\u200Bding acute",
		"zero-width joiner":       "Mel\u200Dding acute",
		"byte-order mark":         "\uFEFFMelding acute",
		"soft hyphen":             "Mel\u00ADding acute",
		"tag character":           "Melding acute\U000E0041",
		"line separator":          "Melding\u2028acute",
		"no-break space":          "Melding\u00A0acute",
		"bell":                    "Melding\x07acute",
		"tab":                     "Melding\tacute",
		"escape sequence":         "Melding \x1b[31macute",
		"DEL":                     "Melding\x7facute",
		"C1 control":              "Melding\u0085acute",
		"private use":             "Melding\uE000acute",
		"invalid UTF-8":           "Melding \xff acute",
		"too long":                strings.Repeat("x", MaxBreakGlassReasonLen+1),
		"too long in characters":  strings.Repeat("é", MaxBreakGlassReasonLen/2+1),
		"interlinear annotation":  "Melding\uFFF9acute",
		"noncharacter":            "Melding\uFFFEacute",
		"variation selector only": "Melding\uFE0F",
	} {
		calls := app.calls.Load()
		w, prob := send(reason)
		if w.Code != http.StatusBadRequest || prob.Type != ProblemTypeBase+"invalid-break-glass-reason" ||
			!strings.Contains(prob.Detail, BreakGlassHeader) || prob.BreakGlassHeader != BreakGlassHeader {
			t.Errorf("%s: %d %+v, want 400 invalid-break-glass-reason naming the header", name, w.Code, prob)
		}
		if app.calls.Load() != calls {
			t.Errorf("%s: reached the application", name)
		}
	}
	if w, prob := send("Melding acute onveiligheid", "tweede reden"); w.Code != http.StatusBadRequest || !strings.Contains(prob.Detail, "more than once") {
		t.Errorf("two reasons: %d %+v", w.Code, prob)
	}
	const good = "Melding acute onveiligheid (café, 3e verdieping) — dienstdoende niet bereikbaar: zie #4711!"
	if w, prob := send(good); w.Code != http.StatusOK {
		t.Fatalf("a plain reason: %d %+v", w.Code, prob)
	}
	p.Wait()
	evs := sink.all()
	if last := evs[len(evs)-1]; !last.BreakGlass || last.BreakGlassReason != good {
		t.Errorf("reason recorded as %q", last.BreakGlassReason)
	}
}

// bsnMarker stands for personal data in an application's response.
const bsnMarker = "BSN999999990"

// rawUpstream answers every connection with response, as bytes, and closes
// it.
func rawUpstream(t testing.TB, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, response)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// malformedResponses are answers of a broken application with personal
// data in them.
var malformedResponses = map[string]string{
	"malformed status line":   bsnMarker + " is not a status line\r\n\r\n",
	"malformed header line":   "HTTP/1.1 200 OK\r\n" + bsnMarker + "\r\n\r\n",
	"bad Content-Length":      "HTTP/1.1 200 OK\r\nContent-Length: " + bsnMarker + "\r\n\r\n",
	"unasked protocol switch": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + bsnMarker + "\r\nConnection: Upgrade\r\n\r\n",
	"bad chunked encoding":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + bsnMarker + "\r\n\r\n",
	"malformed version":       "HTTP/9." + bsnMarker + " 200 OK\r\n\r\n",
}

func TestTransportErrorsNeverLogResponseBytes(t *testing.T) {
	for name, response := range malformedResponses {
		logs := &syncBuffer{}
		p, _ := newHardenedProxy(t, rawUpstream(t, response), nil)
		p.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := httptest.NewRequest("PUT", "/api/dossiers/D-9/plan", nil)
		r.RemoteAddr = trustedSource
		r.Header.Set(DefaultUserHeader, "an@example.nl")
		w, prob := serve(t, p, r)
		if w.Code != http.StatusBadGateway || prob.Type != ProblemUpstreamUnavailable {
			t.Errorf("%s: %d %+v, want 502", name, w.Code, prob)
		}
		if strings.Contains(w.Body.String(), bsnMarker) {
			t.Errorf("%s: the response holds the application's bytes", name)
		}
		if !strings.Contains(logs.String(), "upstream request failed") {
			t.Errorf("%s: the failure was not logged: %s", name, logs)
		}
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, bsnMarker) || strings.Contains(line, "D-9") {
				t.Errorf("%s: the proxy's log holds the application's bytes: %s", name, line)
			}
		}
	}

	// The assignment source is the application too.
	for name, response := range malformedResponses {
		a, err := NewHTTPAssignments(rawUpstream(t, response)+"/assignments/{dossier}/{user}", &http.Client{Timeout: 5 * time.Second}, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		_, aerr := a.Assigned(context.Background(), "an@example.nl", "D-9")
		if aerr == nil && name != "unasked protocol switch" {
			t.Errorf("assignment source, %s: no error", name)
		}
		if aerr != nil && strings.Contains(aerr.Error(), bsnMarker) {
			t.Errorf("assignment source, %s: the error holds the application's bytes: %v", name, aerr)
		}
	}
}

func TestProxyRefusesUpgradesARouteDoesNotAllow(t *testing.T) {
	app := newRecordingApp(t)
	p, sink := newHardenedProxyWithDoc(t, app.srv.URL, webSocketDocument())
	for _, tc := range []struct {
		name, method, path string
		header             http.Header
	}{
		{"WebSocket on a route without allowWebSocket", "PUT", "/api/dossiers/D-9/plan", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
		{"WebSocket on a GET route without it", "GET", "/api/dossiers/D-9/notes", http.Header{"Connection": {"upgrade"}, "Upgrade": {"websocket"}}},
		{"h2c on a route without it", "PUT", "/api/dossiers/D-9/plan", http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}}},
		{"h2c on a WebSocket route", "GET", "/api/dossiers/D-9/live", http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}}},
		{"another protocol on a WebSocket route", "GET", "/api/dossiers/D-9/live", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket, h2c"}}},
		{"two Upgrade lines on a WebSocket route", "GET", "/api/dossiers/D-9/live", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket", "h2c"}}},
		{"Upgrade without Connection", "PUT", "/api/dossiers/D-9/plan", http.Header{"Upgrade": {"websocket"}}},
		{"Connection: upgrade without Upgrade", "PUT", "/api/dossiers/D-9/plan", http.Header{"Connection": {"keep-alive, Upgrade"}}},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		r.RemoteAddr = trustedSource
		for k, v := range tc.header {
			r.Header[k] = v
		}
		r.Header.Set(DefaultUserHeader, "an@example.nl")
		calls := app.calls.Load()
		w, prob := serve(t, p, r)
		if w.Code != http.StatusForbidden || prob.Type != ProblemTypeBase+"upgrade-not-allowed" {
			t.Errorf("%s: %d %+v, want 403 upgrade-not-allowed", tc.name, w.Code, prob)
		}
		if app.calls.Load() != calls {
			t.Errorf("%s: reached the application", tc.name)
		}
	}
	p.Wait()
	for _, ev := range sink.all() {
		if ev.Outcome != auditlog.OutcomeDenied || ev.Status != http.StatusForbidden {
			t.Errorf("an upgrade was recorded as %s %d", ev.Outcome, ev.Status)
		}
	}
}

// webSocketDocument is the integration policy plus a WebSocket route and a
// GET route without it, both granted to an@example.nl (role intake).
func webSocketDocument() accesspolicy.Document {
	doc := integrationDocument()
	doc.Routes = append(doc.Routes,
		accesspolicy.Route{Name: "live", Method: "GET", Path: "/api/dossiers/{dossier}/live", Categories: []v1alpha1.DataCategory{"plan"}, Action: "read", AllowWebSocket: true},
		accesspolicy.Route{Name: "notes", Method: "GET", Path: "/api/dossiers/{dossier}/notes", Categories: []v1alpha1.DataCategory{"plan"}, Action: "read"})
	return doc
}

// newHardenedProxyWithDoc is newHardenedProxy with another document.
func newHardenedProxyWithDoc(t testing.TB, upstream string, doc accesspolicy.Document) (*Proxy, *memorySink) {
	t.Helper()
	p, sink := newHardenedProxy(t, upstream, nil)
	pol, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	p.policies.Set(pol)
	return p, sink
}

// webSocketApp accepts a WebSocket upgrade and then echoes every byte.
func webSocketApp(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade expected", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runningProxy is Run in front of an upstream, trusting identity headers
// from 127.0.0.1, with the proxy's own log in logs.
type runningProxy struct {
	addr    string
	logPath string
	keys    testKeys
	logs    *syncBuffer
	cancel  context.CancelFunc
	done    chan error
}

func startProxy(t *testing.T, upstreamURL string, doc accesspolicy.Document) *runningProxy {
	t.Helper()
	policy := newConfigMapDir(t)
	policy.writeDoc(t, doc)
	rp := &runningProxy{keys: newTestKeys(t), logPath: filepath.Join(t.TempDir(), "audit.jsonl"), logs: &syncBuffer{}, done: make(chan error, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rp.addr = ln.Addr().String()
	upstream, _ := url.Parse(upstreamURL)
	ctx, cancel := context.WithCancel(context.Background())
	rp.cancel = cancel
	t.Cleanup(cancel)
	go func() {
		rp.done <- Run(ctx, Config{Listener: ln, HealthListener: hln, Upstream: upstream, PolicyPath: policy.path(),
			Identity:     IdentityConfig{TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			PseudonymKey: rp.keys.pseudonym, AuditLogPath: rp.logPath, SigningKey: rp.keys.signing, ShutdownTimeout: 10 * time.Second,
			Logger: slog.New(slog.NewJSONHandler(rp.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()
	return rp
}

func TestTransportErrorsNeverReachTheServersLog(t *testing.T) {
	for name, response := range malformedResponses {
		rp := startProxy(t, rawUpstream(t, response), integrationDocument())
		code, _ := rawRequest(t, rp.addr, "PUT /api/dossiers/D-9/plan HTTP/1.1\r\nHost: app\r\nX-Forwarded-User: an@example.nl\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		if code != http.StatusBadGateway {
			t.Errorf("%s: status %d, want 502", name, code)
		}
		rp.cancel()
		if err := <-rp.done; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rp.logs.String(), "upstream request failed") {
			t.Errorf("%s: not logged", name)
		}
		for line := range strings.Lines(rp.logs.String()) {
			if strings.Contains(line, bsnMarker) || strings.Contains(line, "D-9") {
				t.Errorf("%s: the proxy's log holds the application's bytes: %s", name, line)
			}
		}
	}
}

func TestWebSocketTunnelDoesNotBlockShutdown(t *testing.T) {
	rp := startProxy(t, webSocketApp(t).URL, webSocketDocument())
	keys, logPath, cancel, done := rp.keys, rp.logPath, rp.cancel, rp.done

	conn, err := net.Dial("tcp", rp.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = io.WriteString(conn, "GET /api/dossiers/D-9/live HTTP/1.1\r\nHost: app\r\nX-Forwarded-User: an@example.nl\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	_, _ = io.WriteString(conn, "ping")
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "ping" {
		t.Fatalf("echo %q %v", echo, err)
	}

	// SIGTERM while the tunnel is open: Run returns, with a final checkpoint.
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("an open WebSocket tunnel blocks shutdown")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the tunnel is still open after shutdown")
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := auditlog.Verify(bytes.NewReader(data), keys.signing.Public().(ed25519.PublicKey))
	if err != nil || !res.OK {
		t.Fatalf("audit log does not verify: %v %s", err, res)
	}
	byOp, events := readEvents(t, data)
	if events != 2 || len(byOp) != 1 {
		t.Fatalf("%d events for %d operations, want decision and completion of one", events, len(byOp))
	}
	for _, evs := range byOp {
		if evs[0].Route != "live" || evs[0].Outcome != "allowed" || evs[1].Status != http.StatusSwitchingProtocols {
			t.Errorf("events %+v", evs)
		}
	}
	if !bytes.Contains(data[bytes.LastIndexByte(data[:len(data)-1], '\n')+1:], []byte(`"checkpoint"`)) {
		t.Error("the log does not end with a checkpoint")
	}
}

// multipartBody is a multipart/form-data body of parts, each a header
// block and content.
func multipartBody(boundary string, parts ...[2]string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--" + boundary + "\r\n" + p[0] + "\r\n\r\n" + p[1] + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.String()
}

func TestProxyRefusesMethodOverrideInMultipartBodies(t *testing.T) {
	app := newRecordingApp(t)
	doc := integrationDocument()
	doc.Routes = append(doc.Routes, accesspolicy.Route{Name: "add-note", Method: "POST", Path: "/api/dossiers/{dossier}/notes", Categories: []v1alpha1.DataCategory{"plan"}, Action: "write"})
	p, sink := newHardenedProxyWithDoc(t, app.srv.URL, doc)
	const boundary = "b0undary"
	post := func(body string) (*httptest.ResponseRecorder, Problem) {
		r := httptest.NewRequest("POST", "/api/dossiers/D-9/notes", strings.NewReader(body))
		r.RemoteAddr = trustedSource
		r.Header.Set(DefaultUserHeader, "an@example.nl")
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		return serve(t, p, r)
	}
	file := [2]string{`Content-Disposition: form-data; name="file"; filename="payment_methods.pdf"` + "\r\nContent-Type: application/pdf", strings.Repeat("%PDF-1.7 ", 1<<20)} // 9 MiB
	note := [2]string{`Content-Disposition: form-data; name="note"`, "tekst"}
	for name, override := range map[string][2]string{
		"quoted name":      {`Content-Disposition: form-data; name="_method"`, "DELETE"},
		"unquoted name":    {`Content-Disposition: form-data; name=_method`, "DELETE"},
		"upper case":       {`content-disposition: form-data; NAME="_METHOD"`, "DELETE"},
		"extended name":    {`Content-Disposition: form-data; name*=UTF-8''%5Fmethod`, "DELETE"},
		"array name":       {`Content-Disposition: form-data; name="_method[]"`, "DELETE"},
		"after other part": {`Content-Disposition: form-data; name="x"; name="_method"`, "DELETE"},
	} {
		for _, layout := range []string{"small", "after a large file"} {
			parts := [][2]string{note, override}
			if layout != "small" {
				parts = [][2]string{note, file, override}
			}
			calls := app.calls.Load()
			w, prob := post(multipartBody(boundary, parts...))
			if w.Code != http.StatusBadRequest || prob.Type != ProblemRequestOverride {
				t.Errorf("%s, %s: %d %+v, want 400 request-override", name, layout, w.Code, prob)
			}
			if app.calls.Load() == calls {
				continue
			}
			if seen := app.lastBody(t); seen.err == nil {
				t.Errorf("%s, %s: the application read the whole body (%d bytes)", name, layout, seen.len)
			}
		}
	}
	// An upload without an override reaches the application byte for byte,
	// also with LF-only line ends.
	for _, body := range []string{
		multipartBody(boundary, note, file),
		strings.ReplaceAll(multipartBody(boundary, note, [2]string{`Content-Disposition: form-data; name="methods"`, "x"}), "\r\n", "\n"),
	} {
		w, _ := post(body)
		if w.Code != http.StatusOK {
			t.Fatalf("a plain upload: %d %s", w.Code, w.Body)
		}
		seen := app.lastBody(t)
		if seen.err != nil || seen.len != int64(len(body)) || seen.sum != sha256.Sum256([]byte(body)) {
			t.Errorf("the application read %d bytes (%v), want the %d sent", seen.len, seen.err, len(body))
		}
	}
	// Content types another parser could read with another boundary, or as
	// a form, are refused or checked as a form.
	override := multipartBody(boundary, note, [2]string{`Content-Disposition: form-data; name="_method"`, "DELETE"})
	for _, ct := range []string{
		"multipart/form-data; boundary=\"" + boundary + ",x\"",           // Rack stops at the comma
		"multipart/form-data; boundary=x; y=boundary=" + boundary,        // ... and matches greedily
		"multipart/form-data; boundary=" + boundary + "; boundary=other", // two boundaries
		"multipart/form-data", // none
	} {
		r := httptest.NewRequest("POST", "/api/dossiers/D-9/notes", strings.NewReader(override))
		r.RemoteAddr = trustedSource
		r.Header.Set(DefaultUserHeader, "an@example.nl")
		r.Header.Set("Content-Type", ct)
		calls := app.calls.Load()
		if w, prob := serve(t, p, r); w.Code != http.StatusBadRequest || prob.Type != ProblemRequestOverride || app.calls.Load() != calls {
			t.Errorf("Content-Type %s: %d %+v", ct, w.Code, prob)
		}
	}
	for name, h := range map[string]http.Header{
		"two content types": {"Content-Type": {"text/plain", "application/x-www-form-urlencoded"}},
		"no content type":   {}, // Rack reads a POST without one as a form
	} {
		r := httptest.NewRequest("POST", "/api/dossiers/D-9/notes", strings.NewReader("note=x&_method=DELETE"))
		r.RemoteAddr = trustedSource
		r.Header = h
		r.Header.Set(DefaultUserHeader, "an@example.nl")
		calls := app.calls.Load()
		if w, prob := serve(t, p, r); w.Code != http.StatusBadRequest || prob.Type != ProblemRequestOverride || app.calls.Load() != calls {
			t.Errorf("%s: %d %+v", name, w.Code, prob)
		}
	}
	// LF-only delimiters still count.
	w, prob := post(strings.ReplaceAll(multipartBody(boundary, note, [2]string{`Content-Disposition: form-data; name="_method"`, "DELETE"}), "\r\n", "\n"))
	if w.Code != http.StatusBadRequest || prob.Type != ProblemRequestOverride {
		t.Errorf("LF-only: %d %+v", w.Code, prob)
	}
	p.Wait()
	if len(sink.all()) == 0 {
		t.Error("nothing recorded")
	}
}

func TestMultipartGuardAtEveryChunkBoundary(t *testing.T) {
	const boundary = "XyZ"
	plain := multipartBody(boundary, [2]string{`Content-Disposition: form-data; name="a"`, "1\n--XyZ-not-a-delimiter"},
		[2]string{`Content-Disposition: form-data; name="f"; filename="_method.txt"`, strings.Repeat("z", 70_000)})
	bad := multipartBody(boundary, [2]string{`Content-Disposition: form-data; name="a"`, strings.Repeat("y", 70_000)},
		[2]string{`Content-Disposition: form-data; name="_method"`, "DELETE"})
	for _, wrap := range []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r },
		iotest.OneByteReader,
		iotest.HalfReader,
		iotest.DataErrReader,
	} {
		g := newMultipartGuard(io.NopCloser(wrap(strings.NewReader(plain))), boundary)
		got, err := io.ReadAll(iotest.OneByteReader(g))
		if err != nil || string(got) != plain {
			t.Errorf("plain body: %d of %d bytes, %v", len(got), len(plain), err)
		}
		g = newMultipartGuard(io.NopCloser(wrap(strings.NewReader(bad))), boundary)
		got, err = io.ReadAll(g)
		if !errors.Is(err, errOverrideInBody) {
			t.Errorf("override: %v", err)
		}
		if bytes.Contains(got, []byte(`name="_method"`)) {
			t.Error("the override's header block was released")
		}
	}
}
