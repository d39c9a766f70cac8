package retention

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// commitsDB is a real pool that records, for every transaction that
// commits, how it was begun and the synchronous_commit in effect at its
// COMMIT, and can refuse to begin the transaction that makes the batches
// durable (the one begun with the server's defaults).
type commitsDB struct {
	pool      *pgxpool.Pool
	failFlush bool

	mu      sync.Mutex
	commits []commitMode
}

// commitMode is how one transaction committed.
type commitMode struct {
	beginQuery string // "" for a plain BEGIN
	readOnly   bool
	sync       string // synchronous_commit at COMMIT
}

func (d *commitsDB) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	if d.failFlush && opts == (pgx.TxOptions{}) {
		return nil, errors.New("connection refused")
	}
	tx, err := d.pool.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &recordedTx{Tx: tx, db: d, opts: opts}, nil
}

type recordedTx struct {
	pgx.Tx
	db   *commitsDB
	opts pgx.TxOptions
}

func (tx *recordedTx) Commit(ctx context.Context) error {
	var mode string
	if err := tx.QueryRow(ctx, "SELECT current_setting('synchronous_commit')").Scan(&mode); err != nil {
		return err
	}
	tx.db.mu.Lock()
	tx.db.commits = append(tx.db.commits, commitMode{beginQuery: tx.opts.BeginQuery, readOnly: tx.opts.AccessMode == pgx.ReadOnly, sync: mode})
	tx.db.mu.Unlock()
	return tx.Tx.Commit(ctx)
}

// durabilityTable is a table of 100 due and 50 recent records.
func durabilityTable(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	schema := testenv.NewSchema(t, pool, "rt_")
	var rows []dossier
	for i := int64(1); i <= 150; i++ {
		r := dossier{id: i, lastContact: at(-6, 0, 0), team: "t"}
		if i > 100 {
			r.lastContact = at(-1, 0, 0)
		}
		rows = append(rows, r)
	}
	return createDossiers(t, pool, schema, rows)
}

// TestBatchesCommitWithoutWaitingThenOneDurableCommit: every batch commits
// with synchronous_commit off, and after the last one a transaction with a
// transaction id commits with the server's synchronous_commit (on), which
// makes every batch before it durable before the report is out.
func TestBatchesCommitWithoutWaitingThenOneDurableCommit(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	table := durabilityTable(t, pool)
	db := &commitsDB{pool: pool}
	rep := mustRun(t, db, Config{Rules: []v1alpha1.RetentionRule{dossierRule(table)}, BatchSize: 20, Now: fixedNow(testNow)})
	r := rep.Rules[0]
	if r.Destroyed != 100 || len(r.RecordHashes) != 100 || r.Overdue != 0 {
		t.Fatalf("report %+v; want 100 destroyed and hashed, none overdue", r)
	}
	var batches, flushes int
	flushAt := -1
	for i, c := range db.commits {
		switch {
		case strings.Contains(c.beginQuery, "synchronous_commit = off"):
			batches++
			if c.sync != "off" {
				t.Errorf("commit %d, a batch, with synchronous_commit %s; want off", i, c.sync)
			}
			if flushAt >= 0 {
				t.Errorf("commit %d, a batch, after the durable commit %d", i, flushAt)
			}
		case c.beginQuery == "" && !c.readOnly:
			flushes++
			flushAt = i
			if c.sync != "on" {
				t.Errorf("commit %d, the durable commit, with synchronous_commit %s; want on", i, c.sync)
			}
		}
	}
	if batches != r.Batches || flushes != 1 {
		t.Errorf("%d batch commits and %d durable commits for %d batches in the report; want one durable commit after them: %+v",
			batches, flushes, r.Batches, db.commits)
	}
}

// TestUnconfirmedBatchesLeftOutOfTheProof: when the batches' commits cannot
// be made durable, the sweep fails and the proof lists none of them (their
// outcome is unknown), though they destroyed the records; the next sweep,
// which can, finds nothing left and reports nothing new.
func TestUnconfirmedBatchesLeftOutOfTheProof(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	table := durabilityTable(t, pool)
	cfg := Config{Rules: []v1alpha1.RetentionRule{dossierRule(table)}, BatchSize: 20, Now: fixedNow(testNow)}
	rep, err := Run(context.Background(), &commitsDB{pool: pool, failFlush: true}, cfg)
	r := rep.Rules[0]
	if err == nil || rep.Result != v1alpha1.RunFailed {
		t.Fatalf("result %s, error %v; want Failed with an error", rep.Result, err)
	}
	if r.Destroyed != 0 || r.Batches != 0 || len(r.RecordHashes) != 0 {
		t.Errorf("report %+v; want no batch, record or hash that is not known durable", r)
	}
	if !strings.Contains(r.Error, "outcome unknown") || strings.Contains(r.Error, "connection refused") {
		t.Errorf("error %q; want it to say the outcome is unknown, without the driver's message", r.Error)
	}
	if left := ids(t, pool, table); len(left) != 50 {
		t.Errorf("%d records left; want the 50 not due (the batches did commit)", len(left))
	}
	again := mustRun(t, pool, cfg)
	if got := again.Rules[0]; got.Destroyed != 0 || got.Overdue != 0 {
		t.Errorf("the next sweep: %+v; want nothing destroyed, nothing overdue", got)
	}
}
