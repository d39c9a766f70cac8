package retention

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// at is testNow shifted by years, months and days.
func at(y, m, d int) *time.Time { return ptr(testNow.AddDate(y, m, d)) }

// TestSweepDestroysDueKeepsNotDue: due rows are destroyed, rows not yet due
// (or without a clock) are kept, the report counts and hashes exactly the
// destroyed ones, and a second run (on a single pgx.Conn) destroys nothing.
func TestSweepDestroysDueKeepsNotDue(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	cutoff := Cutoff(testNow, "P5Y")
	rows := []dossier{
		{id: 1, lastContact: at(-10, 0, 0)},                            // due
		{id: 2, lastContact: at(-5, 0, -1)},                            // due by a day
		{id: 3, lastContact: ptr(cutoff.Add(-time.Microsecond))},       // due by a microsecond
		{id: 4, lastContact: ptr(cutoff)},                              // exactly at the cutoff: not due
		{id: 5, lastContact: at(-4, -11, 0)},                           // not due
		{id: 6, lastContact: at(0, 0, 0)},                              // not due
		{id: 7},                                                        // no clock: never due
		{id: 8, lastContact: at(-20, 0, 0), legalHold: ptr(false)},     // due
		{id: 9, lastContact: at(-20, 0, 0), legalHold: ptr(true)},      // held
		{id: 10, lastContact: at(-6, 0, 0), retainUntil: at(1, 0, 0)},  // held by extension
		{id: 11, lastContact: at(-6, 0, 0), retainUntil: at(-1, 0, 0)}, // extension passed: due
	}
	for i := range rows {
		rows[i].team = "wijkteam-noord"
		rows[i].name = ptr(fmt.Sprintf("Client %d", rows[i].id))
	}
	for id := int64(100); id < 350; id++ { // enough for several batches
		rows = append(rows, dossier{id: id, lastContact: at(-6, 0, int(-id)), team: "cjg"})
	}
	table := createDossiers(t, pool, schema, rows)

	cfg := Config{Rules: []v1alpha1.RetentionRule{dossierRule(table)}, BatchSize: 40, Now: fixedNow(testNow)}
	rep := mustRun(t, pool, cfg)

	var due []int64
	for _, r := range rows {
		if d, _ := oracle(r, testNow, "P5Y"); d {
			due = append(due, r.id)
		}
	}
	left := ids(t, pool, table)
	for _, r := range rows {
		d, _ := oracle(r, testNow, "P5Y")
		if d && left[r.id] {
			t.Errorf("due row %d was kept", r.id)
		}
		if !d && !left[r.id] {
			t.Errorf("row %d, not due, was destroyed", r.id)
		}
	}
	rr := rep.Rules[0]
	if rep.Result != v1alpha1.RunSucceeded || rr.Destroyed != int64(len(due)) || rr.Held != 2 || rr.Overdue != 0 || rr.Anonymised != 0 {
		t.Errorf("report: result %s, destroyed %d (want %d), held %d (want 2), overdue %d, anonymised %d",
			rep.Result, rr.Destroyed, len(due), rr.Held, rr.Overdue, rr.Anonymised)
	}
	if rr.NoClock != 1 { // row 7: never due, but counted
		t.Errorf("no-clock count %d; want 1 (row 7)", rr.NoClock)
	}
	if sum := rep.Summary(); sum.NoClock != 1 || sum.Rules[0].NoClock != 1 {
		t.Errorf("summary no-clock %d (rule %d); want 1", sum.NoClock, sum.Rules[0].NoClock)
	}
	// A batch changes at most BatchSize records and examines at least
	// BatchSize keys (all but the last).
	if least, most := (len(due)+cfg.BatchSize-1)/cfg.BatchSize, (len(rows)+cfg.BatchSize-1)/cfg.BatchSize; rr.Batches < least || rr.Batches > most {
		t.Errorf("batches %d; want %d to %d", rr.Batches, least, most)
	}
	if !sameSet(rr.RecordHashes, hashes(table, due)) {
		t.Errorf("record hashes are not those of the destroyed rows")
	}
	if !rr.Cutoff.Equal(cutoff) || !rep.AsOf.Equal(testNow) || rep.LongestBatch <= 0 || rep.End.Before(rep.Start) {
		t.Errorf("cutoff %s, asOf %s, longest batch %s, start %s, end %s", rr.Cutoff, rep.AsOf, rep.LongestBatch, rep.Start, rep.End)
	}
	if s := reportJSON(t, rep); strings.Contains(s, "Client") || strings.Contains(s, "wijkteam-noord") {
		t.Errorf("personal data in the report: %s", s)
	}

	// Idempotent, and a single connection works as well as a pool.
	before := checksum(t, pool, table)
	conn, err := pgx.Connect(t.Context(), testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	again := mustRun(t, conn, cfg)
	if r := again.Rules[0]; again.Result != v1alpha1.RunSucceeded || r.Destroyed != 0 || r.Batches == 0 || len(r.RecordHashes) != 0 || r.Held != 2 || r.Overdue != 0 {
		t.Errorf("second run (want batches that destroy nothing): %+v", again)
	}
	if after := checksum(t, pool, table); after != before {
		t.Error("the second run changed the table")
	}
}

// TestLegalHoldNeverDestroyedProperty is a property test over random data:
// whatever the clocks, holds, extensions, time zone and batch size, every
// held row survives, every row left that is not held is not due, exactly the
// due rows are destroyed, and the report's counts and hashes agree.
func TestLegalHoldNeverDestroyedProperty(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	periods := []v1alpha1.RetentionPeriod{"P5Y", "P20Y", "P6M", "P4W", "P30D"}
	for round := range 6 {
		// A now late in the evening in UTC is already the next day in
		// Amsterdam: date comparisons follow now's location.
		now := time.Date(2026, time.Month(1+rnd.IntN(12)), 1+rnd.IntN(28), rnd.IntN(24), rnd.IntN(60), 0, 0, time.UTC)
		if rnd.IntN(2) == 0 {
			now = now.In(ams)
		}
		period := periods[rnd.IntN(len(periods))]
		batch := []int{1, 7, 50, 500}[rnd.IntN(4)]
		cutoff := Cutoff(now, period)
		span := now.Sub(cutoff)
		n := 1200
		if batch == 1 {
			n = 300
		}
		rows := make([]dossier, n)
		for i := range rows {
			r := dossier{id: int64(i*3 + rnd.IntN(3)), team: "t"}
			switch rnd.IntN(20) {
			case 0: // no clock
			case 1: // on the boundary, to the microsecond
				r.lastContact = ptr(cutoff.Add(time.Duration(rnd.IntN(3)-1) * time.Microsecond))
			default: // up to twice the period ago
				r.lastContact = ptr(now.Add(-time.Duration(rnd.Int64N(int64(2 * span)))).Truncate(time.Microsecond))
			}
			switch rnd.IntN(3) {
			case 0:
				r.legalHold = ptr(true)
			case 1:
				r.legalHold = ptr(false)
			}
			if rnd.IntN(2) == 0 {
				r.retainUntil = ptr(now.AddDate(0, 0, rnd.IntN(41)-20))
			}
			rows[i] = r
		}
		schema := testenv.NewSchema(t, pool, "rt_")
		table := createDossiers(t, pool, schema, rows)
		rule := dossierRule(table)
		rule.Period = period
		cfg := Config{Rules: []v1alpha1.RetentionRule{rule}, BatchSize: batch, Now: fixedNow(now)}
		rep := mustRun(t, pool, cfg)

		left := ids(t, pool, table)
		var due []int64
		var held int64
		for _, r := range rows {
			d, h := oracle(r, now, period)
			isHeld := (r.legalHold != nil && *r.legalHold) ||
				(r.retainUntil != nil && !pgDate(*r.retainUntil).Before(pgDate(now)))
			if isHeld && !left[r.id] {
				t.Errorf("round %d (now %s, %s, batch %d): held row %+v was destroyed", round, now, period, batch, r)
			}
			if left[r.id] && !isHeld && d {
				t.Errorf("round %d: row %d is left but due", round, r.id)
			}
			if !d && !left[r.id] {
				t.Errorf("round %d: row %d, not due, was destroyed", round, r.id)
			}
			if d {
				due = append(due, r.id)
			}
			if h {
				held++
			}
		}
		rr := rep.Rules[0]
		if rr.Destroyed != int64(len(due)) || rr.Held != held || rr.Overdue != 0 || !sameSet(rr.RecordHashes, hashes(table, due)) {
			t.Errorf("round %d: report destroyed %d held %d overdue %d; want %d, %d, 0 and matching hashes",
				round, rr.Destroyed, rr.Held, rr.Overdue, len(due), held)
		}
		if again := mustRun(t, pool, cfg); again.Rules[0].Destroyed != 0 {
			t.Errorf("round %d: second run destroyed %d", round, again.Rules[0].Destroyed)
		}
		t.Logf("round %d: now %s, %s, batch %d: %d rows, %d destroyed, %d held", round, now.Format(time.RFC3339), period, batch, n, len(due), held)
	}
}

// TestExtensionRespected: a record is kept until its extension date
// (inclusive) or extension moment has passed, for date and timestamp
// columns.
func TestExtensionRespected(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	// Late evening UTC: in Amsterdam it is already the next day, so "today"
	// is 16 June there.
	now := time.Date(2026, 6, 15, 23, 30, 0, 0, time.UTC)
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	execSQL(t, pool, `CREATE TABLE `+schema+`.cases (id int PRIMARY KEY, closed_on date NOT NULL, keep_until date, keep_until_ts timestamptz)`)
	execSQL(t, pool, `INSERT INTO `+schema+`.cases VALUES
		(1, '2001-01-01', NULL, NULL),        -- no extension: destroyed
		(2, '2001-01-01', '2026-06-14', NULL), -- passed: destroyed
		(3, '2001-01-01', '2026-06-15', NULL), -- today in UTC, yesterday in Amsterdam
		(4, '2001-01-01', '2026-06-16', NULL), -- tomorrow in UTC, today in Amsterdam: kept
		(5, '2001-01-01', '2027-01-01', NULL), -- kept
		(6, '2001-01-01', NULL, '2026-06-15T22:30:00Z'), -- an hour ago: destroyed
		(7, '2001-01-01', NULL, '2026-06-16T00:30:00Z'), -- in an hour: kept
		(8, '2026-01-01', NULL, NULL)         -- not due at all`)
	rule := func(ext v1alpha1.SQLIdentifier) v1alpha1.RetentionRule {
		return v1alpha1.RetentionRule{
			Name: "cases", Table: v1alpha1.SQLTableName(schema + ".cases"), Period: "P20Y",
			Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_on"},
			ExtensionColumn: ext,
		}
	}
	// The date extension, in Amsterdam: 3 has passed there, 4 is today.
	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{rule("keep_until")}, Now: fixedNow(now.In(ams))})
	if got, want := ids(t, pool, schema+".cases"), []int64{4, 5, 8}; !sameIDs(got, want) {
		t.Errorf("after the date extension rule: %v; want %v", keys(got), want)
	}
	if r := rep.Rules[0]; r.Destroyed != 5 || r.Held != 2 {
		t.Errorf("destroyed %d held %d; want 5 (1, 2, 3, 6, 7) and 2 (4, 5)", r.Destroyed, r.Held)
	}
	// The timestamp extension on what is left, with the extension of 4 and
	// 5 moved to the timestamp column.
	execSQL(t, pool, `UPDATE `+schema+`.cases SET keep_until_ts = '2026-06-16T00:30:00Z' WHERE id IN (4, 5)`)
	execSQL(t, pool, `INSERT INTO `+schema+`.cases VALUES (6, '2001-01-01', NULL, '2026-06-15T22:30:00Z'), (7, '2001-01-01', NULL, '2026-06-16T00:30:00Z')
		ON CONFLICT (id) DO NOTHING`)
	rep = mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{rule("keep_until_ts")}, Now: fixedNow(now)})
	if got, want := ids(t, pool, schema+".cases"), []int64{4, 5, 7, 8}; !sameIDs(got, want) {
		t.Errorf("after the timestamp extension rule: %v; want %v", keys(got), want)
	}
	if r := rep.Rules[0]; r.Destroyed != 1 || r.Held != 3 {
		t.Errorf("destroyed %d held %d; want 1 and 3", r.Destroyed, r.Held)
	}
}

func keys(m map[int64]bool) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sameIDs(got map[int64]bool, want []int64) bool {
	return slices.Equal(keys(got), want)
}

// TestAnonymise: due rows keep their row and other columns, but none of the
// anonymise columns' values; rows not due or held are untouched; a second
// run changes nothing.
func TestAnonymise(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	var rows []dossier
	for i := int64(1); i <= 230; i++ {
		r := dossier{id: i, lastContact: at(-6, 0, int(-i)), team: fmt.Sprintf("team-%d", i%7),
			name: ptr(fmt.Sprintf("Jansen %d", i)), bsn: ptr(fmt.Sprintf("%09d", 100000000+i)), notes: ptr("gesprek met moeder")}
		switch i % 10 {
		case 0:
			r.lastContact = at(-1, 0, 0) // not due
		case 1:
			r.legalHold = ptr(true) // held
		case 2:
			r.name = nil // partly anonymised already: still due
		case 3:
			r.name, r.bsn, r.notes = nil, nil, nil // nothing left to anonymise
		}
		rows = append(rows, r)
	}
	table := createDossiers(t, pool, schema, rows)
	untouched := func() string {
		return checksumOf(t, pool, table, "t", "id % 10 IN (0, 1, 3)")
	}
	keepBefore := untouched()
	otherBefore := checksumOf(t, pool, table, "row(id, last_contact_at, legal_hold, retain_until, team)", "true")

	rule := dossierRule(table)
	rule.Action = v1alpha1.ActionAnonymise
	rule.AnonymiseColumns = []v1alpha1.SQLIdentifier{"name", "bsn", "notes"}
	cfg := Config{Rules: []v1alpha1.RetentionRule{rule}, BatchSize: 25, Now: fixedNow(testNow)}
	rep := mustRun(t, pool, cfg)

	var due []int64
	for _, r := range rows {
		if r.id%10 != 0 && r.id%10 != 1 && r.id%10 != 3 {
			due = append(due, r.id)
		}
	}
	var total, left int
	err := pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE id % 10 NOT IN (0, 1, 3) AND
		(name IS NOT NULL OR bsn IS NOT NULL OR notes IS NOT NULL)) FROM `+table).Scan(&total, &left)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(rows) || left != 0 {
		t.Errorf("%d rows (want %d), %d due rows with values left (want 0)", total, len(rows), left)
	}
	if untouched() != keepBefore {
		t.Error("rows not due, held or already anonymised were changed")
	}
	if checksumOf(t, pool, table, "row(id, last_contact_at, legal_hold, retain_until, team)", "true") != otherBefore {
		t.Error("columns not listed were changed")
	}
	rr := rep.Rules[0]
	if rr.Anonymised != int64(len(due)) || rr.Destroyed != 0 || rr.Held != 23 || rr.Overdue != 0 || !sameSet(rr.RecordHashes, hashes(table, due)) {
		t.Errorf("report: anonymised %d (want %d), destroyed %d, held %d (want 23), overdue %d", rr.Anonymised, len(due), rr.Destroyed, rr.Held, rr.Overdue)
	}
	if s := reportJSON(t, rep); strings.Contains(s, "Jansen") || strings.Contains(s, "moeder") {
		t.Errorf("personal data in the report: %s", s)
	}
	before := checksum(t, pool, table)
	again := mustRun(t, pool, cfg)
	if r := again.Rules[0]; r.Anonymised != 0 || len(r.RecordHashes) != 0 || checksum(t, pool, table) != before {
		t.Errorf("second run anonymised %d in %d batches or changed the table", r.Anonymised, r.Batches)
	}
}

// checksumOf is the md5 of expr over the rows of table matching where, in id order.
func checksumOf(t testing.TB, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table, expr, where string) string {
	t.Helper()
	var sum string
	if err := pool.QueryRow(context.Background(), "SELECT md5(string_agg("+expr+"::text, ',' ORDER BY id)) FROM "+table+" t WHERE "+where).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestDryRunChangesNothing: the table is byte for byte the same after a
// dry run, which reports what it would destroy or anonymise and what is held.
func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	rnd := rand.New(rand.NewPCG(1, 2))
	var rows []dossier
	for i := int64(1); i <= 500; i++ {
		r := dossier{id: i, lastContact: at(-rnd.IntN(10), -rnd.IntN(12), 0), team: "t", name: ptr("Bakker")}
		if rnd.IntN(5) == 0 {
			r.legalHold = ptr(true)
		}
		if rnd.IntN(5) == 0 {
			r.retainUntil = at(0, 0, rnd.IntN(100)-50)
		}
		rows = append(rows, r)
	}
	table := createDossiers(t, pool, schema, rows)
	var due, held int64
	for _, r := range rows {
		d, h := oracle(r, testNow, "P5Y")
		if d {
			due++
		}
		if h {
			held++
		}
	}
	anon := dossierRule(table)
	anon.Name, anon.Action, anon.AnonymiseColumns = "anonymise", v1alpha1.ActionAnonymise, []v1alpha1.SQLIdentifier{"name"}

	before := checksum(t, pool, table)
	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{dossierRule(table), anon}, BatchSize: 10, DryRun: true, Now: fixedNow(testNow)})
	if after := checksum(t, pool, table); after != before {
		t.Errorf("the dry run changed the table: %s -> %s", before, after)
	}
	if rep.Result != v1alpha1.RunDryRun || !rep.DryRun || rep.LongestBatch != 0 {
		t.Errorf("result %s, dryRun %v, longest batch %s", rep.Result, rep.DryRun, rep.LongestBatch)
	}
	del, an := rep.Rules[0], rep.Rules[1]
	if del.WouldDestroy != due || del.Held != held || del.Overdue != due || del.Destroyed != 0 || del.Batches != 0 || len(del.RecordHashes) != 0 {
		t.Errorf("delete rule: %+v; want wouldDestroy = overdue = %d, held %d", del, due, held)
	}
	if an.WouldAnonymise != due || an.Held != held || an.Anonymised != 0 || an.WouldDestroy != 0 {
		t.Errorf("anonymise rule: %+v; want wouldAnonymise %d, held %d", an, due, held)
	}
	if due == 0 || held == 0 {
		t.Fatalf("test data has %d due and %d held rows", due, held)
	}
	if sum := rep.Summary(); sum.Result != v1alpha1.RunDryRun || sum.Overdue != 2*due || sum.Destroyed != 0 {
		t.Errorf("summary: %+v", sum)
	}

	// A cancelled dry run is interrupted, its counts unknown.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rep, err := Run(ctx, pool, Config{Rules: []v1alpha1.RetentionRule{dossierRule(table)}, DryRun: true, Now: fixedNow(testNow)})
	if err != nil || rep.Result != v1alpha1.RunInterrupted || rep.Rules[0].Overdue != Unknown {
		t.Errorf("cancelled dry run: %v, %s, overdue %d", err, rep.Result, rep.Rules[0].Overdue)
	}
	if after := checksum(t, pool, table); after != before {
		t.Error("the cancelled dry run changed the table")
	}
}

// TestCancelFinishesCurrentBatch: a context cancelled in the middle of a
// batch lets that batch commit, starts no other, and gives Interrupted.
func TestCancelFinishesCurrentBatch(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	var rows []dossier
	for i := int64(1); i <= 100; i++ {
		rows = append(rows, dossier{id: i, lastContact: at(-6, 0, 0), team: "t"})
	}
	table := createDossiers(t, pool, schema, rows)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	second := dossierRule(table)
	second.Name = "second"
	cfg := Config{
		Rules: []v1alpha1.RetentionRule{dossierRule(table), second}, BatchSize: 10, Now: fixedNow(testNow),
		afterBatch: func(rule, batch int) {
			if batch == 3 {
				cancel() // in the middle of batch 3: after its DELETE, before its COMMIT
			}
		},
	}
	rep, err := Run(ctx, pool, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Result != v1alpha1.RunInterrupted || !strings.Contains(rep.Message, "cancelled") {
		t.Errorf("result %s (%s); want Interrupted", rep.Result, rep.Message)
	}
	r, s := rep.Rules[0], rep.Rules[1]
	if r.Destroyed != 30 || r.Batches != 3 || len(r.RecordHashes) != 30 || r.Overdue != Unknown || r.Held != Unknown {
		t.Errorf("first rule: destroyed %d in %d batches, %d hashes, overdue %d, held %d; want 30 in 3, 30, unknown",
			r.Destroyed, r.Batches, len(r.RecordHashes), r.Overdue, r.Held)
	}
	if s.Batches != 0 || s.Destroyed != 0 {
		t.Errorf("second rule ran after the cancellation: %+v", s)
	}
	var want []int64
	for i := int64(31); i <= 100; i++ {
		want = append(want, i)
	}
	if got := ids(t, pool, table); !sameIDs(got, want) {
		t.Errorf("left %v; want 31..100 (three whole batches destroyed)", keys(got))
	}
	if sum := rep.Summary(); sum.Overdue != Unknown || sum.Destroyed != 30 {
		t.Errorf("summary: overdue %d destroyed %d", sum.Overdue, sum.Destroyed)
	}
}

// TestMaxRunTimeInterrupts: once MaxRunTime has passed no batch (and no
// count) starts; the batches done are whole.
func TestMaxRunTimeInterrupts(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	var rows []dossier
	for i := int64(1); i <= 100; i++ {
		rows = append(rows, dossier{id: i, lastContact: at(-6, 0, 0), team: "t"})
	}
	table := createDossiers(t, pool, schema, rows)
	rep := mustRun(t, pool, Config{
		Rules: []v1alpha1.RetentionRule{dossierRule(table)}, BatchSize: 10, Now: fixedNow(testNow),
		MaxRunTime: 250 * time.Millisecond, batchDelay: 100 * time.Millisecond,
	})
	r := rep.Rules[0]
	if rep.Result != v1alpha1.RunInterrupted || !strings.Contains(rep.Message, "maxRunTime 250ms exceeded") {
		t.Errorf("result %s (%s); want Interrupted by maxRunTime", rep.Result, rep.Message)
	}
	if r.Destroyed == 0 || r.Destroyed >= 100 || r.Destroyed%10 != 0 || r.Overdue != Unknown || len(r.RecordHashes) != int(r.Destroyed) {
		t.Errorf("destroyed %d, overdue %d, %d hashes: want whole batches, some but not all, overdue unknown", r.Destroyed, r.Overdue, len(r.RecordHashes))
	}
	if left := len(ids(t, pool, table)); int64(left) != 100-r.Destroyed {
		t.Errorf("%d rows left; want %d", left, 100-r.Destroyed)
	}
	if rep.LongestBatch < 100*time.Millisecond {
		t.Errorf("longest batch %s; the batch delay is 100ms", rep.LongestBatch)
	}
}

// TestQuotedIdentifiers: reserved words as table and column names (valid in
// the API, a syntax error unless quoted) work through ConfigFromSpec, and a
// name no policy could hold still reaches only its own table.
func TestQuotedIdentifiers(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	execSQL(t, pool, `CREATE TABLE `+schema+`."select" ("limit" bigint PRIMARY KEY, "end" timestamptz, "all" boolean, "check" date, "user" text, "order" text)`)
	execSQL(t, pool, `INSERT INTO `+schema+`."select" VALUES
		(1, '2001-01-01', NULL, NULL, 'Jansen', 'x'),
		(2, '2001-01-01', true, NULL, 'de Vries', 'y'),
		(3, '2001-01-01', false, '2099-01-01', 'Bakker', 'z'),
		(4, '2026-01-01', NULL, NULL, 'Visser', 'w'),
		(5, '2001-01-01', false, '2001-01-02', 'Smit', 'v')`)
	spec := validSpec()
	spec.BatchSize = 1 // batches of 1, 1 and 4 keys, each after the previous range
	spec.TimeZone = "UTC"
	spec.Rules = []v1alpha1.RetentionRule{{
		Name: "select", Table: v1alpha1.SQLTableName(schema + ".select"), IDColumn: "limit",
		Clock:  v1alpha1.RetentionClock{Event: v1alpha1.ClockCreation, Column: "end"},
		Period: "P20Y", LegalHoldColumn: "all", ExtensionColumn: "check",
		Action: v1alpha1.ActionAnonymise, AnonymiseColumns: []v1alpha1.SQLIdentifier{"user", "order"},
	}}
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		t.Fatalf("ConfigFromSpec: %v", err)
	}
	rep := mustRun(t, pool, cfg)
	if r := rep.Rules[0]; rep.Result != v1alpha1.RunSucceeded || r.Anonymised != 2 || r.Held != 2 || r.Batches != 3 {
		t.Fatalf("report: %s %+v", rep.Result, r)
	}
	var cleared []int64
	rows, _ := pool.Query(t.Context(), `SELECT "limit" FROM `+schema+`."select" WHERE "user" IS NULL AND "order" IS NULL ORDER BY 1`)
	cleared, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || !slices.Equal(cleared, []int64{1, 5}) {
		t.Errorf("anonymised rows %v (%v); want [1 5]", cleared, err)
	}

	// A name that no policy could hold (ConfigFromSpec rejects it), with a
	// text key full of quotes: only quoting and parameters keep the victim
	// table alive.
	victim := testenv.RandomName("victim_") // in public, where an injected DROP would find it
	hostile := `Dossiers"; DROP TABLE ` + victim + `; --`
	clock := `Last "Contact"`
	key := `Id'`
	execSQL(t, pool, `CREATE TABLE public.`+victim+` (id int)`)
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS public.`+victim) })
	execSQL(t, pool, `CREATE TABLE `+pgx.Identifier{schema, hostile}.Sanitize()+` (`+pgx.Identifier{key}.Sanitize()+` text PRIMARY KEY, `+
		pgx.Identifier{clock}.Sanitize()+` timestamptz)`)
	execSQL(t, pool, `INSERT INTO `+pgx.Identifier{schema, hostile}.Sanitize()+` VALUES
		($1, '2001-01-01'), ($2, '2001-01-01'), ($3, '2001-01-01'), ('kept', now())`,
		`a'); DROP TABLE `+victim+`; --`, `b" OR TRUE --`, `c$1`)
	rule := v1alpha1.RetentionRule{
		Name: "hostile", Table: v1alpha1.SQLTableName(schema + "." + hostile), IDColumn: v1alpha1.SQLIdentifier(key),
		Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockCreation, Column: v1alpha1.SQLIdentifier(clock)}, Period: "P1Y",
	}
	if _, err := ConfigFromSpec(v1alpha1.RetentionPolicySpec{Rules: []v1alpha1.RetentionRule{rule}}); err == nil ||
		!strings.Contains(err.Error(), "spec.rules[0].table:") || !strings.Contains(err.Error(), "spec.rules[0].clock.column:") {
		t.Errorf("ConfigFromSpec accepted or misreported a hostile name: %v", err)
	}
	rep = mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{rule}, BatchSize: 1, Now: fixedNow(testNow)})
	if r := rep.Rules[0]; r.Destroyed != 3 || r.Overdue != 0 {
		t.Errorf("hostile table: destroyed %d overdue %d; want 3, 0", r.Destroyed, r.Overdue)
	}
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{schema, hostile}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Errorf("hostile table has %d rows (%v); want 1", n, err)
	}
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM public.`+victim).Scan(&n); err != nil {
		t.Errorf("the victim table is gone: %v", err)
	}
}

// TestFailureReportsNoDriverMessage: a rule that fails (missing table, a NOT
// NULL column to anonymise) fails the run but not the other rules; the
// error wraps the driver's, the report holds only the SQLSTATE, never the
// driver's message (which quotes the failing row's data).
func TestFailureReportsNoDriverMessage(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	table := createDossiers(t, pool, schema, []dossier{
		{id: 1, lastContact: at(-6, 0, 0), team: "Jansen-team", name: ptr("Jansen")},
		{id: 2, lastContact: at(-6, 0, 0), team: "Jansen-team", name: ptr("Jansen")},
	})
	missing := dossierRule(schema + ".nosuchtable")
	missing.Name = "missing"
	notNull := dossierRule(table)
	notNull.Name, notNull.Action, notNull.AnonymiseColumns = "notnull", v1alpha1.ActionAnonymise, []v1alpha1.SQLIdentifier{"team"}
	good := dossierRule(table)
	rep, err := Run(t.Context(), pool, Config{Rules: []v1alpha1.RetentionRule{missing, notNull, good}, Now: fixedNow(testNow)})
	if err == nil {
		t.Fatal("Run: no error")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Errorf("the error does not wrap the driver's: %v", err)
	}
	if !strings.Contains(err.Error(), `rule "missing" (rules[0]): batch 1:`) || !strings.Contains(err.Error(), `rule "notnull" (rules[1])`) {
		t.Errorf("the error does not name the rules: %v", err)
	}
	if rep.Result != v1alpha1.RunFailed || rep.Message != "2 of 3 rules failed" {
		t.Errorf("result %s (%s); want Failed", rep.Result, rep.Message)
	}
	if e := rep.Rules[0].Error; e != "batch 1: database error, SQLSTATE 42P01" {
		t.Errorf("missing table: %q", e)
	}
	if e := rep.Rules[1].Error; e != "batch 1: database error, SQLSTATE 23502" {
		t.Errorf("not null: %q", e)
	}
	if r := rep.Rules[1]; r.Overdue != 2 || r.Anonymised != 0 {
		t.Errorf("the failed batch must be rolled back and counted overdue: %+v", r)
	}
	if r := rep.Rules[2]; r.Destroyed != 2 || r.Error != "" {
		t.Errorf("the good rule did not run: %+v", r)
	}
	s := reportJSON(t, rep)
	for _, leak := range []string{"Jansen", "does not exist", "violates", "Failing row", "127.0.0.1", "postgres://"} {
		if strings.Contains(s, leak) {
			t.Errorf("the report holds %q: %s", leak, s)
		}
	}
}

// TestPartitionedAndInheritedTables: a partitioned table and a table with
// inheritance children are swept through the key, never by ctid (which
// repeats across partitions and children): exactly the due rows go, in every
// partition and child, and the same ctid elsewhere is kept.
func TestPartitionedAndInheritedTables(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	execSQL(t, pool, `CREATE TABLE `+schema+`.parted (id bigint, last_contact_at timestamptz NOT NULL, legal_hold boolean,
		PRIMARY KEY (id, last_contact_at)) PARTITION BY RANGE (last_contact_at)`)
	execSQL(t, pool, `CREATE TABLE `+schema+`.parted_old PARTITION OF `+schema+`.parted FOR VALUES FROM (MINVALUE) TO ('2022-01-01')`)
	execSQL(t, pool, `CREATE TABLE `+schema+`.parted_new PARTITION OF `+schema+`.parted FOR VALUES FROM ('2022-01-01') TO (MAXVALUE)`)
	execSQL(t, pool, `CREATE TABLE `+schema+`.base (id bigint PRIMARY KEY, last_contact_at timestamptz NOT NULL, legal_hold boolean)`)
	execSQL(t, pool, `CREATE TABLE `+schema+`.child () INHERITS (`+schema+`.base)`)
	execSQL(t, pool, `CREATE TABLE `+schema+`.plain (id bigint PRIMARY KEY, last_contact_at timestamptz NOT NULL, legal_hold boolean)`)
	execSQL(t, pool, `CREATE VIEW `+schema+`.aview AS SELECT * FROM `+schema+`.plain`)
	// Per table 200 rows: in parted_old and base the odd ids are due, the
	// even ones held; parted_new and child hold rows that are not due at the
	// same ctids.
	for _, q := range []string{
		`INSERT INTO ` + schema + `.parted SELECT i, '2001-01-01', i % 2 = 0 FROM generate_series(1, 200) i`,
		`INSERT INTO ` + schema + `.parted SELECT i, '2026-01-01', false FROM generate_series(1001, 1200) i`,
		`INSERT INTO ` + schema + `.base SELECT i, '2001-01-01', i % 2 = 0 FROM generate_series(1, 200) i`,
		`INSERT INTO ` + schema + `.child SELECT i, '2026-01-01', false FROM generate_series(1001, 1200) i`,
		`INSERT INTO ` + schema + `.child SELECT i, '2001-01-01', false FROM generate_series(2001, 2010) i`,
	} {
		execSQL(t, pool, q)
	}
	kind := func(table string) bool {
		st := newRuleSQL(v1alpha1.RetentionRule{Table: v1alpha1.SQLTableName(table)}).tableKind()
		var byCtid bool
		if err := pool.QueryRow(t.Context(), st.sql, st.args...).Scan(&byCtid); err != nil {
			t.Fatalf("table kind of %s: %v", table, err)
		}
		return byCtid
	}
	for table, want := range map[string]bool{
		"plain": true, "parted": false, "parted_old": true, "base": false, "child": true, "aview": false, "missing": false,
	} {
		if got := kind(schema + "." + table); got != want {
			t.Errorf("by ctid in %s: %v; want %v", table, got, want)
		}
	}

	rule := func(table string) v1alpha1.RetentionRule {
		return v1alpha1.RetentionRule{
			Name: table, Table: v1alpha1.SQLTableName(schema + "." + table), Period: "P5Y",
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact_at"}, LegalHoldColumn: "legal_hold",
		}
	}
	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{rule("parted"), rule("base")}, BatchSize: 30, Now: fixedNow(testNow)})
	if p, b := rep.Rules[0], rep.Rules[1]; p.Destroyed != 100 || p.Held != 100 || b.Destroyed != 110 || b.Held != 100 || p.Overdue != 0 || b.Overdue != 0 {
		t.Errorf("parted: destroyed %d held %d; base: destroyed %d held %d; want 100/100 and 110/100", p.Destroyed, p.Held, b.Destroyed, b.Held)
	}
	for table, want := range map[string]int{"parted_old": 100, "parted_new": 200, "ONLY " + schema + ".base": 100, "child": 200} {
		if !strings.HasPrefix(table, "ONLY") {
			table = schema + "." + table
		}
		var n, due int
		if err := pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE last_contact_at < '2021-01-01' AND legal_hold IS NOT TRUE) FROM `+table).Scan(&n, &due); err != nil {
			t.Fatal(err)
		}
		if n != want || due != 0 {
			t.Errorf("%s: %d rows, %d due; want %d and 0", table, n, due, want)
		}
	}
}

// TestHoldSetConcurrentlyIsHonoured: a legal hold that another transaction
// is setting while the sweeper runs keeps the row, whether the sweeper skips
// the locked row or waits for it; for ordinary and partitioned tables.
func TestHoldSetConcurrentlyIsHonoured(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	ctx := context.Background()
	for _, partitioned := range []bool{false, true} {
		schema := testenv.NewSchema(t, pool, "rt_")
		table := schema + ".cases"
		if partitioned {
			execSQL(t, pool, `CREATE TABLE `+table+` (id int, closed_on date NOT NULL, legal_hold boolean, PRIMARY KEY (id, closed_on)) PARTITION BY RANGE (closed_on)`)
			execSQL(t, pool, `CREATE TABLE `+schema+`.cases_old PARTITION OF `+table+` FOR VALUES FROM ('1900-01-01') TO ('2100-01-01')`)
		} else {
			execSQL(t, pool, `CREATE TABLE `+table+` (id int PRIMARY KEY, closed_on date NOT NULL, legal_hold boolean)`)
		}
		execSQL(t, pool, `INSERT INTO `+table+` SELECT g, '2001-01-01', false FROM generate_series(1, 10) g`)
		// Another transaction puts record 5 on hold and keeps its lock.
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET legal_hold = true WHERE id = 5`); err != nil {
			t.Fatal(err)
		}
		done := make(chan Report)
		go func() {
			done <- mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{{
				Name: "cases", Table: v1alpha1.SQLTableName(table), Period: "P20Y",
				Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_on"},
				LegalHoldColumn: "legal_hold",
			}}, BatchSize: 100, Now: fixedNow(testNow)})
		}()
		time.Sleep(300 * time.Millisecond) // the sweeper meets record 5's lock
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		<-done
		if got := ids(t, pool, table); !sameIDs(got, []int64{5}) {
			t.Errorf("partitioned=%v: left %v; want only the record put on hold, 5", partitioned, keys(got))
		}
	}
}

// TestEndOfInvolvementRule: a P0D rule destroys the records whose
// involvement ended before now, keeps those still open (empty clock, counted
// as NoClock) and a held one, and a record whose end lies ahead.
func TestEndOfInvolvementRule(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	rows := []dossier{
		{id: 1, lastContact: at(0, 0, -1)},                   // ended yesterday: due
		{id: 2, lastContact: ptr(testNow.Add(-time.Second))}, // ended a second ago: due
		{id: 3, lastContact: ptr(testNow)},                   // ends now: not yet
		{id: 4, lastContact: at(0, 0, 1)},                    // ends tomorrow: kept
		{id: 5},                                              // still open: kept, counted
		{id: 6},                                              // still open: kept, counted
		{id: 7, lastContact: at(-1, 0, 0), legalHold: ptr(true)},     // held
		{id: 8, lastContact: at(-1, 0, 0), retainUntil: at(0, 1, 0)}, // extended
	}
	for i := range rows {
		rows[i].team = "veilig-thuis"
	}
	table := createDossiers(t, pool, schema, rows)
	rule := dossierRule(table)
	rule.Period, rule.Clock.Event = v1alpha1.EndOfInvolvement, v1alpha1.ClockEndOfHelp
	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{rule}, Now: fixedNow(testNow)})
	if got := ids(t, pool, table); !sameIDs(got, []int64{3, 4, 5, 6, 7, 8}) {
		t.Errorf("left %v; want 3 4 5 6 7 8", keys(got))
	}
	rr := rep.Rules[0]
	if rr.Destroyed != 2 || rr.Held != 2 || rr.Overdue != 0 || rr.NoClock != 2 || !rr.Cutoff.Equal(testNow) {
		t.Errorf("report %+v; want 2 destroyed, 2 held, 0 overdue, 2 without a clock, cutoff now", rr)
	}
}

// TestBatchRangesCoverEveryKey: batches are ranges of keys, each starting
// after the previous range's last key. A key that two records share (the id
// of a partitioned table whose primary key adds the partition column) is
// never split between batches, so no record is passed over at a batch's
// edge; a uuid key works; a record the application updates during the sweep
// is still examined under its key, and one inserted ahead of the sweep is
// destroyed by the same sweep, while one inserted behind it is left overdue
// for the next.
func TestBatchRangesCoverEveryKey(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	ctx := t.Context()
	rule := func(table string) v1alpha1.RetentionRule {
		return v1alpha1.RetentionRule{
			Name: "cases", Table: v1alpha1.SQLTableName(table), Period: "P20Y",
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_on"},
		}
	}

	// Every id twice, once in each partition, all due.
	for _, batch := range []int{1, 2, 5} {
		schema := testenv.NewSchema(t, pool, "rt_")
		table := schema + ".cases"
		execSQL(t, pool, `CREATE TABLE `+table+` (id int, closed_on date NOT NULL, PRIMARY KEY (id, closed_on)) PARTITION BY RANGE (closed_on)`)
		execSQL(t, pool, `CREATE TABLE `+schema+`.cases_a PARTITION OF `+table+` FOR VALUES FROM ('1900-01-01') TO ('2000-01-01')`)
		execSQL(t, pool, `CREATE TABLE `+schema+`.cases_b PARTITION OF `+table+` FOR VALUES FROM ('2000-01-01') TO ('2100-01-01')`)
		execSQL(t, pool, `INSERT INTO `+table+` SELECT g, d FROM generate_series(1, 12) g, (VALUES (DATE '1990-01-01'), (DATE '2001-01-01')) v(d)`)
		rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{rule(table)}, BatchSize: batch, Now: fixedNow(testNow)})
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if r := rep.Rules[0]; left != 0 || r.Destroyed != 24 || r.Overdue != 0 || len(r.RecordHashes) != 24 {
			t.Errorf("batch %d, shared keys: %d rows left, report %+v; want all 24 destroyed, none overdue", batch, left, r)
		}
	}

	// A uuid key: 50 records, 30 due, in batches of 7 keys.
	schema := testenv.NewSchema(t, pool, "rt_")
	table := schema + ".cases"
	execSQL(t, pool, `CREATE TABLE `+table+` (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), closed_on date NOT NULL)`)
	execSQL(t, pool, `INSERT INTO `+table+` (closed_on) SELECT CASE WHEN g <= 30 THEN DATE '2001-01-01' ELSE DATE '2025-01-01' END FROM generate_series(1, 50) g`)
	var dueKeys []string
	rows, err := pool.Query(ctx, `SELECT id::text FROM `+table+` WHERE closed_on < '2006-01-01'`)
	if err != nil {
		t.Fatal(err)
	}
	if dueKeys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, k := range dueKeys {
		want[RecordHash(table, k)] = true
	}
	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{rule(table)}, BatchSize: 7, Now: fixedNow(testNow)})
	if r := rep.Rules[0]; r.Destroyed != 30 || r.Overdue != 0 || r.Batches < 5 || r.Batches > 8 || !sameSet(r.RecordHashes, want) {
		t.Errorf("uuid key: report %+v; want 30 destroyed (the due ones' hashes) in 5 to 8 batches, none overdue", r)
	}

	// The application changes the table during the sweep: after the first
	// batch (ids 1 to 10) it rewrites every record after it, which moves
	// them to other places in the table, and inserts one due record ahead
	// (id 1000) and one behind (id 0).
	schema = testenv.NewSchema(t, pool, "rt_")
	table = schema + ".cases"
	execSQL(t, pool, `CREATE TABLE `+table+` (id int PRIMARY KEY, closed_on date NOT NULL, notes text)`)
	execSQL(t, pool, `INSERT INTO `+table+` SELECT g, '2001-01-01', 'kort' FROM generate_series(1, 100) g`)
	var appErr error
	cfg := Config{Rules: []v1alpha1.RetentionRule{rule(table)}, BatchSize: 10, Now: fixedNow(testNow),
		afterBatch: func(_, n int) {
			if n != 1 {
				return
			}
			// Another connection, while the first batch is still open.
			_, appErr = pool.Exec(ctx, `UPDATE `+table+` SET notes = repeat('lang verslag ', 40) WHERE id > 10`)
			if appErr == nil {
				_, appErr = pool.Exec(ctx, `INSERT INTO `+table+` VALUES (1000, '2001-01-01', 'nieuw'), (0, '2001-01-01', 'nieuw')`)
			}
		}}
	rep = mustRun(t, pool, cfg)
	if appErr != nil {
		t.Fatalf("the application's changes: %v", appErr)
	}
	if got := ids(t, pool, table); !sameIDs(got, []int64{0}) {
		t.Errorf("left %v; want only the record inserted behind the sweep, 0", keys(got))
	}
	var wantIDs []int64
	for i := int64(1); i <= 100; i++ {
		wantIDs = append(wantIDs, i)
	}
	if r := rep.Rules[0]; r.Destroyed != 101 || r.Overdue != 1 || !sameSet(r.RecordHashes, hashes(table, append(wantIDs, 1000))) {
		t.Errorf("report %+v; want 101 destroyed (1 to 100 and 1000), 1 overdue (0)", r)
	}
}

// TestBatchNeverChangesMoreThanBatchSize: where few records are due the
// batches grow to more keys than BatchSize; when such a batch meets a run of
// due records it is rolled back and run again over fewer keys, so that no
// committed batch changes more than BatchSize records.
func TestBatchNeverChangesMoreThanBatchSize(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	var rows []dossier
	for i := int64(1); i <= 1000; i++ {
		r := dossier{id: i, lastContact: at(-6, 0, 0), team: "t"}
		if i <= 300 {
			r.lastContact = at(-1, 0, 0) // not due: the batches grow
		}
		rows = append(rows, r)
	}
	table := createDossiers(t, pool, schema, rows)
	const batch = 50
	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{dossierRule(table)}, BatchSize: batch, Now: fixedNow(testNow)})
	r := rep.Rules[0]
	if left := ids(t, pool, table); len(left) != 300 || r.Destroyed != 700 || r.Overdue != 0 {
		t.Fatalf("%d rows left, report %+v; want the 300 not due left, 700 destroyed", len(left), r)
	}
	// 700 records in batches of at most 50 take at least 14 batches with
	// changes, after the 2 over the first 250 keys that change none.
	if r.Batches < 2+700/batch {
		t.Errorf("%d batches for 700 records; a batch changed more than %d", r.Batches, batch)
	}
}

// TestRangeKeys: the keys of the next batch follow the density of due
// records the last batch found, within BatchSize and 8 times it.
func TestRangeKeys(t *testing.T) {
	tests := []struct {
		name                           string
		batchSize, keys, changed, want int
	}{
		{"all due", 500, 500, 500, 500},
		{"a third due", 5000, 5000, 1500, 15000},
		{"a third due, larger range", 5000, 15000, 4500, 15000},
		{"none due grows fourfold", 500, 500, 0, 2000},
		{"none due, at most 8 times", 500, 2000, 0, 4000},
		{"few due, at most 8 times", 500, 4000, 10, 4000},
		{"too many due shrinks", 500, 4000, 4000, 500},
		{"more than a batch in a wide range", 100, 800, 200, 360},
		{"batch of one", 1, 1, 1, 1},
		{"batch of one, none due", 1, 1, 0, 4},
	}
	for _, tt := range tests {
		if got := rangeKeys(tt.batchSize, tt.keys, tt.changed); got != tt.want {
			t.Errorf("%s: rangeKeys(%d, %d, %d) = %d; want %d", tt.name, tt.batchSize, tt.keys, tt.changed, got, tt.want)
		}
	}
}
