package httpserve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder notes the order of what Serve does to a role.
type recorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *recorder) note(step string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, step)
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.steps, ",")
}

// testRole answers /slow only when release is closed (or the request's
// context ends), everything else at once; it counts requests in flight as
// a role does.
type testRole struct {
	rec      *recorder
	release  chan struct{}
	started  chan struct{}
	stopping atomic.Bool
	inflight sync.WaitGroup
}

func newTestRole(rec *recorder) *testRole {
	return &testRole{rec: rec, release: make(chan struct{}), started: make(chan struct{}, 8)}
}

func (t *testRole) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.inflight.Add(1)
	defer t.inflight.Done()
	if r.URL.Path == "/slow" {
		t.started <- struct{}{}
		select {
		case <-t.release:
		case <-r.Context().Done():
			t.rec.note("request-cancelled")
			return
		}
		t.rec.note("request-done")
	}
	_, _ = io.WriteString(w, "served")
}

func (t *testRole) HealthHandler() http.Handler {
	return HealthMux(func() error {
		if t.stopping.Load() {
			return errors.New("shutting down")
		}
		return nil
	})
}

func (t *testRole) BeginShutdown() { t.stopping.Store(true); t.rec.note("begin-shutdown") }
func (t *testRole) Wait()          { t.inflight.Wait(); t.rec.note("wait") }

// closer is an audit log that notes when it is closed.
type closer struct {
	rec *recorder
	err error
}

func (c closer) Close() error { c.rec.note("audit-log-closed"); return c.err }

func loopback(t *testing.T) Listeners {
	t.Helper()
	l, err := Listen("127.0.0.1:0", "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServeShutsDownInOrder: on shutdown readiness fails first while the
// probes still answer, the request in flight finishes and gets its answer,
// and only after the role's Wait are the background work stopped and the
// audit log closed.
func TestServeShutsDownInOrder(t *testing.T) {
	rec := &recorder{}
	role := newTestRole(rec)
	l := loopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, role, Options{ShutdownTimeout: 5 * time.Second, AuditLog: closer{rec: rec},
			CloseHijacked: func() { rec.note("close-hijacked") }, Stop: func() { rec.note("stop") }})
	}()
	base, health := "http://"+l.Serve.Addr().String(), "http://"+l.Health.Addr().String()
	if code, body := get(t, health+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("readyz while serving: %d %q", code, body)
	}
	answered := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		answered <- string(body)
	}()
	<-role.started
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get(t, health+"/readyz")
		if code == http.StatusServiceUnavailable && body == "not ready: shutting down\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness did not fail on shutdown: %d %q", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := get(t, health+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz during shutdown: %d", code)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(role.release)
	if got := <-answered; got != "served" {
		t.Errorf("the request in flight got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := rec.all(), "begin-shutdown,request-done,close-hijacked,wait,stop,audit-log-closed"; got != want {
		t.Errorf("steps %s; want %s", got, want)
	}
	if _, err := http.Get(health + "/healthz"); err == nil {
		t.Error("the health server still answers after Serve returned")
	}
}

// TestServeClosesWhatOutlivesTheTimeout: a request still running at the
// shutdown timeout has its connection closed, and the audit log is still
// closed after it ended.
func TestServeClosesWhatOutlivesTheTimeout(t *testing.T) {
	rec := &recorder{}
	role := newTestRole(rec)
	l := loopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, role, Options{ShutdownTimeout: 100 * time.Millisecond, AuditLog: closer{rec: rec}})
	}()
	failed := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + l.Serve.Addr().String() + "/slow")
		if err == nil {
			_ = resp.Body.Close()
		}
		failed <- err
	}()
	<-role.started
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %s with a 100ms timeout", took)
	}
	if err := <-failed; err == nil {
		t.Error("the request that outlived the timeout got an answer")
	}
	if got, want := rec.all(), "begin-shutdown,request-cancelled,wait,audit-log-closed"; got != want {
		t.Errorf("steps %s; want %s", got, want)
	}
}

// TestServeReportsFailures: a server that cannot serve and an audit log
// that cannot be closed are both in Serve's error, and the log is closed
// all the same.
func TestServeReportsFailures(t *testing.T) {
	cases := []struct {
		name      string
		breakLn   bool
		closeErr  error
		wantParts []string
	}{
		{"listener gone", true, nil, []string{"serve: "}},
		{"audit log does not close", true, errors.New("disk full"), []string{"serve: ", "close the audit log: disk full"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			l := loopback(t)
			if c.breakLn {
				_ = l.Serve.Close()
			}
			err := Serve(context.Background(), l, newTestRole(rec), Options{AuditLog: closer{rec: rec, err: c.closeErr}})
			if err == nil {
				t.Fatal("no error")
			}
			for _, part := range c.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q lacks %q", err, part)
				}
			}
			if !strings.HasSuffix(rec.all(), "audit-log-closed") {
				t.Errorf("steps %s: the audit log was not closed", rec.all())
			}
		})
	}
}

// TestListen: given listeners are used as they are; a missing one is
// opened on its address; when the second cannot be opened the first is
// closed again.
func TestListen(t *testing.T) {
	given, _ := net.Listen("tcp", "127.0.0.1:0")
	defer func() { _ = given.Close() }()
	l, err := Listen("invalid address", "127.0.0.1:0", given, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Serve != given || l.Health == nil {
		t.Fatalf("listeners %v", l)
	}
	l.Close()

	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer func() { _ = busy.Close() }()
	_, err = Listen("127.0.0.1:0", busy.Addr().String(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Fatalf("health address in use: %v", err)
	}
	_, err = Listen("no-such-host.invalid:bad", "127.0.0.1:0", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "listen on no-such-host.invalid:bad") {
		t.Fatalf("bad address: %v", err)
	}
}

// TestHealthMux: /healthz answers while the process runs, /readyz follows
// ready and says why not.
func TestHealthMux(t *testing.T) {
	cases := []struct {
		path  string
		ready error
		code  int
		body  string
	}{
		{"/healthz", nil, http.StatusOK, "ok\n"},
		{"/healthz", errors.New("no policy"), http.StatusOK, "ok\n"},
		{"/readyz", nil, http.StatusOK, "ok\n"},
		{"/readyz", errors.New("no egress policy is loaded yet"), http.StatusServiceUnavailable, "not ready: no egress policy is loaded yet\n"},
		{"/metrics", nil, http.StatusNotFound, "404 page not found\n"},
	}
	for _, c := range cases {
		rr := httptest.NewRecorder()
		HealthMux(func() error { return c.ready }).ServeHTTP(rr, httptest.NewRequest("GET", c.path, nil))
		if rr.Code != c.code || rr.Body.String() != c.body {
			t.Errorf("%s (ready %v): %d %q; want %d %q", c.path, c.ready, rr.Code, rr.Body.String(), c.code, c.body)
		}
	}
}
