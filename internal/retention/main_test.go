package retention

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// helperEnv makes the test binary run a sweep as a subprocess instead of the
// tests (see TestKilledSweeperLeavesWholeBatches); its value is a JSON
// helperConfig.
const helperEnv = "DOSSIERGUARD_RETENTION_HELPER"

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		os.Exit(helperMain(v))
	}
	os.Exit(m.Run())
}

// helperConfig is what the subprocess sweeper does.
type helperConfig struct {
	DSN             string                 `json:"dsn"`
	ApplicationName string                 `json:"applicationName"`
	Rule            v1alpha1.RetentionRule `json:"rule"`
	BatchSize       int                    `json:"batchSize"`
	BatchDelay      time.Duration          `json:"batchDelay"`
	Now             time.Time              `json:"now"`
}

// helperMain runs one sweep and prints its report on stdout.
func helperMain(v string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(v), &hc); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	ctx := context.Background()
	pc, err := pgxpool.ParseConfig(hc.DSN)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: parse DSN:", err)
		return 2
	}
	pc.ConnConfig.RuntimeParams["application_name"] = hc.ApplicationName
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: connect:", err)
		return 2
	}
	defer pool.Close()
	rep, err := Run(ctx, pool, Config{
		Rules:      []v1alpha1.RetentionRule{hc.Rule},
		BatchSize:  hc.BatchSize,
		Now:        func() time.Time { return hc.Now },
		batchDelay: hc.BatchDelay,
	})
	_ = rep.WriteJSON(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func execSQL(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// checksum is the MD5 of every row of the table in id order, and the number
// of rows.
func checksum(t testing.TB, pool *pgxpool.Pool, table string) string {
	t.Helper()
	var sum string
	var n int64
	q := "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t.id::text)), ''), count(*) FROM " + table + " t"
	if err := pool.QueryRow(context.Background(), q).Scan(&sum, &n); err != nil {
		t.Fatalf("checksum %s: %v", table, err)
	}
	return fmt.Sprintf("%s/%d", sum, n)
}

// ids are the ids left in the table.
func ids(t testing.TB, pool *pgxpool.Pool, table string) map[int64]bool {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT id FROM "+table)
	if err != nil {
		t.Fatalf("ids of %s: %v", table, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("ids of %s: %v", table, err)
	}
	m := make(map[int64]bool, len(got))
	for _, id := range got {
		m[id] = true
	}
	return m
}

// dossier is one row of the dossiers table of the tests.
type dossier struct {
	id          int64
	lastContact *time.Time // timestamptz
	legalHold   *bool
	retainUntil *time.Time // date: only year, month and day count
	name, bsn   *string
	notes       *string
	team        string
}

// dossierDDL creates the dossiers table of the tests.
const dossierDDL = `CREATE TABLE %s (
	id bigint PRIMARY KEY,
	last_contact_at timestamptz,
	legal_hold boolean,
	retain_until date,
	name text,
	bsn text,
	notes text,
	team text NOT NULL
)`

// createDossiers creates schema.dossiers with the rows.
func createDossiers(t testing.TB, pool *pgxpool.Pool, schema string, rows []dossier) string {
	t.Helper()
	table := schema + ".dossiers"
	execSQL(t, pool, fmt.Sprintf(dossierDDL, table))
	data := make([][]any, len(rows))
	for i, r := range rows {
		var ru any
		if r.retainUntil != nil {
			ru = pgDate(*r.retainUntil)
		}
		data[i] = []any{r.id, r.lastContact, r.legalHold, ru, r.name, r.bsn, r.notes, r.team}
	}
	n, err := pool.CopyFrom(context.Background(), pgx.Identifier{schema, "dossiers"},
		[]string{"id", "last_contact_at", "legal_hold", "retain_until", "name", "bsn", "notes", "team"},
		pgx.CopyFromRows(data))
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("copy %d rows into %s: %d, %v", len(rows), table, n, err)
	}
	execSQL(t, pool, "ANALYZE "+table)
	return table
}

// pgDate is the date of t's year, month and day, as a time at UTC midnight
// (how pgx encodes and decodes a date).
func pgDate(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// dossierRule is the rule of the tests for the dossiers table.
func dossierRule(table string) v1alpha1.RetentionRule {
	return v1alpha1.RetentionRule{
		Name:            "dossiers",
		Table:           v1alpha1.SQLTableName(table),
		Clock:           v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact_at"},
		Period:          "P5Y",
		LegalHoldColumn: "legal_hold",
		ExtensionColumn: "retain_until",
	}
}

// testNow is the fixed clock of the tests: the cutoff of P5Y is
// 2021-06-15T10:00:00Z.
var testNow = time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC)

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

// oracle says, independently of the SQL, whether a dossier is due under
// dossierRule and whether it is held (due by its clock but under legal hold
// or extension).
func oracle(d dossier, now time.Time, period v1alpha1.RetentionPeriod) (due, held bool) {
	if d.lastContact == nil || !d.lastContact.Before(Cutoff(now, period)) {
		return false, false
	}
	hold := d.legalHold != nil && *d.legalHold
	today := pgDate(now) // the date of now in now's location
	extended := d.retainUntil != nil && !pgDate(*d.retainUntil).Before(today)
	if hold || extended {
		return false, true
	}
	return true, false
}

func ptr[T any](v T) *T { return &v }

// hashes is the set of record hashes of the ids.
func hashes(table string, ids []int64) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[RecordHash(table, fmt.Sprint(id))] = true
	}
	return m
}

func sameSet(a []string, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !b[s] {
			return false
		}
	}
	return true
}

func mustRun(t testing.TB, db DB, cfg Config) Report {
	t.Helper()
	rep, err := Run(context.Background(), db, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// reportJSON is the report as written, for assertions on its text.
func reportJSON(t testing.TB, rep Report) string {
	t.Helper()
	var b strings.Builder
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
