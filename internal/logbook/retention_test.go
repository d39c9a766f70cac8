package logbook

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

var logbookKey = testKey(9)

// TestRemoveExpired removes what is past retention in batches with signed
// records, and checks that the chains still verify, that redelivery of
// removed lines is harmless, that a live chain goes on after its removal,
// and that tampering with the records is detected.
func TestRemoveExpired(t *testing.T) {
	l, pool := newLogbook(t)
	ctx := context.Background()
	closed := writeChain(t, signingKey, store, 20) // 25 lines; checkpoints at 7, 13, 19, 25
	live := writeChain(t, signingKey, store, 10)   // first 10 lines stored: checkpoint at 7
	mustIngest(t, l, closed.request(closed.recs))
	mustIngest(t, l, live.request(live.lines(1, 10)))

	// Nothing is due yet under the default period.
	rep, err := RemoveExpired(ctx, pool, RetentionConfig{SigningKey: logbookKey})
	if err != nil || rep.Removed != 0 {
		t.Fatalf("default period: %+v, %v; want nothing removed", rep, err)
	}
	later := func() time.Time { return time.Now().AddDate(21, 0, 0) }
	rep, err = RemoveExpired(ctx, pool, RetentionConfig{SigningKey: logbookKey, BatchSize: 10, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	// closed: seq 2-24 (3 batches); live: seq 2-6 (1 batch).
	if rep.Removed != 23+5 || rep.Chains != 2 || len(rep.Removals) != 4 {
		t.Fatalf("report %+v, want 28 lines of 2 chains in 4 batches", rep)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records WHERE chain_id = $1", closed.id); n != 2 {
		t.Fatalf("%d lines of the closed chain left, want 2 (genesis and the last checkpoint)", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_removals WHERE chain_id = $1 AND count = 10", closed.id); n != 2 {
		t.Fatalf("%d full batches recorded, want 2", n)
	}
	verifyAll := func(want map[string]uint64) map[string]ChainVerdict {
		t.Helper()
		vs, err := VerifyChains(ctx, pool, VerifyFilter{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]ChainVerdict{}
		for _, v := range vs {
			m[v.ChainID] = v
			if !v.Result.OK || v.Removed != want[v.ChainID] {
				t.Errorf("chain %s: %s, %d removed; want OK with %d removed", short(v.ChainID), v.Result, v.Removed, want[v.ChainID])
			}
		}
		return m
	}
	m := verifyAll(map[string]uint64{closed.id: 23, live.id: 5})
	if r := m[live.id].Result; r.Unsigned != 3 || r.LastSeq != 10 {
		t.Errorf("live chain after removal: %+v", r)
	}

	// Redelivery of removed lines is acknowledged, not stored again; the
	// live chain goes on.
	if res := mustIngest(t, l, closed.request(closed.recs)); res.Stored != 0 || len(res.Refused) != 0 {
		t.Fatalf("redelivery after removal: %+v", res)
	}
	if res := mustIngest(t, l, live.request(live.lines(3, 13))); res.Stored != 3 || len(res.Refused) != 0 {
		t.Fatalf("live chain after removal: %+v", res)
	}
	verifyAll(map[string]uint64{closed.id: 23, live.id: 5})
	// A second run removes only what became due: live up to its new
	// checkpoint at 13.
	rep, err = RemoveExpired(ctx, pool, RetentionConfig{SigningKey: logbookKey, BatchSize: 10, Now: later})
	if err != nil || rep.Removed != 6 || rep.Chains != 1 {
		t.Fatalf("second run: %+v, %v; want seq 7-12 of the live chain", rep, err)
	}
	verifyAll(map[string]uint64{closed.id: 23, live.id: 11})

	// Tampering with the records.
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("UPDATE logbook_removals SET to_seq = to_seq + 1, count = count + 1 WHERE chain_id = $1 AND from_seq = 22", closed.id)
	vs, _ := VerifyChains(ctx, pool, VerifyFilter{Store: store})
	for _, v := range vs {
		if v.ChainID == closed.id && (v.Result.OK || v.Result.Reason != auditlog.ReasonBadSignature || !strings.Contains(v.Result.Detail, "not signed by a logbook key")) {
			t.Errorf("forged removal record: %s", v.Result)
		}
	}
	exec("DELETE FROM logbook_removals WHERE chain_id = $1 AND from_seq = 12", closed.id)
	vs, _ = VerifyChains(ctx, pool, VerifyFilter{Store: store})
	for _, v := range vs {
		if v.ChainID == closed.id && (v.Result.OK || v.Result.Reason != auditlog.ReasonDeleted || v.Result.BrokenSeq != 22) {
			t.Errorf("a removal record deleted: %s", v.Result)
		}
	}
	exec("DELETE FROM logbook_removals WHERE chain_id = $1", live.id)
	vs, _ = VerifyChains(ctx, pool, VerifyFilter{Store: store})
	for _, v := range vs {
		if v.ChainID == live.id && (v.Result.OK || v.Result.Reason != auditlog.ReasonDeleted || v.Result.BrokenSeq != 2) {
			t.Errorf("all removal records deleted: %s", v.Result)
		}
	}
}

func TestRemoveExpiredNeedsKey(t *testing.T) {
	_, pool := newLogbook(t)
	if _, err := RemoveExpired(context.Background(), pool, RetentionConfig{}); err == nil || !strings.Contains(err.Error(), "signing key") {
		t.Fatalf("no key: %v", err)
	}
	if _, err := RemoveExpired(context.Background(), pool, RetentionConfig{SigningKey: logbookKey, Period: "20 years"}); err == nil || !strings.Contains(err.Error(), "retention period") {
		t.Fatalf("bad period: %v", err)
	}
}
