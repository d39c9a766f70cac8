package auditlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Defaults of LogbookOptions.
const (
	DefaultMaxPending = 10000
	DefaultAckTimeout = 5 * time.Second
	defaultShipBatch  = 2048
)

// ErrSpoolFull is returned by Append when more lines than
// LogbookOptions.MaxPending wait for the logbook's acknowledgement.
var ErrSpoolFull = errors.New("the logbook has not acknowledged the audit lines before it; refusing more until it does")

// LogbookOptions make a Writer ship every line to the logbook over
// OTLP/HTTP, in order, batched. An Append then returns only once the
// logbook acknowledged its event (committed it to its database), on top of
// the local fsync: the event is durable outside the pod before the request
// it records goes on.
type LogbookOptions struct {
	// URL is the logbook's base URL; lines are POSTed to URL/v1/traces.
	URL string
	// Client sends the requests; nil means a client with a 10s timeout.
	Client *http.Client
	// MaxPending bounds the lines written locally but not yet acknowledged;
	// past it Append fails with ErrSpoolFull. 0 means DefaultMaxPending.
	MaxPending int
	// AckTimeout is the longest Append waits for the acknowledgement; then
	// it fails (the line stays queued and is delivered later). 0 means
	// DefaultAckTimeout.
	AckTimeout time.Duration
	// TokenFile, when set, holds the bearer token every request presents
	// (the pod's projected ServiceAccount token, which the kubelet renews
	// in place); it is read for every request. A file that cannot be read
	// fails the request, which is retried.
	TokenFile string
}

// shipEntry is one line waiting for the logbook.
type shipEntry struct {
	rec  *Record
	done outcome // the Append waiting for it, if any
}

// shipper sends the lines of one chain to the logbook, one request at a
// time, in order.
type shipper struct {
	url        string
	client     *http.Client
	store, pod string
	chainID    string
	maxPending int
	ackTimeout time.Duration
	tokenFile  string
	fail       func(error) error

	mu      sync.Mutex
	queue   []*shipEntry
	closed  bool
	fatal   error
	wake    chan struct{}
	stopped chan struct{}
	runCtx  context.Context
	cancel  context.CancelFunc
}

func newShipper(o *LogbookOptions, c *Chain, chainID string, fail func(error) error) (*shipper, error) {
	if o.URL == "" {
		return nil, errors.New("audit log: the logbook URL is empty")
	}
	if c == nil || chainID == "" {
		return nil, errors.New("audit log: shipping to the logbook needs the chain's origin (Options.Chain) and a log with a genesis line")
	}
	s := &shipper{
		url: strings.TrimSuffix(o.URL, "/") + "/v1/traces", client: o.Client, store: c.Store, pod: c.Pod, chainID: chainID,
		maxPending: o.MaxPending, ackTimeout: o.AckTimeout, tokenFile: o.TokenFile, fail: fail,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}),
	}
	s.runCtx, s.cancel = context.WithCancel(context.Background())
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.maxPending <= 0 {
		s.maxPending = DefaultMaxPending
	}
	if s.ackTimeout <= 0 {
		s.ackTimeout = DefaultAckTimeout
	}
	return s, nil
}

// full reports whether the spool is at its bound.
func (s *shipper) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) >= s.maxPending
}

// pending is the number of lines queued and not yet acknowledged.
func (s *shipper) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// enqueue adds lines in chain order.
func (s *shipper) enqueue(entries []*shipEntry) {
	s.mu.Lock()
	if s.fatal != nil {
		err := s.fatal
		s.mu.Unlock()
		for _, e := range entries {
			e.done.send(err)
		}
		return
	}
	s.queue = append(s.queue, entries...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run sends what is queued until close is called and the queue is empty,
// or until close gives up.
func (s *shipper) run() {
	drainCtx := s.runCtx
	defer close(s.stopped)
	backoff := 50 * time.Millisecond
	for {
		s.mu.Lock()
		n := min(len(s.queue), defaultShipBatch)
		batch := s.queue[:n:n]
		closed := s.closed
		s.mu.Unlock()
		if n == 0 {
			if closed {
				return
			}
			select {
			case <-s.wake:
			case <-drainCtx.Done():
				return
			}
			continue
		}
		err := s.send(drainCtx, batch)
		var refused *refusedError
		switch {
		case err == nil:
			s.mu.Lock()
			s.queue = s.queue[n:]
			s.mu.Unlock()
			for _, e := range batch {
				e.done.send(nil)
			}
			backoff = 50 * time.Millisecond
		case errors.As(err, &refused):
			// The logbook refused a line of this chain: it cannot go on.
			ferr := s.fail(err)
			s.mu.Lock()
			s.fatal = ferr
			q := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, e := range q {
				e.done.send(ferr)
			}
			return
		default:
			if drainCtx.Err() != nil {
				return
			}
			select {
			case <-time.After(backoff):
			case <-drainCtx.Done():
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// refusedError is a line the logbook refused.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return "the logbook refused audit lines: " + e.msg }

// send posts one batch and reads the acknowledgement.
func (s *shipper) send(ctx context.Context, batch []*shipEntry) error {
	recs := make([]*Record, len(batch))
	for i, e := range batch {
		recs[i] = e.rec
	}
	body, err := proto.Marshal(ExportRequest(s.store, s.pod, s.chainID, recs))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if s.tokenFile != "" {
		token, err := os.ReadFile(s.tokenFile)
		if err != nil || len(bytes.TrimSpace(token)) == 0 {
			return errors.New("the logbook token file cannot be read or is empty")
		}
		req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest:
		return &refusedError{fmt.Sprintf("HTTP %d for a request of %d lines", resp.StatusCode, len(batch))}
	default:
		return fmt.Errorf("logbook answered HTTP %d", resp.StatusCode)
	}
	var out coltracepb.ExportTraceServiceResponse
	if err := proto.Unmarshal(data, &out); err != nil {
		return fmt.Errorf("logbook answer: %w", err)
	}
	if ps := out.GetPartialSuccess(); ps.GetRejectedSpans() > 0 {
		return &refusedError{ps.GetErrorMessage()}
	}
	return nil
}

// close stops the shipper once the queue is sent or ctx ends.
func (s *shipper) close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.stopped:
	case <-ctx.Done():
	}
	s.cancel()
	<-s.stopped
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal != nil {
		return s.fatal
	}
	if len(s.queue) > 0 {
		return fmt.Errorf("audit log: %d lines were not acknowledged by the logbook before close; they stay in the local log", len(s.queue))
	}
	return nil
}
