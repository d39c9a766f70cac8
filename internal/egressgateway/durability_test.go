package egressgateway

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
)

// heldSink makes the decision events (allowed, status 0) durable only when
// the test sends on release (nil: durable); it reports each on started.
type heldSink struct {
	memorySink
	started chan struct{}
	release chan error
}

func (s *heldSink) Append(ctx context.Context, ev auditlog.Event) error {
	if ev.Outcome == auditlog.OutcomeAllowed && ev.Status == 0 {
		s.started <- struct{}{}
		if err := <-s.release; err != nil {
			return err
		}
	}
	return s.memorySink.Append(ctx, ev)
}

// TestOutboundRequestNotSentBeforeDecisionDurable: every outbound request,
// a GET as much as a POST, reaches the partner only once its decision event
// is durable, and never when it failed: the request is the disclosure, so
// the gateway does not overlap the append with it.
func TestOutboundRequestNotSentBeforeDecisionDurable(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		for _, outcome := range []error{nil, errors.New("fsync: input/output error")} {
			w := newUnitWorld(t, nil, nil, nil)
			sink := &heldSink{started: make(chan struct{}, 1), release: make(chan error, 1)}
			w.gw.audit = sink
			w.gw.record = auditproxy.NewRecorder(sink, true, nil, &w.gw.inflight)
			path := "/verwijsindex/signalen/D-1"
			if method == "GET" {
				path = "/verwijsindex/signalen"
			}
			type result struct{ code int }
			done := make(chan result, 1)
			go func() {
				rec, _ := w.send(t, method, path, "app-token")
				done <- result{rec.Code}
			}()
			select {
			case <-sink.started:
			case <-time.After(10 * time.Second):
				t.Fatal("no decision append")
			}
			time.Sleep(200 * time.Millisecond)
			w.partner.mu.Lock()
			early := len(w.partner.got)
			w.partner.mu.Unlock()
			if early != 0 {
				t.Errorf("%s: the partner got the request before its decision was durable", method)
			}
			sink.release <- outcome
			res := <-done
			w.partner.mu.Lock()
			got := len(w.partner.got)
			w.partner.mu.Unlock()
			switch {
			case outcome == nil && (got != 1 || res.code != http.StatusCreated):
				t.Errorf("%s, decision durable: partner got %d requests, status %d; want 1 and 201", method, got, res.code)
			case outcome != nil && (got != 0 || res.code != http.StatusServiceUnavailable):
				t.Errorf("%s, decision failed: partner got %d requests, status %d; want none and 503", method, got, res.code)
			}
			w.gw.Wait()
		}
	}
}
