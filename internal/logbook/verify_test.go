package logbook

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestVerifyChains verifies the chains of a store in the logbook, then
// breaks them in the database in the ways an attacker with database access
// could, and checks each is reported with its first break.
func TestVerifyChains(t *testing.T) {
	l, pool := newLogbook(t)
	ctx := context.Background()
	closed := writeChain(t, signingKey, store, 10) // 13 lines
	live := writeChain(t, signingKey, store, 10)
	foreign := writeChain(t, signingKey, "jeugd/dossiers", 3)
	mustIngest(t, l, closed.request(closed.recs))
	mustIngest(t, l, live.request(live.lines(1, 10))) // events after the checkpoint at 7 unsigned
	mustIngest(t, l, auditlog.ExportRequest("jeugd/dossiers", "p", foreign.id, foreign.recs))

	verdicts, err := VerifyChains(ctx, pool, VerifyFilter{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if len(verdicts) != 2 {
		t.Fatalf("%d chains of %s, want 2", len(verdicts), store)
	}
	byID := map[string]ChainVerdict{}
	for _, v := range verdicts {
		byID[v.ChainID] = v
	}
	if r := byID[closed.id].Result; !r.OK || r.Events != 10 || r.LastSeq != 13 || r.Unsigned != 0 || r.ChainID != closed.id {
		t.Errorf("closed chain: %+v", r)
	}
	if r := byID[live.id].Result; !r.OK || r.LastSeq != 10 || r.Unsigned != 3 || r.LastCheckpointSeq != 7 {
		t.Errorf("live chain: %+v", r)
	}
	// With the writers' interval, the live chain's tail (events of
	// 2026-09-01, never signed) is stale: not authenticated.
	stale, err := VerifyChains(ctx, pool, VerifyFilter{Store: store, MaxUnsignedAge: time.Minute,
		Now: func() time.Time { return time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range stale {
		switch {
		case v.ChainID == live.id && (v.Result.OK || v.Result.Reason != auditlog.ReasonUnsigned):
			t.Errorf("live chain with a stale unsigned tail: %s, want unsigned", v.Result)
		case v.ChainID == closed.id && !v.Result.OK:
			t.Errorf("closed chain with the age check: %s", v.Result)
		}
	}
	// The foreign store's chain has no key of that store: not verifiable.
	fv, err := VerifyChains(ctx, pool, VerifyFilter{Store: "jeugd/dossiers"})
	if err != nil || len(fv) != 1 || fv[0].Result.OK || fv[0].Result.Reason != auditlog.ReasonBadSignature {
		t.Errorf("chain without a key: %+v, %v", fv, err)
	}
	// Time range.
	if v, _ := VerifyChains(ctx, pool, VerifyFilter{Store: store, Since: time.Now().Add(time.Hour)}); len(v) != 0 {
		t.Errorf("since an hour from now: %d chains, want 0", len(v))
	}
	if v, _ := VerifyChains(ctx, pool, VerifyFilter{Store: store, Until: time.Now().Add(time.Hour), Since: time.Now().Add(-time.Hour)}); len(v) != 2 {
		t.Errorf("the last hour: %d chains, want 2", len(v))
	}

	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	check := func(name string, id string, reason auditlog.Reason, seq uint64, detail string) {
		t.Helper()
		verdicts, err := VerifyChains(ctx, pool, VerifyFilter{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range verdicts {
			if v.ChainID != id {
				continue
			}
			r := v.Result
			if r.OK || r.Reason != reason || r.BrokenSeq != seq || !strings.Contains(r.Detail, detail) {
				t.Errorf("%s: %s, want %s at seq %d with %q", name, r, reason, seq, detail)
			}
			return
		}
		t.Errorf("%s: chain not found", name)
	}
	// A deleted line in the middle.
	exec("DELETE FROM logbook_records WHERE chain_id = $1 AND seq = 5", closed.id)
	check("deleted line", closed.id, auditlog.ReasonDeleted, 5, "seq 5 is missing")
	// The last lines deleted: the head says more was stored.
	exec("DELETE FROM logbook_records WHERE chain_id = $1 AND seq >= 9", live.id)
	check("cut chain", live.id, auditlog.ReasonTruncated, 9, "stored up to seq 10")
	// A line replaced (delete and insert, as the trigger forbids UPDATE)
	// with a forged line that keeps the chain: the checkpoint after it no
	// longer verifies.
	forged := forge(t, closed.recs[4], `"coach-0042"`, `"coach-0666"`)
	exec(`INSERT INTO logbook_records (chain_id, seq, type, hash, prev, time, store, line) VALUES ($1, 5, 'event', $2, $3, now(), $4, $5)`,
		closed.id, forged.Hash, forged.Prev, store, string(forged.Line))
	check("forged line", closed.id, auditlog.ReasonEdited, 5, "")
}

// TestVerifyChainsReportsRefusals: a chain for which a line was refused on
// receipt is broken at that line, even though what was stored verifies.
func TestVerifyChainsReportsRefusals(t *testing.T) {
	l, pool := newLogbook(t)
	c := writeChain(t, signingKey, store, 10)
	mustIngest(t, l, c.request(c.lines(1, 4)))
	mustIngest(t, l, c.request(c.lines(6, 7))) // gap
	v, err := VerifyChains(context.Background(), pool, VerifyFilter{Store: store})
	if err != nil || len(v) != 1 {
		t.Fatalf("%+v, %v", v, err)
	}
	if r := v[0].Result; r.OK || r.Reason != auditlog.Reason(ReasonGap) || r.BrokenSeq != 6 || !strings.Contains(r.Detail, "refused this line on receipt") {
		t.Errorf("%s, want gap at seq 6", r)
	}
}

func TestQueryDossier(t *testing.T) {
	l, pool := newLogbook(t)
	ctx := context.Background()
	a := writeChain(t, signingKey, store, 20) // subjects i%3
	b := writeChain(t, signingKey, store, 6)
	mustIngest(t, l, a.request(a.recs))
	mustIngest(t, l, b.request(b.recs))
	subject := auditlog.Pseudonymise(pseudoKey, "client-1")
	got, err := QueryDossier(ctx, pool, QueryFilter{Store: store, DataSubject: subject})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7+2 { // i = 1, 4, ..., 19 in a; 1, 4 in b
		t.Fatalf("%d accesses, want 9", len(got))
	}
	for i, x := range got {
		if x.DataSubject != subject || x.Actor != "coach-0042" || x.Pod != "wijkteam-dossiers-0" || len(x.Categories) != 2 {
			t.Errorf("access %d: %+v", i, x)
		}
		if i > 0 && x.Time.Before(got[i-1].Time) {
			t.Errorf("access %d is older than the one before it", i)
		}
	}
	// Time range: events of a and b are at 08:30:00 + i seconds.
	base := time.Date(2026, 9, 1, 8, 30, 0, 0, time.UTC)
	got, err = QueryDossier(ctx, pool, QueryFilter{Store: store, DataSubject: subject, Since: base.Add(4 * time.Second), Until: base.Add(11 * time.Second)})
	if err != nil || len(got) != 3+1 { // a: 4, 7, 10; b: 4
		t.Fatalf("range: %d accesses, %v; want 4", len(got), err)
	}
	if got, _ := QueryDossier(ctx, pool, QueryFilter{Store: "jeugd/dossiers", DataSubject: subject}); len(got) != 0 {
		t.Errorf("other store: %d accesses, want 0", len(got))
	}
}
