package auditproxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// This file is how the audit proxy and the egress gateway make the events of
// an allowed request durable: the decision before anything of the request
// or its response gets through, the completion after. Both use it; neither
// has a copy.
//
// The ordering rules:
//   - an unsafe request (and every outbound request of the gateway) is
//     forwarded only once its decision event is durable;
//   - a safe request (OverlapsDurability) is forwarded while its decision
//     event is being made durable, and its response is held (HeldResponse):
//     no status line, header, 1xx, body byte or flush reaches the client
//     before the decision's Append has returned, and when it failed the
//     client gets 503 and nothing of the application's response;
//   - the completion event is appended after the decision is durable, in
//     the background with a deferred commit (it rides the next commit, so
//     that a request waits for one fsync, not two) once the response has
//     been passed on (End fixes its status and duration when the
//     response headers arrive, Finish appends it after the last byte, so
//     that encoding and queueing it takes nothing from the response), or
//     before the response is passed on with SyncCompletion.

// ErrCompletionNotRecorded stops a response whose completion event failed
// (SyncCompletion only).
var ErrCompletionNotRecorded = errors.New("completion event not recorded")

// ErrDecisionNotRecorded stops a held response whose decision event failed.
var ErrDecisionNotRecorded = errors.New("decision event not recorded")

// OverlapsDurability reports whether a request with this method on a route
// of this action may be forwarded while its decision event is being made
// durable: a safe method (GET, HEAD, OPTIONS) on a read route. Anything else
// may change the application's state, and the application must not act on
// it before its event is recorded.
func OverlapsDurability(method string, action v1alpha1.Action) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return action == v1alpha1.ActionRead
	}
	return false
}

// Recorder appends the decision and completion events of allowed requests
// to one sink.
type Recorder struct {
	sink EventSink
	sync bool
	log  *slog.Logger
	// inflight counts the completion events being appended in the
	// background, for the owner's Wait.
	inflight *sync.WaitGroup
}

// NewRecorder returns a Recorder on sink. syncCompletion appends the
// completion before the response is passed on (Complete's error then stops
// the response); inflight counts the background appends.
func NewRecorder(sink EventSink, syncCompletion bool, log *slog.Logger, inflight *sync.WaitGroup) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{sink: sink, sync: syncCompletion, log: log, inflight: inflight}
}

// Beginner is an EventSink that hands an event to its log and returns
// before it is durable, with the function that waits for the outcome
// (auditlog.Writer.Begin). The Recorder starts a safe request's decision
// with it without a goroutine of its own: the event is queued before the
// request is forwarded, and the log's answer wakes the request directly.
type Beginner interface {
	Begin(ctx context.Context, ev auditlog.Event) (wait func() error)
}

// beginAppend starts appending ev to sink and returns the wait for its
// outcome: sink's Begin when it has one, else Append in a goroutine.
func beginAppend(sink EventSink, ctx context.Context, ev auditlog.Event) func() error {
	if b, ok := sink.(Beginner); ok {
		return b.Begin(ctx, ev)
	}
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = sink.Append(ctx, ev)
	}()
	return func() error {
		<-done
		return err
	}
}

// PendingEvent is a decision event handed to the sink whose outcome is not
// known yet.
type PendingEvent struct {
	once sync.Once
	wait func() error
	err  error
}

// Begin starts appending ev and returns at once.
func (r *Recorder) Begin(ctx context.Context, ev auditlog.Event) *PendingEvent {
	return &PendingEvent{wait: beginAppend(r.sink, ctx, ev)}
}

// Wait returns the outcome of the append once it is known: nil when the
// event is durable. It may be called more than once, from any goroutine.
func (p *PendingEvent) Wait() error {
	p.once.Do(func() { p.err = p.wait() })
	return p.err
}

// Completion is the completion event of one allowed request: its decision
// event and when the request arrived. It is recorded once.
type Completion struct {
	Event auditlog.Event
	Start time.Time
	done  atomic.Bool
	// ended is set by End: Event holds the status and duration.
	ended bool
}

// End fixes the completion's status and its duration (until now), for
// Finish to append once the response has been passed on. It is called
// where the response headers arrive, after the decision is durable, from
// the goroutine that then passes the response on and calls Finish.
func (c *Completion) End(status int) {
	if !c.ended {
		c.ended = true
		c.Event.Status, c.Event.Duration = status, time.Since(c.Start)
	}
}

// Ended reports whether End was called; Complete then appends the status
// End fixed.
func (c *Completion) Ended() bool { return c.ended }

// Complete appends the completion event with the status given, once: in
// the background with a deferred commit, or, with syncCompletion, before it
// returns (ErrCompletionNotRecorded when that fails).
func (r *Recorder) Complete(c *Completion, status int) error {
	if !c.done.CompareAndSwap(false, true) {
		return nil
	}
	ev := c.Event
	if !c.ended {
		ev.Status, ev.Duration = status, time.Since(c.Start)
	}
	if r.sync {
		if err := r.sink.Append(context.Background(), ev); err != nil {
			r.log.Error("completion event not recorded", "operationID", ev.OperationID, "error", err.Error())
			return ErrCompletionNotRecorded
		}
		return nil
	}
	r.completeInBackground(ev)
	return nil
}

// completeInBackground appends a completion with a deferred commit and
// logs its failure. A Queuer sink (auditlog.Writer) encodes and queues it
// in the caller's goroutine and reports the outcome from its committer, so
// that a completion costs no goroutine and no wake-up of its own.
func (r *Recorder) completeInBackground(ev auditlog.Event) {
	r.inflight.Add(1)
	id := ev.OperationID
	queueAppend(r.sink, deferredCommit, ev, func(err error) {
		defer r.inflight.Done()
		if err != nil {
			r.log.Error("completion event not recorded", "operationID", id, "error", err.Error())
		}
	})
}

// deferredCommit is the context of every background completion.
var deferredCommit = auditlog.WithDeferredCommit(context.Background())

// Queuer is an EventSink that takes an event nothing waits on and reports
// its outcome to a function (auditlog.Writer.Queue), called once, which
// must not block. The Recorder appends background completions with it.
type Queuer interface {
	Queue(ctx context.Context, ev auditlog.Event, done func(error))
}

// queueAppend appends ev to sink and reports the outcome to done: with
// sink's Queue when it has one; else a Beginner's Begin in the caller's
// goroutine, or Append, with a goroutine that waits for the outcome.
func queueAppend(sink EventSink, ctx context.Context, ev auditlog.Event, done func(error)) {
	switch s := sink.(type) {
	case Queuer:
		s.Queue(ctx, ev, done)
	case Beginner:
		wait := s.Begin(ctx, ev)
		go func() { done(wait()) }()
	default:
		go func() { done(sink.Append(ctx, ev)) }()
	}
}

// Finish appends a completion that End fixed and nothing has appended
// yet (Complete, in the background): the request's handler calls it once
// the response has been passed on, or has failed to be. A completion
// without End is left alone.
func (r *Recorder) Finish(c *Completion) {
	if c.ended {
		_ = r.Complete(c, c.Event.Status) // background: no error to report
	}
}

// HeldResponse is the ResponseWriter of a request forwarded while its
// decision event is being made durable. Nothing written to it reaches the
// client before the decision's append has returned: WriteHeader (1xx
// included), Write and Flush wait for it. When the append failed, refuse
// answers instead (503), once, with the headers set so far cleared, and
// every later write is dropped. It offers no Hijack: a request that may
// switch protocols is not held but recorded before it is forwarded.
type HeldResponse struct {
	w        http.ResponseWriter
	decision *PendingEvent
	refuse   func(http.ResponseWriter, error)
	once     sync.Once
	ok       bool
}

// NewHeldResponse holds w until decision is durable; refuse writes the
// answer when it is not.
func NewHeldResponse(w http.ResponseWriter, decision *PendingEvent, refuse func(http.ResponseWriter, error)) *HeldResponse {
	return &HeldResponse{w: w, decision: decision, refuse: refuse}
}

// Release waits for the decision and reports whether it is durable; the
// first call that finds it failed has the refusal written.
func (h *HeldResponse) Release() bool {
	h.once.Do(func() {
		err := h.decision.Wait()
		h.ok = err == nil
		if !h.ok {
			clear(h.w.Header()) // nothing of the application's headers
			h.refuse(h.w, err)
		}
	})
	return h.ok
}

// Header is the header map of the response; it is sent only by a released
// WriteHeader or Write.
func (h *HeldResponse) Header() http.Header { return h.w.Header() }

// WriteHeader sends the status once the decision is durable.
func (h *HeldResponse) WriteHeader(code int) {
	if h.Release() {
		h.w.WriteHeader(code)
	}
}

// Write sends p once the decision is durable.
func (h *HeldResponse) Write(p []byte) (int, error) {
	if !h.Release() {
		return 0, ErrDecisionNotRecorded
	}
	return h.w.Write(p)
}

// FlushError flushes once the decision is durable (http.ResponseController
// uses it).
func (h *HeldResponse) FlushError() error {
	if !h.Release() {
		return ErrDecisionNotRecorded
	}
	return http.NewResponseController(h.w).Flush()
}

// Flush is FlushError without the error.
func (h *HeldResponse) Flush() { _ = h.FlushError() }
