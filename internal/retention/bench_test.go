package retention

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// The benchmark's knobs (environment variables).
const (
	benchRowsEnv  = "DOSSIERGUARD_BENCH_ROWS"  // rows in the table, 1,000,000 by default
	benchBatchEnv = "DOSSIERGUARD_BENCH_BATCH" // batch size, benchBatch by default
)

// benchBatch is the batch size the benchmark uses unless told otherwise; see
// docs/benchmarks-retention.md for why.
const benchBatch = 5000

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkSweepVsPlainDelete loads a dossiers table (1,000,000 rows by
// default, 30 % due, 2 % under legal hold and 2 % under extension that would
// be due otherwise) and a fresh copy of it, then measures in one run (a) the
// sweeper destroying the due rows in batches and (b) one plain DELETE with
// the same predicate on the copy. It reports both rates in rows/s, their
// ratio (target >= 0.5) and the longest batch transaction (target <= 100 ms).
//
// It runs twice: index=key with the primary key as the only index, and
// index=clock with the B-tree index on the clock column that
// docs/retention.md recommends, on both tables. Each logs the plans that
// PostgreSQL chose for the counts after the run and for the plain DELETE.
func BenchmarkSweepVsPlainDelete(b *testing.B) {
	for _, clockIndex := range []bool{false, true} {
		name := "index=key"
		if clockIndex {
			name = "index=clock"
		}
		b.Run(name, func(b *testing.B) { benchSweepVsPlainDelete(b, clockIndex) })
	}
}

func benchSweepVsPlainDelete(b *testing.B, clockIndex bool) {
	rows := envInt(b, benchRowsEnv, 1_000_000)
	batch := envInt(b, benchBatchEnv, benchBatch)
	ctx := context.Background()
	// One connection, so that one server process does all the work and its
	// CPU time can be read (when the server runs on this machine).
	pc, err := pgxpool.ParseConfig(testenv.PostgresDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close) // after the schemas are dropped
	var backend int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		b.Fatal(err)
	}
	_, cpuKnown := backendCPU(backend)
	rule := v1alpha1.RetentionRule{
		Name:            "bench",
		Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact_at"},
		Period:          "P5Y",
		LegalHoldColumn: "legal_hold",
		ExtensionColumn: "retain_until",
	}
	cutoff := Cutoff(testNow, rule.Period)
	var sweepTime, batchTime, plainTime, sweepCPU, plainCPU time.Duration
	var sweepRows, plainRows int64
	var longest time.Duration

	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		schema := testenv.NewSchema(b, pool, "rt_")
		swept, plain := schema+".swept", schema+".plain"
		loadBenchTable(b, pool, swept, rows)
		if clockIndex {
			execSQL(b, pool, "CREATE INDEX ON "+swept+" (last_contact_at)")
		}
		// INCLUDING ALL copies the indexes.
		execSQL(b, pool, "CREATE TABLE "+plain+" (LIKE "+swept+" INCLUDING ALL)")
		execSQL(b, pool, "INSERT INTO "+plain+" SELECT * FROM "+swept)
		execSQL(b, pool, "VACUUM ANALYZE "+swept)
		execSQL(b, pool, "VACUUM ANALYZE "+plain)
		plainSQL := "DELETE FROM " + plain +
			" WHERE last_contact_at < $1 AND legal_hold IS NOT TRUE AND (retain_until IS NULL OR retain_until < $2)"
		if i == 0 {
			b.Logf("plan of the plain DELETE: %s", scans(b, pool, plainSQL, cutoff, testNow))
		}

		var destroyed int64
		// (a) the sweeper, a whole Run: batches and the counts after.
		sweep := func() {
			execSQL(b, pool, "CHECKPOINT")
			rule.Table = v1alpha1.SQLTableName(swept)
			cpu0, _ := backendCPU(backend)
			b.StartTimer()
			began := time.Now()
			rep, err := Run(ctx, pool, Config{Rules: []v1alpha1.RetentionRule{rule}, BatchSize: batch, Now: fixedNow(testNow)})
			took := time.Since(began)
			b.StopTimer()
			cpu1, _ := backendCPU(backend)
			sweepCPU += cpu1 - cpu0
			if err != nil {
				b.Fatalf("sweep: %v", err)
			}
			r := rep.Rules[0]
			if want := int64(rows) * 30 / 100; r.Destroyed < want-100 || r.Destroyed > want+100 || r.Overdue != 0 {
				b.Fatalf("sweep destroyed %d (want about %d), overdue %d", r.Destroyed, want, r.Overdue)
			}
			if want := int64(rows) * 4 / 100; r.Held < want-100 || r.Held > want+100 || r.NoClock != 0 || r.KeptByExtension != 0 {
				b.Fatalf("sweep reported %d held (want about %d), %d without a clock, %d kept by extension", r.Held, want, r.NoClock, r.KeptByExtension)
			}
			if i == 0 {
				st := newRuleSQL(rule).count(cutoff, testNow)
				b.Logf("plan of the counts after the run: %s", scans(b, pool, st.sql, st.args...))
			}
			sweepTime += took
			batchTime += rep.BatchTime
			sweepRows += r.Destroyed
			longest = max(longest, rep.LongestBatch)
			destroyed = r.Destroyed
		}
		// (b) one plain DELETE of the same rows on the copy.
		var deleted int64
		plainDelete := func() {
			execSQL(b, pool, "CHECKPOINT")
			cpu0, _ := backendCPU(backend)
			b.StartTimer()
			began := time.Now()
			tag, err := pool.Exec(ctx, plainSQL, cutoff, testNow)
			took := time.Since(began)
			b.StopTimer()
			cpu1, _ := backendCPU(backend)
			plainCPU += cpu1 - cpu0
			if err != nil {
				b.Fatalf("plain delete: %v", err)
			}
			plainTime += took
			plainRows += tag.RowsAffected()
			deleted = tag.RowsAffected()
		}
		// Alternate the order, so that neither always runs first.
		if i%2 == 0 {
			sweep()
			plainDelete()
		} else {
			plainDelete()
			sweep()
		}
		if deleted != destroyed {
			b.Fatalf("plain delete removed %d rows, the sweep %d", deleted, destroyed)
		}
		b.StartTimer()
	}
	b.StopTimer()
	sweepRate := float64(sweepRows) / sweepTime.Seconds()
	batchRate := float64(sweepRows) / batchTime.Seconds()
	plainRate := float64(plainRows) / plainTime.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(sweepRows)/float64(b.N), "rows_destroyed/op")
	b.ReportMetric(sweepRate, "sweep_rows/s")
	b.ReportMetric(batchRate, "batches_rows/s")
	b.ReportMetric(plainRate, "plain_rows/s")
	b.ReportMetric(sweepRate/plainRate, "sweep/plain")
	b.ReportMetric(batchRate/plainRate, "batches/plain")
	b.ReportMetric(float64(longest.Microseconds())/1000, "longest_batch_ms")
	if cpuKnown && sweepCPU > 0 && plainCPU > 0 {
		// CPU time of the server process: far less disturbed than wall
		// time by other work on the machine.
		b.ReportMetric(float64(sweepRows)/sweepCPU.Seconds(), "sweep_rows/server_cpu_s")
		b.ReportMetric(float64(plainRows)/plainCPU.Seconds(), "plain_rows/server_cpu_s")
		b.ReportMetric(plainCPU.Seconds()/sweepCPU.Seconds(), "sweep/plain_server_cpu")
		b.Logf("server process CPU: sweep %s, plain DELETE %s (ratio %.2f)", sweepCPU, plainCPU, plainCPU.Seconds()/sweepCPU.Seconds())
	}
	b.Logf("%d rows, batch %d, %d run(s): sweep %d rows in %s (%.0f rows/s; in batch transactions %s, %.0f rows/s), "+
		"plain DELETE %d rows in %s (%.0f rows/s); ratio sweep/plain %.2f, batches/plain %.2f; longest batch %s",
		rows, batch, b.N, sweepRows, sweepTime.Round(time.Millisecond), sweepRate, batchTime.Round(time.Millisecond), batchRate,
		plainRows, plainTime.Round(time.Millisecond), plainRate, sweepRate/plainRate, batchRate/plainRate, longest.Round(time.Microsecond))
}

// loadBenchTable creates and fills the benchmark's table with
// generate_series: per 100 ids, 30 due (6 to 16 years since the last
// contact), 2 due but under legal hold, 2 due but extended, 66 recent.
func loadBenchTable(b *testing.B, pool *pgxpool.Pool, table string, rows int) {
	b.Helper()
	execSQL(b, pool, fmt.Sprintf(dossierDDL, table))
	execSQL(b, pool, `INSERT INTO `+table+` (id, last_contact_at, legal_hold, retain_until, name, bsn, notes, team)
		SELECT i,
			CASE WHEN i % 100 < 34 THEN $1::timestamptz - interval '6 years' - (i % 3650) * interval '1 day'
			     ELSE $1::timestamptz - (i % 1500) * interval '1 day' END,
			CASE WHEN i % 100 IN (30, 31) THEN true WHEN i % 2 = 0 THEN false END,
			CASE WHEN i % 100 IN (32, 33) THEN DATE '2030-01-01' WHEN i % 100 < 30 AND i % 7 = 0 THEN DATE '2020-01-01' END,
			'Naam ' || i, lpad(i::text, 9, '0'), repeat('verslag ', 12), 'team-' || (i % 10)
		FROM generate_series(1, $2::int) AS i`, testNow, rows)
}

// scans is the plan PostgreSQL chooses for sql (EXPLAIN, not run): its scan
// nodes, outermost first, each with its index, if any.
func scans(b *testing.B, pool *pgxpool.Pool, sql string, args ...any) string {
	b.Helper()
	var out []map[string]any
	if err := pool.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&out); err != nil || len(out) != 1 {
		b.Fatalf("explain %s: %v", sql, err)
	}
	var found []string
	var walk func(node map[string]any)
	walk = func(node map[string]any) {
		if t, _ := node["Node Type"].(string); strings.HasSuffix(t, "Scan") {
			if node["Parallel Aware"] == true {
				t = "Parallel " + t
			}
			if ix, ok := node["Index Name"].(string); ok {
				t += " using " + ix
			}
			found = append(found, t)
		}
		children, _ := node["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				walk(m)
			}
		}
	}
	plan, _ := out[0]["Plan"].(map[string]any)
	walk(plan)
	return strings.Join(found, ", ")
}

// backendCPU is the CPU time (user and system) of the server process pid,
// from /proc; false when it cannot be read (a server on another machine).
func backendCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The fields after the command, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s on Linux.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+k) * 10 * time.Millisecond, true
}
