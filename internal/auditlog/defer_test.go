package auditlog

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// appendAsync appends ev from a goroutine and returns its outcome channel.
func appendAsync(ctx context.Context, w *Writer, ev Event) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.Append(ctx, ev) }()
	return done
}

// TestDeferredCommitRidesTheNextAppend: a deferred event is not committed
// on its own; the next Append without the mark writes both with one fsync,
// in the order they came.
func TestDeferredCommitRidesTheNextAppend(t *testing.T) {
	opts := testOptions(t)
	opts.MaxDeferral = time.Hour
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &countingFile{logFile: w.file}
	w.file = f
	deferred := appendAsync(WithDeferredCommit(context.Background()), w, testEvent(1))
	select {
	case err := <-deferred:
		t.Fatalf("the deferred Append returned (%v) before any commit was asked for", err)
	case <-time.After(100 * time.Millisecond):
	}
	if n := f.syncs.Load(); n != 0 {
		t.Fatalf("%d fsyncs for a deferred event alone; want none before another Append", n)
	}
	if err := w.Append(context.Background(), testEvent(2)); err != nil {
		t.Fatal(err)
	}
	if err := <-deferred; err != nil {
		t.Fatalf("deferred Append: %v", err)
	}
	if n := f.syncs.Load(); n != 1 {
		t.Errorf("%d fsyncs for a deferred event and the next; want 1 (one commit)", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 2 {
		t.Fatalf("got %s; want both events", res)
	}
	lines := splitLines(data)
	if !bytesContains(lines[0], testEvent(1).OperationID) || !bytesContains(lines[1], testEvent(2).OperationID) {
		t.Errorf("the deferred event is not first:\n%s%s", lines[0], lines[1])
	}
}

// TestDeferredCommitWithinMaxDeferral: a deferred event that nothing
// follows is committed on its own after MaxDeferral.
func TestDeferredCommitWithinMaxDeferral(t *testing.T) {
	opts := testOptions(t)
	opts.MaxDeferral = 30 * time.Millisecond
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	start := time.Now()
	if err := w.Append(WithDeferredCommit(context.Background()), testEvent(1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < opts.MaxDeferral {
		t.Errorf("committed after %s; a deferred event alone waits MaxDeferral (%s)", d, opts.MaxDeferral)
	}
	data, _ := os.ReadFile(opts.Path)
	if n := len(splitLines(data)); n != 1 {
		t.Errorf("%d lines on disk once Append returned; want the event", n)
	}
}

// TestCloseCommitsDeferredEvents: Close writes the deferred events still
// held, before its final checkpoint.
func TestCloseCommitsDeferredEvents(t *testing.T) {
	opts := testOptions(t)
	opts.MaxDeferral = time.Hour
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithDeferredCommit(context.Background())
	first, second := appendAsync(ctx, w, testEvent(1)), appendAsync(ctx, w, testEvent(2))
	time.Sleep(50 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, done := range []<-chan error{first, second} {
		if err := <-done; err != nil {
			t.Errorf("deferred Append: %v", err)
		}
	}
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 2 || res.LastCheckpointSeq != 3 {
		t.Errorf("got %s; want both events and the final checkpoint at seq 3", res)
	}
}

// TestNewWriterRefusesNegativeDeferral names the option and the rule.
func TestNewWriterRefusesNegativeDeferral(t *testing.T) {
	opts := testOptions(t)
	opts.MaxDeferral = -time.Millisecond
	if _, err := NewWriter(opts); err == nil || !bytesContains([]byte(err.Error()), "deferral") {
		t.Errorf("NewWriter: %v; want a refusal naming the deferral", err)
	}
}

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestObserveCommit: every durable write of the file is reported with the
// events it held, its bytes and the duration of its fsync.
func TestObserveCommit(t *testing.T) {
	opts := testOptions(t)
	var commits []Commit
	opts.ObserveCommit = func(c Commit) { commits = append(commits, c) } // the committer alone calls it
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Append(context.Background(), testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(commits) != 4 { // three commits and the final checkpoint
		t.Fatalf("%d commits observed; want 4", len(commits))
	}
	events, written := 0, 0
	for _, c := range commits {
		if c.Sync <= 0 || c.Bytes <= 0 {
			t.Errorf("a commit observed as %+v; want its fsync's duration and its bytes", c)
		}
		events += c.Events
		written += c.Bytes
	}
	if events != 3 || commits[3].Events != 0 {
		t.Errorf("commits %+v; want one event in each of the first three and none in the final checkpoint's", commits)
	}
	fi, err := os.Stat(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(written) {
		t.Errorf("the file holds %d bytes; the commits reported %d", fi.Size(), written)
	}
}
