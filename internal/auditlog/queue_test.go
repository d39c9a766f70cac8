package auditlog

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// queued collects the outcomes Queue reports to one done function.
type queued struct {
	calls atomic.Int32
	out   chan error
}

func newQueued() *queued { return &queued{out: make(chan error, 4)} }

func (q *queued) done(err error) {
	q.calls.Add(1)
	q.out <- err
}

// next is the next outcome, or a failure when none comes.
func (q *queued) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-q.out:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Queue never reported an outcome")
		return nil
	}
}

// TestQueueReportsOnceDurable: Queue returns before the event is durable
// and reports nil once it is, once; the event is in the log.
func TestQueueReportsOnceDurable(t *testing.T) {
	opts, w, gate := newGatedWriter(t)
	q := newQueued()
	w.Queue(context.Background(), testEvent(0), q.done)
	<-gate.entered // Queue has returned and the commit is syncing
	select {
	case err := <-q.out:
		t.Fatalf("Queue reported %v before the commit was durable", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate.release)
	if err := q.next(t); err != nil {
		t.Fatalf("Queue reported %v for a durable event", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := q.calls.Load(); n != 1 {
		t.Errorf("done was called %d times; want once", n)
	}
	data, _ := os.ReadFile(opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 1 {
		t.Errorf("got %s; want OK with 1 event", res)
	}
}

// TestQueueRefusals: an event Append would refuse at once is reported at
// once, before Queue returns, with Append's error; a failed commit is
// reported as Append reports it.
func TestQueueRefusals(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	q := newQueued()
	w.Queue(context.Background(), Event{}, q.done)
	select {
	case err := <-q.out:
		if err == nil || err.Error() != w.Append(context.Background(), Event{}).Error() {
			t.Errorf("Queue of an invalid event reported %v; want Append's refusal", err)
		}
	default:
		t.Fatal("Queue of an invalid event returned before reporting it")
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	w.Queue(cancelled, testEvent(1), q.done)
	if err := q.next(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Queue with an ended context reported %v; want context.Canceled", err)
	}

	w.file = &countingFile{logFile: w.file, failSync: syscall.EIO}
	w.Queue(context.Background(), testEvent(2), q.done)
	if err := q.next(t); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "audit event not recorded") {
		t.Errorf("Queue of an event whose fsync failed reported %v; want EIO, not recorded", err)
	}
	_ = w.Close() // fails: the writer already failed
	w.Queue(context.Background(), testEvent(3), q.done)
	if err := q.next(t); err == nil {
		t.Error("Queue on a failed and closed writer reported no error")
	}
	if n := q.calls.Load(); n != 4 {
		t.Errorf("done was called %d times for 4 events; want once each", n)
	}
}

// TestQueueDeferredRidesTheNextAppend: a deferred Queue is committed with
// the next Append, in one fsync, and reported once that commit is durable.
func TestQueueDeferredRidesTheNextAppend(t *testing.T) {
	opts := testOptions(t)
	opts.MaxDeferral = time.Hour
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &countingFile{logFile: w.file}
	w.file = f
	q := newQueued()
	w.Queue(WithDeferredCommit(context.Background()), testEvent(1), q.done)
	select {
	case err := <-q.out:
		t.Fatalf("the deferred Queue reported %v before any commit was asked for", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := w.Append(context.Background(), testEvent(2)); err != nil {
		t.Fatal(err)
	}
	if err := q.next(t); err != nil {
		t.Fatalf("deferred Queue: %v", err)
	}
	if n := f.syncs.Load(); n != 1 {
		t.Errorf("%d fsyncs for a deferred event and the next; want 1 (one commit)", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
