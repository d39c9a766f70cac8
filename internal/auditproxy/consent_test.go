package auditproxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// testClock is a clock the tests move.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock { c := &testClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *testClock) Now() time.Time       { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Add(d time.Duration)  { c.ns.Add(int64(d)) }

// consentServer is a consent source over real HTTP: each dossier's answer
// is set by the test; it counts the questions and can be slowed down.
type consentServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter) // by dossier
	calls   atomic.Int32
	delay   atomic.Int64
	paths   []string
}

func newConsentServer(t testing.TB) *consentServer {
	t.Helper()
	c := &consentServer{answers: map[string]func(http.ResponseWriter){}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.calls.Add(1)
		if d := time.Duration(c.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		// /consent/{dossier}?agreement={agreement}&partner={partner}
		dossier := strings.TrimPrefix(r.URL.Path, "/consent/")
		c.mu.Lock()
		c.paths = append(c.paths, r.URL.RequestURI())
		answer := c.answers[dossier]
		c.mu.Unlock()
		if answer == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		answer(w)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *consentServer) template() string {
	return c.srv.URL + "/consent/{dossier}?agreement={agreement}&partner={partner}"
}

func (c *consentServer) set(dossier string, status int, body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers[dossier] = func(w http.ResponseWriter) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestHTTPConsentAnswers(t *testing.T) {
	src := newConsentServer(t)
	clock := newTestClock(sharingT0)
	src.set("given", 200, "")
	src.set("narrow", 200, `{"categories":["identity"],"until":"2026-12-31T00:00:00Z"}`)
	src.set("ended", 200, `{"until":"2026-11-01T00:00:00Z"}`)
	src.set("garbage", 200, `<html>`)
	src.set("gone", 410, "")
	src.set("error", 500, "")
	src.set("redirect", 302, "")
	c, err := NewHTTPConsents(src.template(), &http.Client{Timeout: 200 * time.Millisecond}, 10, 5*time.Second, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		dossier string
		want    ConsentAnswer
		err     bool
	}{
		{"given", ConsentAnswer{Given: true}, false},
		{"narrow", ConsentAnswer{Given: true, Categories: []v1alpha1.DataCategory{"identity"}, Until: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}, false},
		{"ended", ConsentAnswer{}, false},
		{"none", ConsentAnswer{}, false},
		{"gone", ConsentAnswer{Withdrawn: true}, false},
		{"garbage", ConsentAnswer{}, true},
		{"error", ConsentAnswer{}, true},
	}
	for _, tc := range cases {
		got, err := c.Consent(context.Background(), ConsentQuery{Agreement: "school", Partner: "De Regenboog", Dossier: tc.dossier})
		if (err != nil) != tc.err || got.Given != tc.want.Given || got.Withdrawn != tc.want.Withdrawn ||
			len(got.Categories) != len(tc.want.Categories) || !got.Until.Equal(tc.want.Until) {
			t.Errorf("%s: %+v, %v; want %+v (error %v)", tc.dossier, got, err, tc.want, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), tc.dossier) {
			t.Errorf("%s: the error names the dossier: %v", tc.dossier, err)
		}
	}
	// The values are escaped into the template.
	if p := src.paths[0]; p != "/consent/given?agreement=school&partner=De%20Regenboog" {
		t.Errorf("asked %s", p)
	}
	// Slow: no answer within the client's timeout is an error.
	src.delay.Store(int64(time.Second))
	if _, err := c.Consent(context.Background(), ConsentQuery{Agreement: "school", Partner: "p", Dossier: "slow"}); err == nil {
		t.Error("a slow consent source gave an answer")
	}
	src.delay.Store(0)
}

func TestHTTPConsentCacheBoundAndCoalescing(t *testing.T) {
	src := newConsentServer(t)
	clock := newTestClock(sharingT0)
	src.set("A", 200, "")
	c, err := NewHTTPConsents(src.template(), nil, 10, 5*time.Second, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	q := ConsentQuery{Agreement: "school", Partner: "De Regenboog", Dossier: "A"}

	// Concurrent identical look-ups: one request to the source.
	src.delay.Store(int64(100 * time.Millisecond))
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a, err := c.Consent(context.Background(), q); err != nil || !a.Given {
				t.Errorf("concurrent look-up: %+v %v", a, err)
			}
		}()
	}
	wg.Wait()
	src.delay.Store(0)
	if n := src.calls.Load(); n != 1 {
		t.Errorf("20 concurrent look-ups made %d requests, want 1", n)
	}
	// Warm: no request within the bound.
	clock.Add(4 * time.Second)
	if a, _ := c.Consent(context.Background(), q); !a.Given || src.calls.Load() != 1 {
		t.Errorf("warm look-up asked the source (calls %d)", src.calls.Load())
	}
	// Withdrawn at the source: seen once the bound has passed.
	src.set("A", 410, "")
	clock.Add(time.Second)
	if a, _ := c.Consent(context.Background(), q); !a.Withdrawn {
		t.Errorf("after the bound the withdrawal is not seen: %+v", a)
	}
	// Negative answers are not cached.
	src.set("A", 200, "")
	if a, _ := c.Consent(context.Background(), q); !a.Given {
		t.Errorf("a negative answer was cached: %+v", a)
	}
	// Errors are not cached either.
	src.set("B", 503, "")
	_, err1 := c.Consent(context.Background(), ConsentQuery{Dossier: "B", Agreement: "school"})
	src.set("B", 200, "")
	a, err2 := c.Consent(context.Background(), ConsentQuery{Dossier: "B", Agreement: "school"})
	if err1 == nil || err2 != nil || !a.Given {
		t.Errorf("error answer cached: %v then %+v %v", err1, a, err2)
	}
	// A consent's own until caps the cache.
	src.set("C", 200, `{"until":"`+clock.Now().Add(time.Second).Format(time.RFC3339Nano)+`"}`)
	qc := ConsentQuery{Dossier: "C", Agreement: "school"}
	if a, _ := c.Consent(context.Background(), qc); !a.Given {
		t.Fatalf("C: %+v", a)
	}
	src.set("C", 404, "")
	clock.Add(time.Second)
	if a, _ := c.Consent(context.Background(), qc); a.Given {
		t.Error("a consent was served from the cache beyond its until")
	}
}

func TestNewHTTPConsentsChecks(t *testing.T) {
	for _, tc := range []struct {
		tmpl  string
		bound time.Duration
	}{
		{"https://cases.example/consent/{agreement}", 5 * time.Second},
		{"https://cases.example/consent/{dossier}", 5 * time.Second},
		{"ftp://cases.example/{dossier}/{partner}", 5 * time.Second},
		{"https://cases.example/{dossier}/{partner}", 61 * time.Second},
		{"https://cases.example/{dossier}/{partner}", 0},
	} {
		if _, err := NewHTTPConsents(tc.tmpl, nil, 10, tc.bound, nil); err == nil {
			t.Errorf("%s with bound %s accepted", tc.tmpl, tc.bound)
		}
	}
}

// loopbackPolicy returns a policy source holding doc and an authenticator
// that trusts identity headers from loopback.
func loopbackPolicy(t testing.TB, doc accesspolicy.Document) (*PolicySource, *Authenticator) {
	t.Helper()
	pol, err := NewPolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	src := NewPolicySource("unused", nil)
	src.Set(pol)
	auth, err := NewAuthenticator(context.Background(), IdentityConfig{TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src, auth
}

// sharingProxy is a proxy in front of app with the sharing policy, a real
// HTTP consent source and a clock the test moves; identity comes from the
// headers of a trusted proxy on loopback.
type sharingProxy struct {
	srv     *httptest.Server
	clock   *testClock
	consent *consentServer
	logPath string
	writer  *auditlog.Writer
	keys    testKeys
	client  *http.Client
}

func newSharingProxy(t *testing.T) *sharingProxy {
	t.Helper()
	sp := &sharingProxy{clock: newTestClock(sharingT0), consent: newConsentServer(t), keys: newTestKeys(t)}
	src, auth := loopbackPolicy(t, sharingDocument())
	consents, err := NewHTTPConsents(sp.consent.template(), nil, 100, 5*time.Second, sp.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	sp.logPath = filepath.Join(t.TempDir(), "audit.jsonl")
	sp.writer, err = auditlog.NewWriter(auditlog.Options{Path: sp.logPath, SigningKey: sp.keys.signing})
	if err != nil {
		t.Fatal(err)
	}
	app := newUpstreamApp(t)
	upstream, _ := url.Parse(app.srv.URL)
	p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: sp.writer, PseudonymKey: sp.keys.pseudonym,
		Consents: consents, Now: sp.clock.Now, SyncCompletion: true})
	if err != nil {
		t.Fatal(err)
	}
	sp.srv = httptest.NewServer(p)
	t.Cleanup(sp.srv.Close)
	sp.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	return sp
}

// get sends GET path as a member of group and reports the status and
// whether the connection was reused.
func (sp *sharingProxy) get(t *testing.T, group, path string) (int, bool) {
	t.Helper()
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, sp.srv.URL+path, nil)
	req.Header.Set(DefaultUserHeader, "lvs@"+group)
	req.Header.Set(DefaultGroupsHeader, group)
	resp, err := sp.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, reused
}

func (sp *sharingProxy) events(t *testing.T) []auditlog.Event {
	t.Helper()
	if err := sp.writer.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sp.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := auditlog.Verify(bytes.NewReader(data), sp.keys.signing.Public().(ed25519.PublicKey)); err != nil || !res.OK {
		t.Fatalf("audit log does not verify: %v %s", err, res)
	}
	var out []auditlog.Event
	if err := auditlog.ReadEvents(bytes.NewReader(data), func(r *auditlog.Record) error {
		out = append(out, *r.Event)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProxySharingWithRealConsentSource: consent given, used, withdrawn at
// the source; the withdrawal bites within the cache bound while another
// dossier is still served; the window closes during a kept-alive
// connection; every event names the agreement.
func TestProxySharingWithRealConsentSource(t *testing.T) {
	sp := newSharingProxy(t)
	sp.consent.set("A", 200, "")
	sp.consent.set("B", 200, "")

	if st, _ := sp.get(t, "regenboog", "/api/dossiers/A/plan"); st != 200 {
		t.Fatalf("consent given: %d", st)
	}
	if st, _ := sp.get(t, "regenboog", "/api/dossiers/B/plan"); st != 200 {
		t.Fatalf("B: %d", st)
	}
	asked := sp.consent.calls.Load()
	if st, _ := sp.get(t, "regenboog", "/api/dossiers/A/plan"); st != 200 || sp.consent.calls.Load() != asked {
		t.Fatalf("warm: %d, asked the source again: %v", st, sp.consent.calls.Load() != asked)
	}

	// The mother withdraws consent for A at the case-management system.
	sp.consent.set("A", 410, "")
	sp.clock.Add(5 * time.Second) // the cache bound
	if st, _ := sp.get(t, "regenboog", "/api/dossiers/A/plan"); st != 403 {
		t.Errorf("after withdrawal and the cache bound, A: %d, want 403", st)
	}
	if st, _ := sp.get(t, "regenboog", "/api/dossiers/B/plan"); st != 200 {
		t.Errorf("B after A's withdrawal: %d, want 200", st)
	}

	// The consent source goes down: refused, not allowed.
	sp.consent.set("B", 500, "")
	sp.clock.Add(5 * time.Second)
	if st, _ := sp.get(t, "regenboog", "/api/dossiers/B/plan"); st != 403 {
		t.Errorf("consent source answering 500: %d, want 403", st)
	}

	// Veilig Thuis on a vital interest: no look-up, flagged for notice.
	asked = sp.consent.calls.Load()
	if st, _ := sp.get(t, "veilig-thuis", "/api/dossiers/A/safety"); st != 200 || sp.consent.calls.Load() != asked {
		t.Errorf("vital interest: %d (asked the consent source: %v)", st, sp.consent.calls.Load() != asked)
	}

	// The school's window closes during a kept-alive connection.
	sp.consent.set("B", 200, "")
	if st, _ := sp.get(t, "regenboog", "/api/dossiers/B/plan"); st != 200 {
		t.Fatalf("before the window closes: %d", st)
	}
	sp.clock.Add(time.Hour) // past validUntil (T0+1h)
	st, reused := sp.get(t, "regenboog", "/api/dossiers/B/plan")
	if st != 403 {
		t.Errorf("after the window closed on a kept-alive connection: %d, want 403", st)
	}
	if !reused {
		t.Error("test premise: the request was not sent on the kept-alive connection")
	}

	events := sp.events(t)
	type row struct {
		outcome    auditlog.Outcome
		agreement  string
		consent    auditlog.ConsentOutcome
		notice     bool
		completion bool
	}
	var got []row
	for _, ev := range events {
		if ev.Sharing == nil {
			t.Fatalf("a partner's event without sharing members: %+v", ev)
		}
		s := ev.Sharing
		if s.Partner == "" || s.LegalBasis == "" || s.Purpose == "" || ev.DataSubject == "" || len(ev.Roles) != 0 {
			t.Errorf("event %+v / %+v is missing partner, basis, purpose or subject", ev, s)
		}
		if s.Agreement == "school" && s.ConsentMode != "PerDossier" {
			t.Errorf("school event consent mode %q", s.ConsentMode)
		}
		if s.Agreement == "veilig-thuis" && (s.LegalBasis != "VitalInterest" || s.ConsentMode != "") {
			t.Errorf("Veilig Thuis event %+v", s)
		}
		got = append(got, row{ev.Outcome, s.Agreement, s.Consent, s.NoticeRequired, ev.Status != 403 && ev.Status != 0})
	}
	// Allowed requests have a decision and a completion event.
	var denied, allowedNotice int
	for _, r := range got {
		if r.outcome == auditlog.OutcomeDenied {
			denied++
		}
		if r.notice {
			allowedNotice++
			if r.agreement != "veilig-thuis" || r.consent != auditlog.ConsentNotRequired || r.outcome != auditlog.OutcomeAllowed {
				t.Errorf("notice flagged on %+v", r)
			}
		}
	}
	if denied != 3 || allowedNotice != 2 {
		t.Errorf("denied %d (want 3), notice events %d (want 2: decision and completion): %+v", denied, allowedNotice, got)
	}
	var reasons []auditlog.ConsentOutcome
	for _, r := range got {
		if r.outcome == auditlog.OutcomeDenied {
			reasons = append(reasons, r.consent)
		}
	}
	want := []auditlog.ConsentOutcome{auditlog.ConsentWithdrawn, auditlog.ConsentUnavailable, auditlog.ConsentNotChecked}
	if b, _ := json.Marshal(reasons); string(b) != mustJSON(want) {
		t.Errorf("denials' consent outcomes %s, want %s", b, mustJSON(want))
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestPartnerBreakGlassReasonIsNeitherCountedNorForwarded: break-glass is
// for staff; a partner's reason header is not recorded and does not reach
// the application.
func TestPartnerBreakGlassReasonIsNeitherCountedNorForwarded(t *testing.T) {
	var seen atomic.Value
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get(BreakGlassHeader))
		w.WriteHeader(http.StatusOK)
	}))
	defer app.Close()
	src, auth := loopbackPolicy(t, sharingDocument())
	keys := newTestKeys(t)
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := auditlog.NewWriter(auditlog.Options{Path: logPath, SigningKey: keys.signing})
	if err != nil {
		t.Fatal(err)
	}
	upstream, _ := url.Parse(app.URL)
	clock := newTestClock(sharingT0)
	p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: w, PseudonymKey: keys.pseudonym,
		Now: clock.Now, SyncCompletion: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/dossiers/D-1/safety", nil)
	req.Header.Set(DefaultUserHeader, "melder@veiligthuis.example")
	req.Header.Set(DefaultGroupsHeader, "veilig-thuis")
	req.Header.Set(BreakGlassHeader, "Acute onveiligheid van een kind")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 under the vital-interest agreement", resp.StatusCode)
	}
	if got, _ := seen.Load().(string); got != "" {
		t.Errorf("the application received the partner's break-glass reason %q", got)
	}
	p.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(logPath)
	if err := auditlog.ReadEvents(bytes.NewReader(data), func(r *auditlog.Record) error {
		if r.Event.BreakGlass || r.Event.BreakGlassReason != "" {
			t.Errorf("a partner's event records break-glass: %+v", r.Event)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
