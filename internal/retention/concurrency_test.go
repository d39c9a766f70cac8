package retention

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// waitForBatchLockWait waits until a sweeper batch on schema's tables is
// waiting for a row lock, so that the test acts between the batch's
// selection and its change.
func waitForBatchLockWait(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var waiting bool
		if err := pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'WITH dossierguard_range%' AND strpos(query, $1) > 0)`,
			`"`+schema+`"`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no sweeper batch waited for the row lock within 30s")
}

// TestHoldSetBetweenSelectionAndDelete: a legal hold (or a moved date) that
// another transaction commits after a batch has selected the record, while
// the batch's DELETE waits for that transaction's row lock, keeps the
// record: the DELETE re-checks the due predicate against the row's newest
// version. For ordinary tables (found by ctid), partitioned ones (by key),
// and anonymisation.
func TestHoldSetBetweenSelectionAndDelete(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	ctx := context.Background()
	type change struct{ name, sql string }
	changes := []change{
		{"legal hold set", `UPDATE %s SET legal_hold = true WHERE id = 5`},
		{"clock moved", `UPDATE %s SET closed_on = '2025-01-01' WHERE id = 5`},
	}
	for _, partitioned := range []bool{false, true} {
		for _, anonymise := range []bool{false, true} {
			for _, c := range changes {
				schema := testenv.NewSchema(t, pool, "rt_")
				table := schema + ".cases"
				if partitioned {
					execSQL(t, pool, `CREATE TABLE `+table+` (id int, closed_on date NOT NULL, legal_hold boolean, name text, PRIMARY KEY (id, closed_on)) PARTITION BY RANGE (closed_on)`)
					execSQL(t, pool, `CREATE TABLE `+schema+`.cases_all PARTITION OF `+table+` FOR VALUES FROM ('1900-01-01') TO ('2100-01-01')`)
				} else {
					execSQL(t, pool, `CREATE TABLE `+table+` (id int PRIMARY KEY, closed_on date NOT NULL, legal_hold boolean, name text)`)
				}
				execSQL(t, pool, `INSERT INTO `+table+` SELECT g, '2001-01-01', false, 'naam' FROM generate_series(1, 10) g`)
				rule := v1alpha1.RetentionRule{
					Name: "cases", Table: v1alpha1.SQLTableName(table), Period: "P20Y",
					Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_on"},
					LegalHoldColumn: "legal_hold",
				}
				if anonymise {
					rule.Action, rule.AnonymiseColumns = v1alpha1.ActionAnonymise, []v1alpha1.SQLIdentifier{"name"}
				}
				// The other transaction changes record 5 and keeps its lock.
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(c.sql, table)); err != nil {
					t.Fatal(err)
				}
				done := make(chan Report, 1)
				go func() {
					rep, _ := Run(ctx, pool, Config{Rules: []v1alpha1.RetentionRule{rule}, BatchSize: 100,
						Now: fixedNow(testNow), lockWait: time.Minute})
					done <- rep
				}()
				// The batch has selected record 5 (its old version is due)
				// and its change waits for the lock.
				waitForBatchLockWait(t, pool, schema)
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				rep := <-done
				what := fmt.Sprintf("partitioned=%v anonymise=%v %s", partitioned, anonymise, c.name)
				if rep.Result != v1alpha1.RunSucceeded {
					t.Fatalf("%s: result %s (%s); want Succeeded", what, rep.Result, rep.Message)
				}
				var left, named int
				if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE id = 5), count(*) FILTER (WHERE id = 5 AND name IS NOT NULL) FROM `+table).Scan(&left, &named); err != nil {
					t.Fatal(err)
				}
				if left != 1 || named != 1 {
					t.Errorf("%s: record 5 was destroyed or anonymised (%d left, %d with a name); want it kept whole", what, left, named)
				}
				rr := rep.Rules[0]
				if rr.Destroyed+rr.Anonymised != 9 || rr.Overdue != 0 || len(rr.RecordHashes) != 9 {
					t.Errorf("%s: report %+v; want 9 changed, 9 hashes, 0 overdue", what, rr)
				}
				if c.name == "legal hold set" && rr.Held != 1 {
					t.Errorf("%s: held %d; want 1", what, rr.Held)
				}
			}
		}
	}
}

// TestLockedRowsAreSkipped: a record that the application keeps locked for
// longer than a batch waits is skipped (FOR UPDATE SKIP LOCKED), the rest
// of the batch is destroyed, and the skipped record is reported overdue.
func TestLockedRowsAreSkipped(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	ctx := context.Background()
	schema := testenv.NewSchema(t, pool, "rt_")
	table := schema + ".cases"
	execSQL(t, pool, `CREATE TABLE `+table+` (id int PRIMARY KEY, closed_on date NOT NULL, legal_hold boolean)`)
	execSQL(t, pool, `INSERT INTO `+table+` SELECT g, '2001-01-01', false FROM generate_series(1, 250) g`)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+table+` WHERE id IN (5, 150) FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{{
		Name: "cases", Table: v1alpha1.SQLTableName(table), Period: "P20Y",
		Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_on"},
		LegalHoldColumn: "legal_hold",
	}}, BatchSize: 100, Now: fixedNow(testNow)})
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("the sweep took %s; it should skip the locked rows, not wait for them", took)
	}
	if got := ids(t, pool, table); !sameIDs(got, []int64{5, 150}) {
		t.Errorf("left %v; want only the locked records 5 and 150", keys(got))
	}
	if rr := rep.Rules[0]; rr.Destroyed != 248 || rr.Overdue != 2 || rr.Batches != 3 {
		t.Errorf("report %+v; want 248 destroyed in 3 batches, 2 overdue", rr)
	}
}
