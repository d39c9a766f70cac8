package auditproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// heldSink is an audit log whose decision events (allowed, status 0) are
// durable only when the test says so: each such Append reports itself on
// started and returns what the test sends on release (nil: durable). Every
// other event is kept at once.
type heldSink struct {
	memorySink
	started chan auditlog.Event
	release chan error
}

func newHeldSink() *heldSink {
	return &heldSink{started: make(chan auditlog.Event, 4), release: make(chan error, 4)}
}

func (s *heldSink) Append(ctx context.Context, ev auditlog.Event) error {
	if ev.Outcome == auditlog.OutcomeAllowed && ev.Status == 0 {
		s.started <- ev
		if err := <-s.release; err != nil {
			return err
		}
	}
	return s.memorySink.Append(ctx, ev)
}

// heldBeginner is a heldSink that the proxy starts decisions on with Begin
// (Beginner, as auditlog.Writer): Begin reports the decision on started
// before it returns, and its wait returns what the test sends on release.
type heldBeginner struct{ *heldSink }

func (s heldBeginner) Begin(ctx context.Context, ev auditlog.Event) func() error {
	if ev.Outcome != auditlog.OutcomeAllowed || ev.Status != 0 {
		err := s.memorySink.Append(ctx, ev)
		return func() error { return err }
	}
	s.started <- ev
	return func() error {
		if err := <-s.release; err != nil {
			return err
		}
		return s.memorySink.Append(ctx, ev)
	}
}

// secretApp answers with an early hint, a header and a body that must never
// reach a client whose request was not recorded; arrived reports each
// request as it comes in.
type secretApp struct {
	srv     *httptest.Server
	arrived chan string
	calls   atomic.Int32
}

const appSecret = "APPLICATION-RESPONSE-SECRET"

func newSecretApp(t *testing.T) *secretApp {
	app := &secretApp{arrived: make(chan string, 4)}
	app.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		app.arrived <- r.Method
		w.Header().Set("Link", "</hint-"+appSecret+">; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("X-App-Secret", appSecret)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = io.WriteString(w, `{"secret":"`+appSecret+`"}`)
	}))
	t.Cleanup(app.srv.Close)
	return app
}

// rawExchange sends one request over a plain TCP connection and returns a
// channel that receives everything the proxy sends on it until it closes
// (Connection: close), so that a test sees any byte that leaves: a 1xx, a
// header, a body.
func rawExchange(t *testing.T, proxyURL, method, path string) (got <-chan string, firstByte <-chan struct{}) {
	t.Helper()
	u, _ := url.Parse(proxyURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\n%s: an@example.nl\r\n%s: coaches\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		method, path, u.Host, DefaultUserHeader, DefaultGroupsHeader); err != nil {
		t.Fatal(err)
	}
	out, first := make(chan string, 1), make(chan struct{})
	go func() {
		br := bufio.NewReader(conn)
		var b strings.Builder
		if c, err := br.ReadByte(); err == nil {
			close(first)
			b.WriteByte(c)
			_, _ = io.Copy(&b, br)
		}
		out <- b.String()
	}()
	return out, first
}

// waitFor receives from c or fails after a while.
func waitFor[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestSafeRequestHeldUntilDecisionDurable: a GET is forwarded while its
// decision event is being made durable, and nothing of the response (the
// 103 early hint, the status line, a header, the body) reaches the client
// until the decision's Append has returned. When it fails the client gets
// 503 audit-unavailable and nothing of the application's response.
func TestSafeRequestHeldUntilDecisionDurable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome error
		begin   bool // the sink is a Beginner
	}{{"decision durable", nil, false}, {"decision failed", errors.New("fsync: input/output error"), false},
		{"decision durable/Begin", nil, true}, {"decision failed/Begin", errors.New("fsync: input/output error"), true}} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newHeldSink()
			app := newSecretApp(t)
			var s EventSink = sink
			if tc.begin {
				s = heldBeginner{sink}
			}
			p := newProxyFor(t, app.srv.URL, s)
			srv := httptest.NewServer(p)
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(sink.release) }) // first: a failed test leaves no Append blocked

			got, firstByte := rawExchange(t, srv.URL, "GET", "/api/dossiers/D-9")
			waitFor(t, sink.started, "the decision append")
			// The overlap: the application has the request while its
			// decision is not yet durable.
			waitFor(t, app.arrived, "the request at the application")
			select {
			case <-firstByte:
				t.Fatal("a byte of the response reached the client before the decision was durable")
			case <-time.After(300 * time.Millisecond):
			}
			sink.release <- tc.outcome
			resp := waitFor(t, got, "the response")
			status := strings.SplitN(resp, "\r\n", 2)[0]
			if tc.outcome == nil {
				if !strings.HasPrefix(status, "HTTP/1.1 103") || !strings.Contains(resp, "HTTP/1.1 200") || !strings.Contains(resp, `{"secret"`) {
					t.Errorf("durable decision: got %q; want the hint and the application's response", resp)
				}
				return
			}
			if status != "HTTP/1.1 503 Service Unavailable" {
				t.Errorf("status line %q; want 503", status)
			}
			if strings.Contains(resp, appSecret) || strings.Contains(resp, "HTTP/1.1 103") {
				t.Errorf("the application's response leaked to the client of an unrecorded request:\n%s", resp)
			}
			if !strings.Contains(resp, ProblemAuditUnavailable) || !strings.Contains(resp, "nothing of the application's response was sent") {
				t.Errorf("got %q; want the audit-unavailable problem", resp)
			}
			p.Wait()
			for _, ev := range sink.all() {
				if ev.Status != 0 {
					t.Errorf("a completion (status %d) was recorded for a request whose decision failed", ev.Status)
				}
			}
		})
	}
}

// TestUnsafeRequestNotForwardedBeforeDecisionDurable: a PUT reaches the
// application only once its decision event is durable, and never when it
// failed.
func TestUnsafeRequestNotForwardedBeforeDecisionDurable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome error
	}{{"decision durable", nil}, {"decision failed", errors.New("fsync: input/output error")}} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newHeldSink()
			app := newSecretApp(t)
			p := newProxyFor(t, app.srv.URL, sink)
			srv := httptest.NewServer(p)
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(sink.release) }) // first: a failed test leaves no Append blocked

			got, _ := rawExchange(t, srv.URL, "PUT", "/api/dossiers/D-9/plan")
			waitFor(t, sink.started, "the decision append")
			select {
			case <-app.arrived:
				t.Fatal("the PUT reached the application before its decision was durable")
			case <-time.After(300 * time.Millisecond):
			}
			sink.release <- tc.outcome
			resp := waitFor(t, got, "the response")
			if tc.outcome == nil {
				waitFor(t, app.arrived, "the request at the application")
				if !strings.Contains(resp, "HTTP/1.1 201") {
					t.Errorf("got %q; want the application's 201", resp)
				}
				return
			}
			if n := app.calls.Load(); n != 0 || !strings.HasPrefix(resp, "HTTP/1.1 503") || strings.Contains(resp, appSecret) {
				t.Errorf("decision failed: the application saw %d requests, the client got %q; want none and 503", n, resp)
			}
		})
	}
}

// TestHeldResponseUnderLoad runs concurrent safe requests whose decisions
// fail or succeed by their trace id (run it with -race): a client whose
// decision failed gets 503 and never a byte of the application's response;
// one whose decision is durable gets the response.
func TestHeldResponseUnderLoad(t *testing.T) {
	app := newSecretApp(t)
	sink := &coinSink{}
	p := newProxyFor(t, app.srv.URL, sink)
	go func() {
		for range app.arrived { // drain
		}
	}()
	srv := httptest.NewServer(p)
	defer srv.Close()
	client := srv.Client()
	var next atomic.Int64
	done := make(chan error, 8)
	for range 8 {
		go func() {
			for range 25 {
				k := next.Add(1)
				req, _ := http.NewRequest("GET", srv.URL+"/api/dossiers/D-9", nil)
				req.Header.Set(DefaultUserHeader, "an@example.nl")
				req.Header.Set(DefaultGroupsHeader, "coaches")
				req.Header.Set(TraceparentHeader, fmt.Sprintf("00-%032x-00f067aa0ba902b7-01", k))
				resp, err := client.Do(req)
				if err != nil {
					done <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				leaked := resp.Header.Get("X-App-Secret") != "" || resp.Header.Get("Link") != "" || strings.Contains(string(body), appSecret)
				if fails := k%2 == 0; fails && (resp.StatusCode != http.StatusServiceUnavailable || leaked) || !fails && (resp.StatusCode != http.StatusOK || !leaked) {
					done <- fmt.Errorf("request %d (decision fails: %v): status %d, headers %v, body %q", k, fails, resp.StatusCode, resp.Header, body)
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	p.Wait()
	close(app.arrived)
	if sink.failed.Load() != 100 || sink.ok.Load() != 100 {
		t.Fatalf("decisions failed %d, succeeded %d; want 100 each", sink.failed.Load(), sink.ok.Load())
	}
}

// coinSink fails, after a short wait, the decision of every request whose
// trace id is even, without stopping.
type coinSink struct {
	memorySink
	ok, failed atomic.Int64
}

func (s *coinSink) Append(ctx context.Context, ev auditlog.Event) error {
	if ev.Outcome == auditlog.OutcomeAllowed && ev.Status == 0 {
		last := ev.TraceID[len(ev.TraceID)-1]
		time.Sleep(time.Duration(last%3) * time.Millisecond)
		if strings.IndexByte("02468ace", last) >= 0 {
			s.failed.Add(1)
			return errors.New("fsync: input/output error")
		}
		s.ok.Add(1)
	}
	return s.memorySink.Append(ctx, ev)
}

// newProxyFor is a proxy in front of the application at appURL with the
// integration policy and sink as its audit log.
func newProxyFor(t *testing.T, appURL string, sink EventSink) *Proxy {
	t.Helper()
	keys := newTestKeys(t)
	p, _ := newTestProxy(t, &upstreamApp{srv: &httptest.Server{URL: appURL}}, sink, keys, false)
	return p
}

// TestOverlapsDurability: only safe methods on read routes overlap.
func TestOverlapsDurability(t *testing.T) {
	for _, tc := range []struct {
		method, action string
		want           bool
	}{
		{"GET", "read", true}, {"HEAD", "read", true}, {"OPTIONS", "read", true},
		{"GET", "write", false}, {"GET", "export", false},
		{"POST", "read", false}, {"PUT", "write", false}, {"DELETE", "write", false}, {"PATCH", "write", false},
		{"TRACE", "read", false}, {"CONNECT", "read", false}, {"get", "read", false},
	} {
		if got := OverlapsDurability(tc.method, v1alpha1.Action(tc.action)); got != tc.want {
			t.Errorf("OverlapsDurability(%s, %s) = %v, want %v", tc.method, tc.action, got, tc.want)
		}
	}
}

// TestCompletionAppendedAfterLastByte: a background completion is appended
// only once the response has been passed on, so that encoding and queueing
// it takes nothing from the response; its status and duration are still
// those of the moment the response headers arrived.
func TestCompletionAppendedAfterLastByte(t *testing.T) {
	sink := &memorySink{}
	finish := make(chan struct{})
	const hold = 300 * time.Millisecond
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"part":"one",`)
		_ = http.NewResponseController(w).Flush()
		<-finish
		_, _ = io.WriteString(w, `"end":true}`)
	}))
	defer app.Close()
	var once sync.Once
	release := func() { once.Do(func() { close(finish) }) }
	defer release() // before app.Close, which waits for the handler
	p := newProxyFor(t, app.URL, sink)
	srv := httptest.NewServer(p)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/api/dossiers/D-9", nil)
	req.Header.Set(DefaultUserHeader, "an@example.nl")
	req.Header.Set(DefaultGroupsHeader, "coaches")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	first := make([]byte, len(`{"part":"one",`))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	completions := func() []auditlog.Event {
		var c []auditlog.Event
		for _, ev := range sink.all() {
			if ev.Status != 0 {
				c = append(c, ev)
			}
		}
		return c
	}
	// The headers and the first part are through; the last byte is not.
	for deadline := time.Now().Add(hold); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c := completions(); len(c) > 0 {
			t.Fatalf("the completion (status %d) was appended before the last byte of the response", c[0].Status)
		}
	}
	release()
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != `"end":true}` {
		t.Fatalf("rest of the body %q (%v)", rest, err)
	}
	p.Wait()
	c := completions()
	if len(c) != 1 || c[0].Status != http.StatusOK {
		t.Fatalf("completions %+v; want one with status 200", c)
	}
	if c[0].Duration >= hold {
		t.Errorf("completion duration %s; want the time until the response headers arrived (less than the %s the body was held)", c[0].Duration, hold)
	}
}

// beginSink records whether an event was handed to it with Begin or Append.
type beginSink struct {
	memorySink
	began, appended atomic.Int32
}

func (s *beginSink) Begin(ctx context.Context, ev auditlog.Event) func() error {
	s.began.Add(1)
	err := s.memorySink.Append(ctx, ev)
	return func() error { return err }
}

func (s *beginSink) Append(ctx context.Context, ev auditlog.Event) error {
	s.appended.Add(1)
	return s.memorySink.Append(ctx, ev)
}

// TestRecorderBeginsOnBeginner: a decision started on a sink that can
// queue without waiting (auditlog.Writer.Begin) is handed to it before
// Recorder.Begin returns, with no goroutine of the proxy in between, also
// through the proxy's metrics; the wait then gives the outcome, as often as
// asked.
func TestRecorderBeginsOnBeginner(t *testing.T) {
	sink := &beginSink{}
	for name, s := range map[string]EventSink{"sink": sink, "metered": NewAuditMetrics("auditproxy", nil).Metered(sink)} {
		sink.began.Store(0)
		r := NewRecorder(s, false, nil, &sync.WaitGroup{})
		pending := r.Begin(context.Background(), auditlog.Event{Actor: "an@example.nl"})
		if sink.began.Load() != 1 || sink.appended.Load() != 0 {
			t.Fatalf("%s: after Begin the sink had %d Begin and %d Append calls; want the event handed to Begin at once", name, sink.began.Load(), sink.appended.Load())
		}
		if err := pending.Wait(); err != nil || pending.Wait() != nil {
			t.Errorf("%s: wait: %v", name, err)
		}
	}
}

// TestResponseFlushedBeforeCompletion: the proxy flushes the response it
// passed on before it appends the background completion, so that the last
// bytes do not wait in the server's buffer while the completion is
// encoded and queued (a response with a Content-Length is otherwise
// flushed only after the handler returns).
func TestResponseFlushedBeforeCompletion(t *testing.T) {
	sink := &memorySink{}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "11")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer app.Close()
	p := newProxyFor(t, app.URL, sink)
	req := httptest.NewRequest("GET", "/api/dossiers/D-9", nil)
	req.RemoteAddr = "127.0.0.1:40000" // the trusted proxy in front
	req.Header.Set(DefaultUserHeader, "an@example.nl")
	req.Header.Set(DefaultGroupsHeader, "coaches")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	p.Wait()
	if rec.Code != http.StatusOK || rec.Body.String() != `{"ok":true}` {
		t.Fatalf("got %d %q; want the application's response", rec.Code, rec.Body)
	}
	if !rec.Flushed {
		t.Error("the response was not flushed before the completion was appended")
	}
	if n := len(sink.all()); n != 2 {
		t.Errorf("%d events; want the decision and the completion", n)
	}
}

// TestBackgroundCompletionsTakeNoGoroutine: the sidecar's sink, the flood
// guard over the Writer behind the proxy's metrics, takes a safe
// request's decision with Begin and each background completion with Queue,
// so that the completions waiting for their deferred commit hold no
// goroutine each (before, one goroutine per completion waited); each is
// still reported once it is durable, and Wait returns then.
func TestBackgroundCompletionsTakeNoGoroutine(t *testing.T) {
	const completions = 200
	keys := newTestKeys(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: keys.signing, MaxDeferral: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	guard := auditlog.NewFloodGuard(w, auditlog.FloodOptions{})
	sink := NewAuditMetrics("auditproxy", nil).Metered(guard)
	if _, ok := sink.(Beginner); !ok {
		t.Error("the sidecar's sink is no Beginner: a safe request's decision takes a goroutine")
	}
	if _, ok := sink.(Queuer); !ok {
		t.Error("the sidecar's sink is no Queuer: every completion takes a goroutine")
	}
	var inflight sync.WaitGroup
	r := NewRecorder(sink, false, nil, &inflight)
	before := runtime.NumGoroutine()
	for i := range completions {
		ev := auditlog.Event{Time: time.Now(), OperationID: fmt.Sprintf("%016x", i+1), TraceID: fmt.Sprintf("%032x", i+1),
			ProcessingActivityID: "https://register.voorbeeldstad.nl/verwerkingen/wijkteam-ondersteuning", Actor: "an@example.nl",
			Roles: []string{"coaches"}, Action: auditlog.ActionRead, Categories: []string{"identity"}, Outcome: auditlog.OutcomeAllowed,
			Method: http.MethodGet, Route: "/api/dossiers/{id}"}
		if err := r.Complete(&Completion{Event: ev, Start: time.Now()}, http.StatusOK); err != nil {
			t.Fatal(err)
		}
	}
	if grown := runtime.NumGoroutine() - before; grown > completions/10 {
		t.Errorf("%d goroutines more while %d completions wait for their commit; want none per completion", grown, completions)
	}
	if err := guard.Close(); err != nil { // commits the deferred completions
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the completions were never reported")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), `"http_status":200`); n != completions {
		t.Errorf("%d completions in the log; want %d", n, completions)
	}
}
