package auditlog

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFloodGuard: past the threshold, the denials of one actor from one
// source become one aggregate event with their count; other sources, other
// actors and allowed requests are recorded one by one; the log verifies.
func TestFloodGuard(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	g := NewFloodGuard(w, FloodOptions{Threshold: 3, Interval: time.Hour, MaxSources: 2})
	denied := func(i int, actor string) Event {
		ev := testEvent(i)
		ev.Outcome, ev.Status, ev.Actor = OutcomeDenied, 401, actor
		return ev
	}
	a := WithSource(context.Background(), "192.0.2.1")
	b := WithSource(context.Background(), "192.0.2.2")
	c := WithSource(context.Background(), "192.0.2.3")
	for i := range 10 {
		if err := g.Append(a, denied(i, "system:anonymous")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := g.Append(b, denied(100+i, "system:anonymous")); err != nil {
			t.Fatal(err)
		}
	}
	ok := testEvent(200)
	ok.Outcome, ok.Status = OutcomeAllowed, 200
	for range 5 {
		if err := g.Append(a, ok); err != nil {
			t.Fatal(err)
		}
	}
	// A third pair is beyond MaxSources: it is counted with the overflow.
	for i := range 5 {
		if err := g.Append(c, denied(300+i, "system:anonymous")); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, opts.Path)
	res := mustVerify(t, data)
	if !res.OK {
		t.Fatalf("log: %s", res)
	}
	var single, aggregates []string
	for _, l := range splitLines(data) {
		if !bytes.Contains(l, []byte(`"type":"event"`)) {
			continue
		}
		if bytes.Contains(l, []byte(`"count":`)) {
			aggregates = append(aggregates, string(l))
		} else {
			single = append(single, string(l))
		}
	}
	// a: 3 single + aggregate of 7; b: 2 single; allowed: 5; c (overflow):
	// 3 single + aggregate of 2.
	if len(single) != 3+2+5+3 || len(aggregates) != 2 {
		t.Fatalf("%d single events and %d aggregates, want 13 and 2:\n%s", len(single), len(aggregates), strings.Join(aggregates, ""))
	}
	counts := map[string]bool{}
	for _, l := range aggregates {
		for _, n := range []string{`"count":7`, `"count":2`} {
			if strings.Contains(l, n) {
				counts[n] = true
			}
		}
		if !strings.Contains(l, `"outcome":"denied"`) || strings.Contains(l, "data_subject_id") || strings.Contains(l, "192.0.2") {
			t.Errorf("aggregate %s: want a denied event without a subject or the source", l)
		}
	}
	if len(counts) != 2 {
		t.Errorf("aggregates %v, want counts 7 and 2", aggregates)
	}
}

// TestCountOnlyOnDenials: an allowed event with a count, or a count of 1,
// is refused.
func TestCountOnlyOnDenials(t *testing.T) {
	for _, ev := range []Event{
		func() Event { e := testEvent(1); e.Count = 5; return e }(),
		func() Event { e := testEvent(4); e.Count = 1; return e }(),
	} {
		if _, err := encodeEventBody(&ev, time.Now); err == nil || !strings.Contains(err.Error(), "count must be") {
			t.Errorf("count %d on a %s event: %v", ev.Count, ev.Outcome, err)
		}
	}
}

// TestItemsWithheldOnlyOnAllowed: items_withheld is a positive count on an
// allowed event; on a denial, or negative, the event is refused. An
// allowed event keeps it through encoding and reading.
func TestItemsWithheldOnlyOnAllowed(t *testing.T) {
	for _, ev := range []Event{
		func() Event { e := testEvent(4); e.ItemsWithheld = 2; return e }(),
		func() Event { e := testEvent(1); e.ItemsWithheld = -1; return e }(),
	} {
		if _, err := encodeEventBody(&ev, time.Now); err == nil || !strings.Contains(err.Error(), "items_withheld must be") {
			t.Errorf("items_withheld %d on a %s event: %v", ev.ItemsWithheld, ev.Outcome, err)
		}
	}
	ev := testEvent(1)
	ev.ItemsWithheld = 3
	body, err := encodeEventBody(&ev, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var b eventBody
	if err := json.Unmarshal(body, &b); err != nil || b.event().ItemsWithheld != 3 {
		t.Errorf("items_withheld read back as %d (%v) from %s", b.event().ItemsWithheld, err, body)
	}
}

// TestFloodGuardBeginsAndQueuesOnTheWriter: an allowed event begun or
// queued through the guard is handed to the Writer's own Begin and Queue:
// both return while the commit is still syncing, and report once it is
// durable; a denial begun past the threshold is counted, as Append counts
// it, and never written on its own.
func TestFloodGuardBeginsAndQueuesOnTheWriter(t *testing.T) {
	opts, w, gate := newGatedWriter(t)
	g := NewFloodGuard(w, FloodOptions{Threshold: 1, Interval: time.Hour})
	ctx := context.Background()
	wait := g.Begin(ctx, testEvent(0))
	<-gate.entered // Begin returned before the commit is durable
	q := newQueued()
	g.Queue(ctx, testEvent(1), q.done)
	waited := make(chan error, 1)
	go func() { waited <- wait() }()
	select {
	case err := <-waited:
		t.Fatalf("the wait returned (%v) before the commit was durable", err)
	case err := <-q.out:
		t.Fatalf("Queue reported (%v) before the commit was durable", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate.release)
	if err := <-waited; err != nil {
		t.Fatalf("Begin through the guard: %v", err)
	}
	if err := q.next(t); err != nil {
		t.Fatalf("Queue through the guard: %v", err)
	}
	for i := range 3 {
		ev := testEvent(10 + i)
		ev.Outcome, ev.Status = OutcomeDenied, 403
		if err := g.Begin(ctx, ev)(); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, opts.Path)
	if res := mustVerify(t, data); !res.OK || res.Events != 4 {
		t.Fatalf("got %s; want the 2 allowed events, 1 denial and the aggregate of 2", res)
	}
	if !bytes.Contains(data, []byte(`"count":2`)) {
		t.Error("the denials past the threshold were not aggregated")
	}
}
