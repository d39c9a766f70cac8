package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRoundTrip writes events, closes the writer and verifies the file: the
// chain, the checkpoints every 5 events and at Close, the members of an
// event line, and that the mirror got the same bytes.
func TestRoundTrip(t *testing.T) {
	opts := testOptions(t)
	var mirror bytes.Buffer
	opts.Mirror = &mirror
	writeEvents(t, opts, 0, 12)

	data, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, mirror.Bytes()) {
		t.Error("the mirror did not get the same bytes as the file")
	}
	res := mustVerify(t, data)
	if !res.OK || res.Events != 12 || res.Checkpoints != 3 || res.LastCheckpointSeq != 15 || res.LastSeq != 15 {
		t.Fatalf("got %+v; want OK with 12 events and checkpoints at 6, 12, 15", res)
	}
	if !res.LastCheckpointTime.Equal(opts.Now()) {
		t.Errorf("last checkpoint time %v, want %v", res.LastCheckpointTime, opts.Now())
	}
	lines := splitLines(data)
	for i, want := range []string{"event", "event", "event", "event", "event", "checkpoint"} {
		if !bytes.Contains(lines[i], []byte(`"type":"`+want+`"`)) {
			t.Errorf("seq %d is not a %s: %s", i+1, want, lines[i])
		}
	}

	var got map[string]any
	if err := json.Unmarshal(lines[4], &got); err != nil {
		t.Fatal(err)
	}
	ev := testEvent(4)
	want := map[string]any{
		"v": 1.0, "type": "event", "seq": 5.0, "prev": hashOf(lines[3]),
		"time": "2026-09-01T08:30:00.000000004Z", "duration_ns": 1.5e6,
		"trace_id": ev.TraceID, "operation_id": ev.OperationID,
		"processing_activity_id": ev.ProcessingActivityID, "data_subject_id": ev.DataSubject,
		"actor": "coach-0042", "roles": []any{"wijkcoach"}, "action": "read",
		"categories": []any{"identity", "contact", "request"}, "outcome": "denied",
		"http_method": "GET", "route": "read-dossier", "http_status": 403.0, "break_glass": false,
		"hash": hashOf(lines[4]),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("event line members:\n got %v\nwant %v", got, want)
	}
}

// TestLineIsEncodingJSON holds the canonical form of docs/audit-log.md: the
// bytes hashed are encoding/json's encoding of the line struct without the
// hash, and the line is those bytes with the hash member spliced in.
func TestLineIsEncodingJSON(t *testing.T) {
	ev := testEvent(3)
	ev.BreakGlass, ev.BreakGlassReason = true, "Veilig Thuis-melding buiten kantoortijd <spoed> & \"acuut\""
	ev.ParentOperationID = "00000000000000ff"
	body, err := encodeEventBody(&ev, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var prev [64]byte
	copy(prev[:], strings.Repeat("ab", 32))
	line, hash := appendLine(nil, TypeEvent, 42, &prev, body)

	var el eventLine
	if err := decodeStrict(line, &el); err != nil {
		t.Fatal(err)
	}
	if el.Hash != string(hash[:]) {
		t.Fatalf("hash member %s, returned %s", el.Hash, hash)
	}
	el.Hash = ""
	canon, err := json.Marshal(&el)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	if hex.EncodeToString(sum[:]) != string(hash[:]) {
		t.Errorf("hash is not the SHA-256 of the encoding/json form %s", canon)
	}
	wantLine := string(canon[:len(canon)-1]) + `,"hash":"` + string(hash[:]) + "\"}\n"
	if string(line) != wantLine {
		t.Errorf("line\n %s\nwant\n %s", line, wantLine)
	}

	cpBody := checkpointBodyJSON(signingKey, KeyID(publicKey), 43, &hash, time.Now())
	cpLine, cpHash := appendLine(nil, TypeCheckpoint, 43, &hash, cpBody)
	var cl checkpointLine
	if err := decodeStrict(cpLine, &cl); err != nil {
		t.Fatal(err)
	}
	cl.Hash = ""
	canon, _ = json.Marshal(&cl)
	if sum := sha256.Sum256(canon); hex.EncodeToString(sum[:]) != string(cpHash[:]) {
		t.Errorf("checkpoint hash is not the SHA-256 of the encoding/json form %s", canon)
	}
	if err := verifyCheckpoint(&cl, map[string]ed25519.PublicKey{KeyID(publicKey): publicKey}); err != nil {
		t.Errorf("checkpoint signature: %v", err)
	}
}

// TestPseudonymise: HMAC-SHA-256 in hex, stable per key, different across
// keys, empty for no subject, and never the identifier itself.
func TestPseudonymise(t *testing.T) {
	const bsn = "123456782"
	p := Pseudonymise(pseudoKey, bsn)
	mac := hmac.New(sha256.New, pseudoKey)
	mac.Write([]byte(bsn))
	if want := hex.EncodeToString(mac.Sum(nil)); p != want {
		t.Errorf("Pseudonymise = %s, want HMAC-SHA-256 %s", p, want)
	}
	if Pseudonymise(pseudoKey, bsn) != p {
		t.Error("Pseudonymise is not stable")
	}
	if Pseudonymise(bytes.Repeat([]byte{8}, 32), bsn) == p {
		t.Error("two store keys give the same pseudonym")
	}
	if strings.Contains(p, bsn) || !isLowerHex(p, 64) {
		t.Errorf("pseudonym %q is not 64 hex digits free of the identifier", p)
	}
	if Pseudonymise(pseudoKey, "") != "" {
		t.Error("no subject should give no pseudonym")
	}
	if CheckPseudonymKey(make([]byte, 16)) == nil || CheckPseudonymKey(pseudoKey) != nil {
		t.Error("CheckPseudonymKey must refuse keys under 32 bytes and accept 32")
	}
}

// TestAppendRejectsInvalidEvents: invalid events, above all a raw identifier
// as data subject, are refused and not written, and the error does not
// repeat the value.
func TestAppendRejectsInvalidEvents(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	tests := map[string]func(*Event){
		"BSN as data subject":        func(e *Event) { e.DataSubject = "123456782" },
		"no trace id":                func(e *Event) { e.TraceID = "" },
		"zero trace id":              func(e *Event) { e.TraceID = strings.Repeat("0", 32) },
		"upper-case operation id":    func(e *Event) { e.OperationID = "00000000000000AB" },
		"bad parent operation id":    func(e *Event) { e.ParentOperationID = "xyz" },
		"no actor":                   func(e *Event) { e.Actor = " " },
		"unknown action":             func(e *Event) { e.Action = "delete" },
		"unknown outcome":            func(e *Event) { e.Outcome = "maybe" },
		"no method":                  func(e *Event) { e.Method = "" },
		"bad status":                 func(e *Event) { e.Status = 99 },
		"negative duration":          func(e *Event) { e.Duration = -time.Second },
		"break glass without reason": func(e *Event) { e.BreakGlass = true },
		"reason without break glass": func(e *Event) { e.BreakGlassReason = "123456782" },
		"empty category":             func(e *Event) { e.Categories = []string{""} },
		"huge reason":                func(e *Event) { e.BreakGlass, e.BreakGlassReason = true, strings.Repeat("x", 2000) },
		"year 10000":                 func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			ev := testEvent(1)
			mutate(&ev)
			err := w.Append(context.Background(), ev)
			if err == nil {
				t.Fatal("Append accepted the event")
			}
			if strings.Contains(err.Error(), "123456782") {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 0 {
		t.Errorf("got %s; want a log with no events", res)
	}
}

// TestResume: a writer on an existing log continues its seq and prev, after
// a clean Close and after a crash that left no final checkpoint.
func TestResume(t *testing.T) {
	opts := testOptions(t)
	writeEvents(t, opts, 0, 3) // 1-3, checkpoint 4
	writeEvents(t, opts, 3, 6) // 5-9, checkpoint 10, 11, checkpoint 12
	data, _ := os.ReadFile(opts.Path)
	res := mustVerify(t, data)
	if !res.OK || res.Events != 9 || res.LastCheckpointSeq != 12 {
		t.Fatalf("after a restart: got %s; want OK: 9 events, last checkpoint at seq 12", res)
	}

	// A crash: the final checkpoint never got written.
	lines := splitLines(data)
	if err := os.WriteFile(opts.Path, join(lines[:len(lines)-1]), 0o600); err != nil {
		t.Fatal(err)
	}
	writeEvents(t, opts, 9, 1) // 12, checkpoint 13
	data, _ = os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 10 || res.LastCheckpointSeq != 13 {
		t.Fatalf("after a crash: got %s; want OK: 10 events, last checkpoint at seq 13", res)
	}
	if seqs := bytes.Count(data, []byte(`"seq":12,`)); seqs != 1 {
		t.Errorf("seq 12 appears %d times", seqs)
	}
}

// TestResumeRefusesBrokenTail: a writer refuses to append to a log whose
// last line is broken, says why, and leaves the file as it was.
func TestResumeRefusesBrokenTail(t *testing.T) {
	lines := sampleLog(t)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"cut mid-line", append(join(lines[:9]), lines[9][:50]...), "incomplete (no final newline)"},
		{"cut mid-line, zeros after it", append(append(join(lines[:9]), lines[9][:50]...), make([]byte, 4096)...), "incomplete (no final newline)"},
		{"last line edited", append(join(lines[:14]), bytes.Replace(lines[14], []byte(`"time":"2026`), []byte(`"time":"2027`), 1)...), "does not match its hash"},
		{"line before the last deleted", append(join(lines[:13]), lines[14]...), "does not follow the line before it"},
		{"not a log", []byte("hello\n"), "malformed"},
		{"only line is not seq 1", lines[4], "not the first line of a chain"},
		{"forged last checkpoint", func() []byte {
			l := clone(lines)
			i := bytes.Index(l[14], []byte(`"sig":"`)) + len(`"sig":"`)
			copy(l[14][i:], strings.Repeat("0", 128))
			l[14] = rehash(l[14])
			return join(l)
		}(), "signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			if err := os.WriteFile(opts.Path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(opts)
			if err == nil {
				_ = w.Close()
				t.Fatal("NewWriter accepted a log with a broken tail")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "audit.log") {
				t.Errorf("error %q does not name the file and %q", err, tc.want)
			}
			if after, _ := os.ReadFile(opts.Path); !bytes.Equal(after, tc.data) {
				t.Error("the refused file was changed")
			}
		})
	}
}

// TestResumeLongLog: resuming reads only the end of a log bigger than one
// read chunk.
func TestResumeLongLog(t *testing.T) {
	opts := testOptions(t)
	opts.CheckpointEvery = 100
	writeEvents(t, opts, 0, 300) // about 200 KB
	writeEvents(t, opts, 300, 1)
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 301 {
		t.Errorf("got %s; want OK with 301 events", res)
	}
}

// TestWriterLock: a second writer on the same file is refused while the
// first has it open.
func TestWriterLock(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	if w2, err := NewWriter(opts); err == nil {
		_ = w2.Close()
		t.Fatal("a second writer opened the same log")
	} else if !strings.Contains(err.Error(), "in use by another writer") {
		t.Errorf("error %q does not say the log is in use", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeEvents(t, opts, 0, 1) // free again
}

// TestConcurrentAppends: many goroutines appending at once give one valid
// chain holding every event exactly once, committed in groups.
func TestConcurrentAppends(t *testing.T) {
	const goroutines, perGoroutine = 64, 50
	opts := testOptions(t)
	opts.CheckpointEvery = 100
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFile{logFile: w.file}
	w.file = cf
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				if err := w.Append(context.Background(), testEvent(g*perGoroutine+i)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(opts.Path)
	const total = goroutines * perGoroutine
	res := mustVerify(t, data)
	if !res.OK || res.Events != total {
		t.Fatalf("got %s; want OK with %d events", res, total)
	}
	seen := map[string]int{}
	for _, line := range splitLines(data) {
		var l eventLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type == TypeEvent {
			seen[l.OperationID]++
		}
	}
	for i := range total {
		if id := testEvent(i).OperationID; seen[id] != 1 {
			t.Errorf("event %d appears %d times", i, seen[id])
		}
	}
	syncs := cf.syncs.Load()
	t.Logf("%d events in %d fsyncs (%.1f events per fsync)", total, syncs, float64(total)/float64(syncs))
	if syncs >= total {
		t.Errorf("%d fsyncs for %d events: appends were not group-committed", syncs, total)
	}
}

// gatedFile holds the first Sync of the writer's file until release is
// closed, so that a test can queue Appends behind a commit in flight.
type gatedFile struct {
	logFile
	once             sync.Once
	entered, release chan struct{}
}

// newGatedWriter is a preallocated writer whose first sync waits for the
// gate's release.
func newGatedWriter(t *testing.T) (Options, *Writer, *gatedFile) {
	t.Helper()
	opts := testOptions(t)
	opts.Preallocate = minPreallocate
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	gate := &gatedFile{logFile: w.file, entered: make(chan struct{}), release: make(chan struct{})}
	w.file = gate
	return opts, w, gate
}

func (g *gatedFile) Sync() error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.logFile.Sync()
}

// TestGroupCommitTakesEverythingQueued: Appends that arrive while a commit
// is being synced wait for it, and then all go into the next commit: one
// write and one sync, appended or preallocated.
func TestGroupCommitTakesEverythingQueued(t *testing.T) {
	for _, prealloc := range []int64{0, minPreallocate} {
		t.Run(fmt.Sprintf("preallocate=%d", prealloc), func(t *testing.T) {
			const queued = 10
			opts := testOptions(t)
			opts.CheckpointEvery, opts.Preallocate = 100, prealloc
			var commits []Commit
			opts.ObserveCommit = func(c Commit) { commits = append(commits, c) } // the committer alone calls it
			w, err := NewWriter(opts)
			if err != nil {
				t.Fatal(err)
			}
			gate := &gatedFile{logFile: w.file, entered: make(chan struct{}), release: make(chan struct{})}
			w.file = gate
			ctx := context.Background()
			first := appendAsync(ctx, w, testEvent(0))
			<-gate.entered // the first commit is syncing
			var rest []<-chan error
			for i := 1; i <= queued; i++ {
				rest = append(rest, appendAsync(ctx, w, testEvent(i)))
			}
			for deadline := time.Now().Add(10 * time.Second); len(w.reqs) < queued; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("only %d Appends queued behind the commit in flight", len(w.reqs))
				}
			}
			select {
			case err := <-rest[0]:
				t.Fatalf("an Append queued behind the commit in flight returned (%v) before that commit was durable", err)
			default:
			}
			close(gate.release)
			for _, done := range append([]<-chan error{first}, rest...) {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if len(commits) != 3 || commits[0].Events != 1 || commits[1].Events != queued || commits[2].Events != 0 {
				t.Errorf("commits %+v; want the first event alone, the %d queued behind it together, then the final checkpoint", commits, queued)
			}
			data, _ := os.ReadFile(opts.Path)
			if res := mustVerify(t, data); !res.OK || res.Events != queued+1 {
				t.Errorf("got %s; want OK with %d events", res, queued+1)
			}
		})
	}
}

// TestCloseFlushes: Close while appends are in flight writes every event
// whose Append succeeded, then a final checkpoint; later appends fail with
// ErrClosed.
func TestCloseFlushes(t *testing.T) {
	opts := testOptions(t)
	opts.CheckpointEvery = -1
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		recorded []string
		wg       sync.WaitGroup
		started  = make(chan struct{}, 16)
	)
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				ev := testEvent(g*100000 + i)
				err := w.Append(context.Background(), ev)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				recorded = append(recorded, ev.OperationID)
				mu.Unlock()
				if i == 10 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 16 {
		<-started
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := w.Append(context.Background(), testEvent(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	data, _ := os.ReadFile(opts.Path)
	res := mustVerify(t, data)
	if !res.OK {
		t.Fatalf("got %s", res)
	}
	for _, id := range recorded {
		if !bytes.Contains(data, []byte(`"operation_id":"`+id+`"`)) {
			t.Errorf("event %s was reported recorded but is not in the log", id)
		}
	}
	if res.Events < len(recorded) {
		t.Errorf("%d events in the log, %d reported recorded", res.Events, len(recorded))
	}
	t.Logf("%d events recorded before Close", len(recorded))
}

// TestAppendFailsOnClosedFile: when the file can no longer be written,
// Append returns an error, the event is not in the log, and the writer stays
// stopped.
func TestAppendFailsOnClosedFile(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Append(ctx, testEvent(1)); err != nil {
		t.Fatal(err)
	}
	_ = w.file.(*os.File).Close() // the file goes away under the writer
	if err := w.Append(ctx, testEvent(2)); err == nil || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append on a closed file: %v, want an error wrapping os.ErrClosed", err)
	}
	if w.Err() == nil {
		t.Error("Err() is nil after a failed write")
	}
	if err := w.Append(ctx, testEvent(3)); err == nil {
		t.Error("Append succeeded after the writer failed")
	}
	if err := w.Close(); err == nil {
		t.Error("Close reported success after a failed write")
	}
	data, _ := os.ReadFile(opts.Path)
	if bytes.Contains(data, []byte(testEvent(2).OperationID)) || bytes.Contains(data, []byte(testEvent(3).OperationID)) {
		t.Error("an event whose Append failed is in the log")
	}
	res, _ := VerifyWithOptions(bytes.NewReader(data), VerifyOptions{PublicKeys: []ed25519.PublicKey{publicKey}, AllowUnsignedTail: true})
	if !res.OK || res.Events != 1 {
		t.Errorf("got %s; want the one event written before the failure", res)
	}
}

// TestAppendFailsOnWriteError: a write that fails halfway (disk full) fails
// the Append; the torn line is then caught by Verify and by the next writer.
func TestAppendFailsOnWriteError(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	w.file = &countingFile{logFile: w.file, failWrite: syscall.ENOSPC}
	if err := w.Append(context.Background(), testEvent(1)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append: %v, want ENOSPC", err)
	}
	_ = w.Close() // fails: the writer already failed
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); res.OK || res.Reason != ReasonTruncated || res.BrokenSeq != 1 {
		t.Errorf("got %s; want truncated at seq 1", res)
	}
	if _, err := NewWriter(opts); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("NewWriter on the torn log: %v; want a refusal", err)
	}
}

// TestAppendFailsOnSyncError: an event whose fsync fails is not reported
// recorded.
func TestAppendFailsOnSyncError(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	w.file = &countingFile{logFile: w.file, failSync: syscall.EIO}
	if err := w.Append(context.Background(), testEvent(1)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append: %v, want EIO", err)
	}
	if err := w.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Close: %v, want EIO", err)
	}
}

// TestAppendFailsOnMirrorError: when the mirror (stdout) fails the Append
// fails too, so the request is denied rather than missing from the
// collected log.
func TestAppendFailsOnMirrorError(t *testing.T) {
	opts := testOptions(t)
	opts.Mirror = failingWriter{}
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), testEvent(1)); err == nil || !strings.Contains(err.Error(), "mirror") {
		t.Fatalf("Append: %v, want a mirror error", err)
	}
	if w.Err() == nil {
		t.Error("Err() is nil after a mirror failure")
	}
	_ = w.Close() // fails: the writer already failed
}

// TestAppendCancelled: an Append whose context is already done records
// nothing.
func TestAppendCancelled(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Append(ctx, testEvent(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append: %v, want context.Canceled", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 0 {
		t.Errorf("got %s; want no events", res)
	}
}

// TestCheckpointInterval: with a checkpoint interval, an event is signed
// within it, and an idle log gets no further checkpoints.
func TestCheckpointInterval(t *testing.T) {
	opts := testOptions(t)
	opts.CheckpointEvery = -1
	opts.CheckpointInterval = 20 * time.Millisecond
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	if err := w.Append(context.Background(), testEvent(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(opts.Path)
		if bytes.Count(data, []byte{'\n'}) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after the interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // five idle intervals
	data, _ := os.ReadFile(opts.Path)
	if n := bytes.Count(data, []byte{'\n'}); n != 2 {
		t.Errorf("%d lines after idling; want the event and one checkpoint", n)
	}
	if res := mustVerify(t, data); !res.OK || res.LastCheckpointSeq != 2 {
		t.Errorf("got %s; want OK with the checkpoint at seq 2", res)
	}
}

// TestNewWriterOptions: the required options are checked.
func TestNewWriterOptions(t *testing.T) {
	if _, err := NewWriter(Options{SigningKey: signingKey}); err == nil {
		t.Error("NewWriter accepted no path")
	}
	if _, err := NewWriter(Options{Path: filepath.Join(t.TempDir(), "a.log")}); err == nil {
		t.Error("NewWriter accepted no signing key")
	}
	if _, err := NewWriter(Options{Path: filepath.Join(t.TempDir(), "missing", "a.log"), SigningKey: signingKey}); err == nil {
		t.Error("NewWriter accepted a missing directory")
	}
	// A new, empty log that is closed holds its final checkpoint.
	opts := testOptions(t)
	writeEvents(t, opts, 0, 0)
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.LastCheckpointSeq != 1 {
		t.Errorf("got %s; want OK: 0 events, last checkpoint at seq 1", res)
	}
	if fi, err := os.Stat(opts.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// TestBeginReturnsBeforeDurable: Begin queues the event and returns while
// its commit is still syncing; its wait returns only once the commit is
// durable, and an event Begin refuses comes back from the wait.
func TestBeginReturnsBeforeDurable(t *testing.T) {
	opts, w, gate := newGatedWriter(t)
	wait := w.Begin(context.Background(), testEvent(0))
	<-gate.entered // Begin has returned and the commit is syncing
	waited := make(chan error, 1)
	go func() { waited <- wait() }()
	select {
	case err := <-waited:
		t.Fatalf("the wait returned (%v) before the commit was durable", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate.release)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(context.Background(), Event{})(); err == nil {
		t.Error("Begin of an invalid event: the wait returned no error")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 1 {
		t.Errorf("got %s; want OK with 1 event", res)
	}
}
