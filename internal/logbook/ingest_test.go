package logbook

import (
	"context"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestIngestAndRedelivery stores a chain sent in three requests over HTTP and
// checks that sending it all again stores nothing twice and acknowledges
// every line.
func TestIngestAndRedelivery(t *testing.T) {
	l, pool := newLogbook(t)
	c := writeChain(t, signingKey, store, 20) // 25 lines: genesis, 20 events, 4 checkpoints
	if len(c.recs) != 25 {
		t.Fatalf("chain has %d lines, want 25", len(c.recs))
	}
	h := l.Handler(nil, 0)
	for _, part := range [][2]int{{1, 7}, {8, 15}, {16, 25}} {
		code, resp := post(t, h, c.request(c.lines(part[0], part[1])))
		if code != 200 || resp.GetPartialSuccess().GetRejectedSpans() != 0 {
			t.Fatalf("lines %v: HTTP %d, %v", part, code, resp)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records WHERE chain_id = $1", c.id); n != 25 {
		t.Fatalf("%d lines stored, want 25", n)
	}
	var headSeq, cpSeq int
	var st string
	if err := pool.QueryRow(context.Background(), "SELECT head_seq, checkpoint_seq, store FROM logbook_chains WHERE chain_id = $1", c.id).Scan(&headSeq, &cpSeq, &st); err != nil {
		t.Fatal(err)
	}
	if headSeq != 25 || cpSeq != 25 || st != store {
		t.Fatalf("head %d, checkpoint %d, store %s; want 25, 25, %s", headSeq, cpSeq, st, store)
	}

	// Redelivery: all of it, and an overlapping tail.
	res := mustIngest(t, l, c.request(c.recs))
	if res.Stored != 0 || res.Duplicates != 25 || len(res.Refused) != 0 {
		t.Fatalf("redelivery: %+v, want 25 duplicates", res)
	}
	code, resp := post(t, h, c.request(c.lines(20, 25)))
	if code != 200 || resp.GetPartialSuccess().GetRejectedSpans() != 0 {
		t.Fatalf("redelivered tail: HTTP %d, %v", code, resp)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records"); n != 25 {
		t.Fatalf("%d lines after redelivery, want 25", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_refusals"); n != 0 {
		t.Fatalf("%d refusals, want 0", n)
	}
	// The pseudonym is kept for the query index.
	if n := count(t, pool, "SELECT count(*) FROM logbook_records WHERE store = $1 AND data_subject_id = $2", store,
		auditlog.Pseudonymise(pseudoKey, "client-1")); n != 7 {
		t.Fatalf("%d events of client-1, want 7", n)
	}
}

// TestIngestRefuses sends lines that do not continue their chain and checks
// that each is refused with its reason, recorded, and not stored, and that
// what came before it is stored.
func TestIngestRefuses(t *testing.T) {
	c := writeChain(t, signingKey, store, 10) // 13 lines: 1 genesis, 2-6, 7 cp, 8-12, 13 cp
	other := writeChain(t, signingKey, store, 10)
	untrusted := writeChain(t, otherKey, store, 10)
	tests := []struct {
		name    string
		before  []*auditlog.Record // stored first
		chainID string             // of the request; c.id when empty
		store   string             // of the request; store when empty
		send    []*auditlog.Record
		stored  int // lines of the request stored
		reason  Reason
		seq     uint64
		detail  string
	}{
		{name: "gap", before: c.lines(1, 4), send: c.lines(6, 8), reason: ReasonGap, seq: 6, detail: "seq 5 to 5 are missing"},
		{name: "gap inside a request", before: c.lines(1, 2), send: append(c.lines(3, 4), c.lines(6, 7)...), stored: 2, reason: ReasonGap, seq: 6},
		{name: "no genesis", send: c.lines(2, 4), reason: ReasonGap, seq: 2, detail: "genesis"},
		{name: "fork", before: c.lines(1, 5), send: []*auditlog.Record{forge(t, c.recs[2], `"coach-0042"`, `"coach-0043"`)}, reason: ReasonFork, seq: 3},
		{name: "substitution", before: c.lines(1, 4), send: other.lines(5, 6), reason: ReasonSubstitution, seq: 5, detail: "does not follow"},
		{name: "other store", before: c.lines(1, 4), store: "jeugd/dossiers", send: c.lines(5, 6), reason: ReasonSubstitution, seq: 5, detail: "belongs to store"},
		{name: "genesis of other store", chainID: "", store: "jeugd/dossiers", send: c.lines(1, 1), reason: ReasonSubstitution, seq: 1, detail: "genesis line names store"},
		{name: "untrusted checkpoint key", chainID: untrusted.id, send: untrusted.lines(1, 7), stored: 6, reason: ReasonBadSignature, seq: 7, detail: "not among the public keys"},
		{name: "forged checkpoint", before: c.lines(1, 6), send: []*auditlog.Record{forgeSig(t, c.recs[6])}, reason: ReasonBadSignature, seq: 7, detail: "does not match the checkpoint"},
		{name: "edited line", before: c.lines(1, 2), send: []*auditlog.Record{editLine(c.recs[2])}, reason: ReasonEdited, detail: "does not match its hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, pool := newLogbook(t)
			id := c.id
			if tt.chainID != "" {
				id = tt.chainID
			}
			st := store
			if tt.store != "" {
				st = tt.store
			}
			if tt.before != nil {
				if res := mustIngest(t, l, c.request(tt.before)); len(res.Refused) != 0 {
					t.Fatalf("before: %+v", res)
				}
			}
			storedBefore := count(t, pool, "SELECT count(*) FROM logbook_records")
			res := mustIngest(t, l, auditlog.ExportRequest(st, "p", id, tt.send))
			if res.Stored != tt.stored {
				t.Errorf("stored %d lines of the request, want %d", res.Stored, tt.stored)
			}
			if len(res.Refused) != len(tt.send)-tt.stored {
				t.Fatalf("refused %v, want %d lines", res.Refused, len(tt.send)-tt.stored)
			}
			ref := res.Refused[0]
			if ref.Reason != tt.reason || (tt.seq != 0 && ref.Seq != tt.seq) || !strings.Contains(ref.Detail, tt.detail) {
				t.Errorf("refusal %s; want %s at seq %d with %q", ref, tt.reason, tt.seq, tt.detail)
			}
			if n := count(t, pool, "SELECT count(*) FROM logbook_records"); n != storedBefore+tt.stored {
				t.Errorf("%d lines stored, want %d", n, storedBefore+tt.stored)
			}
			if n := count(t, pool, "SELECT count(*) FROM logbook_refusals WHERE reason = $1 AND seq = $2", string(tt.reason), int64(ref.Seq)); n != 1 {
				t.Errorf("%d refusals recorded for %s at seq %d, want 1", n, tt.reason, ref.Seq)
			}
			// The chain goes on from the stored head once the right lines
			// arrive (when the refused line was not the head's successor
			// of a foreign chain).
			if tt.name == "gap" {
				if res := mustIngest(t, l, c.request(c.lines(5, 13))); res.Stored != 9 || len(res.Refused) != 0 {
					t.Errorf("after the gap is filled: %+v, want 9 stored", res)
				}
			}
		})
	}
}

// editLine changes a line without fixing its hash.
func editLine(r *auditlog.Record) *auditlog.Record {
	e := *r
	e.Line = []byte(strings.Replace(string(r.Line), `"coach-0042"`, `"coach-0666"`, 1))
	return &e
}

// forgeSig changes the signature of a checkpoint and rehashes the line.
func forgeSig(t testing.TB, r *auditlog.Record) *auditlog.Record {
	i := strings.Index(string(r.Line), `"sig":"`) + len(`"sig":"`)
	c := "0"
	if r.Line[i] == '0' {
		c = "1"
	}
	return forge(t, r, `"sig":"`+string(r.Line[i]), `"sig":"`+c)
}
