package retention

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// TestKilledSweeperLeavesWholeBatches runs the sweeper in a subprocess (this
// test binary, see TestMain) with slow batches, kills it with SIGKILL while
// a batch transaction is open, and checks that exactly a number of whole
// batches was destroyed: the due ids of the first k batches' ranges, the
// open batch rolled back. A second run destroys the rest.
func TestKilledSweeperLeavesWholeBatches(t *testing.T) {
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "rt_")
	const batch = 20
	var rows []dossier
	var due []int64
	for i := int64(1); i <= 500; i++ {
		r := dossier{id: i, lastContact: at(-6, 0, 0), team: "t"}
		switch i % 5 {
		case 0:
			r.lastContact = at(-1, 0, 0) // not due
		case 1:
			r.legalHold = ptr(true) // held
		default:
			due = append(due, i)
		}
		rows = append(rows, r)
	}
	table := createDossiers(t, pool, schema, rows) // 300 due
	// The due records destroyed after each batch: the first over 20 ids
	// (12 due), the next over as many as should hold 18 (rangeKeys).
	var ends []int
	for next, keys, total := int64(1), batch, 0; next <= 500; {
		hi := min(next+int64(keys)-1, 500)
		d := 0
		for _, id := range due {
			if id >= next && id <= hi {
				d++
			}
		}
		total += d
		ends = append(ends, total)
		next, keys = hi+1, rangeKeys(batch, keys, d)
	}
	app := "dossierguard-kill-" + schema
	hc, err := json.Marshal(helperConfig{
		DSN: testenv.PostgresDSN(t), ApplicationName: app, Rule: dossierRule(table),
		BatchSize: batch, BatchDelay: 150 * time.Millisecond, Now: testNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(hc))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Wait until at least two batches are committed and the next one is
	// open: its DELETE done, its COMMIT not yet sent.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left int
		var state string
		err := pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM `+table+` WHERE id % 5 NOT IN (0, 1)),
			coalesce((SELECT state FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle' LIMIT 1), '')`, app).Scan(&left, &state)
		if err != nil {
			t.Fatal(err)
		}
		if left <= len(due)-ends[1] && state == "idle in transaction" {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the sweeper exited before it could be killed (%v): %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no batch open after 30s (%d due rows left, state %q): %s", left, state, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup at all
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("the sweeper exited cleanly after SIGKILL")
	}

	// PostgreSQL rolls back the open batch when it sees the connection
	// drop; wait for that, or the next run would skip its locked rows.
	waitGone(t, pool, app)

	left := ids(t, pool, table)
	var deleted []int64
	for _, id := range due {
		if !left[id] {
			deleted = append(deleted, id)
		}
	}
	n := len(deleted)
	k := slices.Index(ends, n) + 1
	if n == 0 || n == len(due) || k == 0 || !slices.Equal(deleted, due[:n]) {
		t.Fatalf("deleted %d due rows %v: want whole batches (%v due rows after each), the first due ids in id order, some but not all", n, deleted, ends)
	}
	for _, r := range rows {
		if r.id%5 < 2 && !left[r.id] {
			t.Errorf("row %d, not due or held, was destroyed", r.id)
		}
	}
	t.Logf("killed after %d whole batches; the open batch was rolled back", k)

	rep := mustRun(t, pool, Config{Rules: []v1alpha1.RetentionRule{dossierRule(table)}, BatchSize: batch, Now: fixedNow(testNow)})
	if r := rep.Rules[0]; rep.Result != v1alpha1.RunSucceeded || r.Destroyed != int64(len(due)-n) || r.Overdue != 0 || r.Held != 100 {
		t.Errorf("second run: %s, destroyed %d (want %d), overdue %d, held %d", rep.Result, r.Destroyed, len(due)-n, r.Overdue, r.Held)
	}
	if !sameSet(rep.Rules[0].RecordHashes, hashes(table, due[n:])) {
		t.Error("second run: hashes are not those of the rest")
	}
	left = ids(t, pool, table)
	if len(left) != 200 {
		t.Errorf("%d rows left; want the 200 not due or held", len(left))
	}
}

// waitGone waits until no session of the application is left.
func waitGone(t testing.TB, pool *pgxpool.Pool, app string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
			t.Fatalf("waiting for the killed sweeper's session to end: %v", err)
		}
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
