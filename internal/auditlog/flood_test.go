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
