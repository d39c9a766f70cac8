package auditlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Defaults of FloodOptions.
const (
	DefaultFloodThreshold = 100
	DefaultFloodInterval  = 10 * time.Second
	DefaultFloodSources   = 10000
)

// FloodOptions configure a FloodGuard.
type FloodOptions struct {
	// Threshold is how many denied requests of one actor from one source
	// are recorded one by one per interval; past it they are counted into
	// one aggregate event. 0 means DefaultFloodThreshold.
	Threshold int
	// Interval is the window of the threshold and of the aggregates. 0
	// means DefaultFloodInterval.
	Interval time.Duration
	// MaxSources bounds the (source, actor) pairs counted per interval;
	// pairs beyond it share one count. 0 means DefaultFloodSources.
	MaxSources int
}

// sourceKey is the context key of the request's source.
type sourceKey struct{}

// WithSource returns ctx carrying the source of the request (such as the
// client's IP address), which a FloodGuard counts denials by. The source is
// never written to the log.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// Sink is what a FloodGuard records into; *Writer is one.
type Sink interface {
	Append(ctx context.Context, ev Event) error
	Err() error
	Close() error
}

// FloodGuard aggregates floods of denied requests, so that nobody can fill
// the log (and the logbook) by sending anonymous or forbidden requests: per
// interval, the first Threshold denials of one actor from one source are
// recorded one by one (Append returns once each is durable); the rest are
// counted and recorded at the end of the interval as one denied event with
// that count (the "count" member). Allowed requests always pass straight
// through. The requests counted into an aggregate are answered before the
// aggregate is recorded; a denial carries no data of a dossier.
type FloodGuard struct {
	sink       Sink
	threshold  int
	interval   time.Duration
	maxSources int

	mu      sync.Mutex
	counts  map[floodKey]*floodCount
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

type floodKey struct{ source, actor string }

// overflowSource is the source of the pairs beyond MaxSources.
const overflowSource = "\x00overflow"

type floodCount struct {
	seen       int
	suppressed int
	first      Event // the first suppressed event, the template of the aggregate
	from       time.Time
}

// NewFloodGuard starts a guard in front of sink.
func NewFloodGuard(sink Sink, opts FloodOptions) *FloodGuard {
	g := &FloodGuard{sink: sink, threshold: opts.Threshold, interval: opts.Interval, maxSources: opts.MaxSources,
		counts: map[floodKey]*floodCount{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	if g.threshold <= 0 {
		g.threshold = DefaultFloodThreshold
	}
	if g.interval <= 0 {
		g.interval = DefaultFloodInterval
	}
	if g.maxSources <= 0 {
		g.maxSources = DefaultFloodSources
	}
	go g.run()
	return g
}

// Append records ev, or counts it into an aggregate when it is a denial
// past the threshold of its source and actor.
func (g *FloodGuard) Append(ctx context.Context, ev Event) error {
	if ev.Outcome != OutcomeDenied {
		return g.sink.Append(ctx, ev)
	}
	source, _ := ctx.Value(sourceKey{}).(string)
	k := floodKey{source, ev.Actor}
	g.mu.Lock()
	c, ok := g.counts[k]
	if !ok {
		if len(g.counts) >= g.maxSources {
			k.source = overflowSource
			c = g.counts[k]
		}
		if c == nil {
			c = &floodCount{}
			g.counts[k] = c
		}
	}
	c.seen++
	if c.seen <= g.threshold {
		g.mu.Unlock()
		return g.sink.Append(ctx, ev)
	}
	if c.suppressed == 0 {
		c.first = ev
		c.from = ev.Time
		if c.from.IsZero() {
			c.from = time.Now()
		}
	}
	c.suppressed++
	g.mu.Unlock()
	return g.sink.Err()
}

// Begin is Append in two steps (Writer.Begin): an allowed event is handed
// to the sink at once, with the sink's own Begin when it has one (a
// Writer), and the function returned waits for the outcome; a denial is
// recorded or counted as Append does before Begin returns. A proxy in
// front of a guard so overlaps a safe request's decision with the call to
// the application as it does in front of the Writer, with no goroutine of
// its own.
func (g *FloodGuard) Begin(ctx context.Context, ev Event) (wait func() error) {
	if ev.Outcome == OutcomeDenied {
		err := g.Append(ctx, ev)
		return func() error { return err }
	}
	if b, ok := g.sink.(interface {
		Begin(context.Context, Event) func() error
	}); ok {
		return b.Begin(ctx, ev)
	}
	done := make(chan error, 1)
	go func() { done <- g.sink.Append(ctx, ev) }()
	return func() error { return <-done }
}

// Queue is Append for an event nothing waits on (Writer.Queue): an allowed
// event goes to the sink's own Queue when it has one; otherwise, and for a
// denial, Append runs in a goroutine of its own. done is called once.
func (g *FloodGuard) Queue(ctx context.Context, ev Event, done func(error)) {
	if q, ok := g.sink.(interface {
		Queue(context.Context, Event, func(error))
	}); ok && ev.Outcome != OutcomeDenied {
		q.Queue(ctx, ev, done)
		return
	}
	go func() { done(g.Append(ctx, ev)) }()
}

// Err is the sink's error.
func (g *FloodGuard) Err() error { return g.sink.Err() }

// Close records the pending aggregates and closes the sink.
func (g *FloodGuard) Close() error {
	g.once.Do(func() { close(g.stop) })
	<-g.stopped
	return g.sink.Close()
}

func (g *FloodGuard) run() {
	defer close(g.stopped)
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			g.flush()
		case <-g.stop:
			g.flush()
			return
		}
	}
}

// flush records one aggregate per pair that went past the threshold and
// starts a new interval. An aggregate that cannot be recorded is kept and
// tried again at the next flush.
func (g *FloodGuard) flush() {
	now := time.Now()
	g.mu.Lock()
	old := g.counts
	g.counts = map[floodKey]*floodCount{}
	g.mu.Unlock()
	for k, c := range old {
		if c.suppressed == 0 {
			continue
		}
		ev := aggregate(c, now)
		ctx, cancel := context.WithTimeout(context.Background(), g.interval)
		err := g.sink.Append(ctx, ev)
		cancel()
		if err != nil {
			g.mu.Lock()
			n := g.counts[k]
			if n == nil {
				n = &floodCount{}
				g.counts[k] = n
			}
			if n.suppressed == 0 {
				n.first, n.from = c.first, c.from
			}
			n.seen += c.suppressed
			n.suppressed += c.suppressed
			g.mu.Unlock()
		}
	}
}

// aggregate is the event that stands for the suppressed denials of c. A
// single suppressed denial is recorded as itself.
func aggregate(c *floodCount, now time.Time) Event {
	ev := c.first
	if c.suppressed == 1 {
		return ev
	}
	ev.Time, ev.Duration = c.from, now.Sub(c.from)
	ev.Count = c.suppressed
	var id [24]byte
	_, _ = rand.Read(id[:])
	id[0], id[16] = id[0]|1, id[16]|1 // never all zero
	ev.TraceID, ev.OperationID, ev.ParentOperationID = hex.EncodeToString(id[:16]), hex.EncodeToString(id[16:]), ""
	// What differs between the requests is not kept.
	ev.DataSubject, ev.Route, ev.Categories, ev.Roles, ev.Status = "", "", nil, nil, 0
	return ev
}
