package logbook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// shipHelperEnv makes the test binary run a shipping writer as a
// subprocess (see TestKilledProxyLosesNothingAcknowledged).
const shipHelperEnv = "DOSSIERGUARD_SHIP_HELPER"

func TestMain(m *testing.M) {
	if v := os.Getenv(shipHelperEnv); v != "" {
		os.Exit(shipHelperMain(v))
	}
	os.Exit(m.Run())
}

type shipHelperConfig struct {
	Path, URL   string
	Senders     int
	Preallocate int64
}

// shipHelperMain appends events from several goroutines to a writer that
// ships to the logbook, and prints "ack <operation id>" for every Append
// that returned nil, until it is killed.
func shipHelperMain(v string) int {
	var hc shipHelperConfig
	if err := json.Unmarshal([]byte(v), &hc); err != nil {
		return 2
	}
	opts := shipOptions(hc.Path, hc.URL)
	opts.Preallocate = hc.Preallocate
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range hc.Senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if err := w.Append(context.Background(), testEvent(i, i%3)); err != nil {
					continue
				}
				mu.Lock()
				_, _ = fmt.Fprintf(out, "ack %d\n", i)
				_ = out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

func shipOptions(path, url string) auditlog.Options {
	return auditlog.Options{
		Path: path, SigningKey: signingKey, CheckpointEvery: 50, CheckpointInterval: 100 * time.Millisecond,
		Chain:   &auditlog.Chain{Store: store, Pod: "wijkteam-dossiers-0"},
		Logbook: &auditlog.LogbookOptions{URL: url, AckTimeout: 2 * time.Second},
	}
}

// storedOps are the operation ids of the events stored in the logbook.
func storedOps(t testing.TB, l *Logbook) map[int]bool {
	t.Helper()
	rows, err := l.db.Query(context.Background(), "SELECT line FROM logbook_records WHERE type = 'event'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]bool{}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		rec, err := auditlog.ParseRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseInt(rec.Event.OperationID, 16, 64)
		got[int(n)-1] = true
	}
	return got
}

// verifyOK fails unless every chain of the store verifies.
func verifyOK(t testing.TB, l *Logbook, chains int) []ChainVerdict {
	t.Helper()
	vs, err := VerifyChains(context.Background(), l.db, VerifyFilter{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != chains {
		t.Fatalf("%d chains, want %d", len(vs), chains)
	}
	for _, v := range vs {
		if !v.Result.OK {
			t.Errorf("chain %s: %s", short(v.ChainID), v.Result)
		}
	}
	return vs
}

// TestShipAcknowledged: every Append that returns is in the logbook; Close
// leaves the whole chain there, ending with its final checkpoint.
func TestShipAcknowledged(t *testing.T) {
	l, _ := newLogbook(t)
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()
	w, err := auditlog.NewWriter(shipOptions(filepath.Join(t.TempDir(), "audit.log"), srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[int]bool{}
	for s := range 8 {
		wg.Go(func() {
			for i := s * 100; i < s*100+100; i++ {
				if err := w.Append(context.Background(), testEvent(i, i%3)); err != nil {
					t.Errorf("Append %d: %v", i, err)
					return
				}
				// Acknowledged means stored, now.
				if i%25 == 0 && !storedOps(t, l)[i] {
					t.Errorf("event %d acknowledged but not in the logbook", i)
				}
				mu.Lock()
				acked[i] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stored := storedOps(t, l)
	if len(stored) != 800 || len(acked) != 800 {
		t.Fatalf("%d events stored, %d acknowledged; want 800", len(stored), len(acked))
	}
	vs := verifyOK(t, l, 1)
	if vs[0].Result.Unsigned != 0 || vs[0].Result.Events != 800 {
		t.Errorf("after Close: %s, want every event signed", vs[0].Result)
	}
}

// switchable is a logbook handler that can be down (503, or the connection
// dropped) and up again, as a logbook restart looks to the proxy.
type switchable struct {
	h    http.Handler
	down atomic.Bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	s.h.ServeHTTP(w, r)
}

// ackTimeoutFailsClosed is TestShipFailsClosed's ack timeout.
const ackTimeoutFailsClosed = time.Second

// TestShipFailsClosed: while the logbook is unreachable, Append fails after
// its timeout and, past the spool bound, at once; the lines written locally
// are delivered in order when it is back, and nothing acknowledged is lost.
func TestShipFailsClosed(t *testing.T) {
	l, _ := newLogbook(t)
	sw := &switchable{h: l.Handler(nil, 0)}
	srv := httptest.NewServer(sw)
	defer srv.Close()
	opts := shipOptions(filepath.Join(t.TempDir(), "audit.log"), srv.URL)
	// The timeout must cover one acknowledged shipment while the logbook
	// is up (a commit on the real PostgreSQL, which takes longer than
	// 300 ms when the machine is loaded), and stays short enough that the
	// appends until the spool bound (at most 4 of them) take seconds.
	opts.Logbook.AckTimeout = ackTimeoutFailsClosed
	opts.Logbook.MaxPending = 5
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	ctx := context.Background()
	if err := w.Append(ctx, testEvent(0, 0)); err != nil {
		t.Fatal(err)
	}
	sw.down.Store(true)
	start := time.Now()
	if err := w.Append(ctx, testEvent(1, 0)); err == nil || !strings.Contains(err.Error(), "did not acknowledge") {
		t.Fatalf("Append with the logbook down: %v", err)
	}
	if d := time.Since(start); d < ackTimeoutFailsClosed {
		t.Errorf("Append failed after %s, before its ack timeout", d)
	}
	var full error
	for i := 2; i < 10 && full == nil; i++ {
		if err := w.Append(ctx, testEvent(i, 0)); errors.Is(err, auditlog.ErrSpoolFull) {
			full = err
		}
	}
	if full == nil {
		t.Fatal("the spool bound was never reached")
	}
	// The backlog the proxy exports is what waits for the logbook: at
	// least the bound's worth of lines (a checkpoint line may wait too).
	if n := w.Unshipped(); n < 5 {
		t.Errorf("Unshipped() = %d at the spool bound; want at least 5", n)
	}
	sw.down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for w.Append(ctx, testEvent(100, 0)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Append still fails after the logbook came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !storedOps(t, l)[100] || !storedOps(t, l)[0] {
		t.Fatal("acknowledged events are missing")
	}
	if n := w.Unshipped(); n != 0 {
		t.Errorf("Unshipped() = %d once the logbook acknowledged every line; want 0", n)
	}
	verifyOK(t, l, 1)
}

// TestQueueReportsTheAcknowledgement: an event queued without a waiter
// (auditlog.Writer.Queue, the proxy's completions) is reported once the
// logbook holds it; while the logbook is down it is reported not confirmed
// after the ack timeout, once, and the line is still delivered when the
// logbook is back, without a second report.
func TestQueueReportsTheAcknowledgement(t *testing.T) {
	l, _ := newLogbook(t)
	sw := &switchable{h: l.Handler(nil, 0)}
	srv := httptest.NewServer(sw)
	defer srv.Close()
	opts := shipOptions(filepath.Join(t.TempDir(), "audit.log"), srv.URL)
	opts.Logbook.AckTimeout = ackTimeoutFailsClosed
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	var calls atomic.Int32
	outcomes := make(chan error, 4)
	done := func(err error) { calls.Add(1); outcomes <- err }
	next := func() error {
		t.Helper()
		select {
		case err := <-outcomes:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Queue never reported an outcome")
			return nil
		}
	}

	w.Queue(context.Background(), testEvent(0, 0), done)
	if err := next(); err != nil {
		t.Fatalf("Queue with the logbook up: %v", err)
	}
	if !storedOps(t, l)[0] {
		t.Fatal("Queue reported the event before the logbook held it")
	}

	sw.down.Store(true)
	start := time.Now()
	w.Queue(context.Background(), testEvent(1, 0), done)
	if err := next(); err == nil || !strings.Contains(err.Error(), "did not acknowledge") {
		t.Fatalf("Queue with the logbook down: %v; want not acknowledged", err)
	}
	if d := time.Since(start); d < ackTimeoutFailsClosed {
		t.Errorf("Queue reported the timeout after %s, before its ack timeout", d)
	}
	sw.down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for w.Append(context.Background(), testEvent(2, 0)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Append still fails after the logbook came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !storedOps(t, l)[1] {
		t.Error("the event queued while the logbook was down was not delivered when it came back")
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("done was called %d times for 2 events; want once each", n)
	}
}

// TestShipRefusedChainStops: when the logbook refuses a line (here a
// checkpoint signed with a key it does not hold), the writer stops: every
// later Append fails, so the proxy answers 503.
func TestShipRefusedChainStops(t *testing.T) {
	pool, _ := newSchema(t)
	l, err := New(context.Background(), pool, Config{}) // no keys
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()
	opts := shipOptions(filepath.Join(t.TempDir(), "audit.log"), srv.URL)
	opts.CheckpointEvery = 2
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for i := range 5 {
		last = w.Append(context.Background(), testEvent(i, 0))
	}
	if last == nil || !strings.Contains(last.Error(), "refused") || w.Err() == nil {
		t.Fatalf("Append after a refusal: %v (Err %v)", last, w.Err())
	}
	_ = w.Close()
}

// TestLogbookRestartLosesNothingAcknowledged restarts the logbook (its
// server goes away and comes back on the same address) while 8 senders
// append, and checks that every acknowledged event is stored and the chain
// is contiguous.
func TestLogbookRestartLosesNothingAcknowledged(t *testing.T) {
	l, _ := newLogbook(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) *http.Server {
		s := &http.Server{Handler: l.Handler(nil, 0)}
		go func() { _ = s.Serve(ln) }()
		return s
	}
	srv := serve(ln)
	opts := shipOptions(filepath.Join(t.TempDir(), "audit.log"), "http://"+addr)
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	load := startSenders(w, 8)
	time.Sleep(300 * time.Millisecond)
	_ = srv.Close() // the logbook goes away mid-stream
	time.Sleep(500 * time.Millisecond)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv = serve(ln)
	defer func() { _ = srv.Close() }()
	time.Sleep(300 * time.Millisecond)
	load.stopAndCheck(t, w, l, "during the logbook's restart")
}

// senders append events to a shipping writer from several goroutines and
// count what was acknowledged.
type senders struct {
	acked          sync.Map
	served, failed atomic.Int64
	stop           chan struct{}
	wg             sync.WaitGroup
}

func startSenders(w *auditlog.Writer, n int) *senders {
	s := &senders{stop: make(chan struct{})}
	var next atomic.Int64
	for range n {
		s.wg.Go(func() {
			for {
				select {
				case <-s.stop:
					return
				default:
				}
				i := int(next.Add(1))
				if err := w.Append(context.Background(), testEvent(i, i%3)); err != nil {
					s.failed.Add(1)
					continue
				}
				s.acked.Store(i, true)
				s.served.Add(1)
			}
		})
	}
	return s
}

// stopAndCheck stops the senders, closes the writer, and fails unless every
// acknowledged event is in the logbook and the chain verifies.
func (s *senders) stopAndCheck(t *testing.T, w *auditlog.Writer, l *Logbook, during string) {
	t.Helper()
	close(s.stop)
	s.wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stored := storedOps(t, l)
	lost := 0
	s.acked.Range(func(k, _ any) bool {
		if !stored[k.(int)] {
			lost++
		}
		return true
	})
	t.Logf("served %d, refused %d %s, stored %d", s.served.Load(), s.failed.Load(), during, len(stored))
	if lost > 0 || s.served.Load() == 0 {
		t.Fatalf("%d of %d acknowledged events are not in the logbook", lost, s.served.Load())
	}
	verifyOK(t, l, 1)
}

// TestDatabaseConnectionsKilledLosesNothingAcknowledged terminates the
// logbook's database connections (as a PostgreSQL restart does) while 8
// senders append.
func TestDatabaseConnectionsKilledLosesNothingAcknowledged(t *testing.T) {
	l, pool := newLogbook(t)
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()
	admin := testenv.PostgresSchemaPool(t, "public")
	w, err := auditlog.NewWriter(shipOptions(filepath.Join(t.TempDir(), "audit.log"), srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	load := startSenders(w, 8)
	var schema string
	if err := pool.QueryRow(context.Background(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	var killed int
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		var n int
		// Every connection of the logbook's pool.
		err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1`, "test-"+schema).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		killed += n
	}
	time.Sleep(300 * time.Millisecond)
	if killed == 0 {
		t.Fatal("no connection of the logbook was terminated")
	}
	load.stopAndCheck(t, w, l, fmt.Sprintf("while %d database connections were terminated", killed))
}

// TestKilledProxyLosesNothingAcknowledged runs a shipping writer in a
// subprocess with 8 senders, kills it with SIGKILL mid-stream, and checks
// that every event it acknowledged is in the logbook and in its file, which
// verifies. A new writer on the same file (the restarted container) then
// delivers the rest, and the chain is contiguous. It runs with the log
// appended and with it preallocated in segments (the proxy's way), where
// the killed writer leaves a zero tail after its last line.
func TestKilledProxyLosesNothingAcknowledged(t *testing.T) {
	for _, prealloc := range []int64{0, auditlog.DefaultPreallocate} {
		t.Run(fmt.Sprintf("preallocate=%d", prealloc), func(t *testing.T) { killProxy(t, prealloc) })
	}
}

func killProxy(t *testing.T, prealloc int64) {
	l, _ := newLogbook(t)
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "audit.log")
	hc, _ := json.Marshal(shipHelperConfig{Path: path, URL: srv.URL, Senders: 8, Preallocate: prealloc})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), shipHelperEnv+"="+string(hc))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var i int
		if _, err := fmt.Sscanf(sc.Text(), "ack %d", &i); err == nil {
			acked[i] = true
		}
		if len(acked) == 2000 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	for sc.Scan() { // acknowledgements printed before the kill landed
		var i int
		if _, err := fmt.Sscanf(sc.Text(), "ack %d", &i); err == nil {
			acked[i] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 2000 {
		t.Fatalf("the helper acknowledged only %d events", len(acked))
	}
	stored := storedOps(t, l)
	lost := 0
	for i := range acked {
		if !stored[i] {
			lost++
		}
	}
	t.Logf("acknowledged %d before SIGKILL, stored %d", len(acked), len(stored))
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged events are not in the logbook", lost, len(acked))
	}
	checkKilledFile(t, path, acked, prealloc > 0)
	// The restarted proxy continues the file and delivers what was written
	// but not acknowledged.
	opts := shipOptions(path, srv.URL)
	opts.Preallocate = prealloc
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		t.Fatalf("restart on the killed proxy's log: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	vs := verifyOK(t, l, 1)
	if vs[0].Result.Unsigned != 0 || vs[0].Result.Events < len(acked) {
		t.Errorf("after the restart: %s", vs[0].Result)
	}
}

// checkKilledFile checks the file a killed writer left: it verifies (with
// its unsigned tail) and holds every acknowledged event; preallocated, it
// ends with zeros after its last line.
func checkKilledFile(t *testing.T, path string, acked map[int]bool, zeroTail bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(data) > 0 && data[len(data)-1] == 0; got != zeroTail {
		t.Errorf("the killed writer's file ends with a zero byte: %v; want %v", got, zeroTail)
	}
	res, err := auditlog.VerifyWithOptions(bytes.NewReader(data), auditlog.VerifyOptions{
		PublicKeys: []ed25519.PublicKey{signingKey.Public().(ed25519.PublicKey)}, AllowUnsignedTail: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Events < len(acked) {
		t.Errorf("the killed writer's file: %s; want OK with at least the %d acknowledged events", res, len(acked))
	}
	inFile := 0
	err = auditlog.ReadEvents(bytes.NewReader(data), func(rec *auditlog.Record) error {
		if n, err := strconv.ParseInt(rec.Event.OperationID, 16, 64); err == nil && acked[int(n)-1] {
			inFile++
		}
		return nil
	})
	if err != nil || inFile != len(acked) {
		t.Errorf("ReadEvents on the killed writer's file: %d of %d acknowledged events (%v)", inFile, len(acked), err)
	}
}
