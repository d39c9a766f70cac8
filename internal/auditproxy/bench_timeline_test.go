package auditproxy

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/benchutil"
)

// This file is the timeline of one request through the audit proxy at
// concurrency 1 in BenchmarkProxyFloor: when it reached the proxy, when
// its decision's Append began, when the committer began the commit that
// held it, how long building and writing the lines and the sync took,
// when the Append returned, and when the client had the whole response.
// Only one request is in flight at concurrency 1, so every hook writes the
// one timeline of the target.

// requestStages are the stages of one request's timeline, in order.
var requestStages = []string{"to-proxy", "to-append", "to-committer", "hash+write", "sync", "wake", "to-client"}

// timeline stamps the request in flight at one audit proxy target.
type timeline struct {
	mu sync.Mutex
	on bool
	// stamps of the request in flight
	sent, entered, appendBegan, appendReturned time.Time
	commit                                     auditlog.Commit
	// stages holds the durations of every request traced, by stage.
	stages [][]time.Duration
}

func newTimeline() *timeline {
	return &timeline{stages: make([][]time.Duration, len(requestStages))}
}

// begin starts the timeline of a request the client sends now; end
// completes it when the client has the whole response.
func (t *timeline) begin(on bool) {
	t.mu.Lock()
	t.on, t.sent = on, time.Now()
	t.entered, t.appendBegan, t.appendReturned, t.commit = time.Time{}, time.Time{}, time.Time{}, auditlog.Commit{}
	t.mu.Unlock()
}

func (t *timeline) end() {
	done := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.on || t.appendReturned.IsZero() || t.commit.Start.IsZero() {
		return
	}
	synced := t.commit.Start.Add(t.commit.Write + t.commit.Sync)
	for i, d := range []time.Duration{t.entered.Sub(t.sent), t.appendBegan.Sub(t.entered), t.commit.Start.Sub(t.appendBegan),
		t.commit.Write, t.commit.Sync, t.appendReturned.Sub(synced), done.Sub(t.appendReturned)} {
		t.stages[i] = append(t.stages[i], d)
	}
	t.on = false
}

func (t *timeline) stamp(at *time.Time) {
	now := time.Now()
	t.mu.Lock()
	if t.on && at.IsZero() {
		*at = now
	}
	t.mu.Unlock()
}

// observe takes a commit of the log: the last one with events before the
// decision's Append returns is the one that made it durable.
func (t *timeline) observe(c auditlog.Commit) {
	t.mu.Lock()
	if t.on && c.Events > 0 && t.appendReturned.IsZero() && !t.appendBegan.IsZero() {
		t.commit = c
	}
	t.mu.Unlock()
}

// handler stamps the request's arrival at the proxy.
func (t *timeline) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.stamp(&t.entered)
		next.ServeHTTP(w, r)
	})
}

// sink stamps the decision's Append (the first event that is not a
// deferred completion).
func (t *timeline) sink(next EventSink) EventSink { return timedSink{next: next, t: t} }

type timedSink struct {
	next EventSink
	t    *timeline
}

func (s timedSink) Append(ctx context.Context, ev auditlog.Event) error {
	if auditlog.CommitDeferred(ctx) {
		return s.next.Append(ctx, ev)
	}
	s.t.stamp(&s.t.appendBegan)
	err := s.next.Append(ctx, ev)
	s.t.stamp(&s.t.appendReturned)
	return err
}

// Begin stamps the decision's Append as Append does, for the proxy's
// Beginner path.
func (s timedSink) Begin(ctx context.Context, ev auditlog.Event) func() error {
	if auditlog.CommitDeferred(ctx) { // a completion, begun after the response
		return beginAppend(s.next, ctx, ev)
	}
	s.t.stamp(&s.t.appendBegan)
	wait := beginAppend(s.next, ctx, ev)
	return func() error {
		err := wait()
		s.t.stamp(&s.t.appendReturned)
		return err
	}
}

// Queue passes a completion on (Queuer): the timeline is the decision's.
func (s timedSink) Queue(ctx context.Context, ev auditlog.Event, done func(error)) {
	queueAppend(s.next, ctx, ev, done)
}

func (s timedSink) Err() error { return s.next.Err() }

// report adds the p50 of every stage as metrics (c1-<target>-stage-…).
func (t *timeline) report(report func(float64, string), target string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, name := range requestStages {
		report(benchutil.Micros(benchutil.Percentile(t.stages[i], 50)), "c1-"+target+"-stage-"+name+"-p50-µs")
	}
}
