package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// TestRetentionSweepCommandDestroysAndReports runs the command as the
// CronJob does: against a real API server and a real PostgreSQL, with the
// credentials only in PG* variables.
func TestRetentionSweepCommandDestroysAndReports(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	schema := fmt.Sprintf("sweep_cmd_%d", time.Now().UnixNano())
	now := time.Now().UTC()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA %[1]s;
		CREATE TABLE %[1]s.dossiers (id bigint PRIMARY KEY, last_contact_at timestamptz NOT NULL, legal_hold boolean NOT NULL DEFAULT false);`, schema)); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE") //nolint:errcheck
	// 1-3 due, 4 due but under legal hold, 5 not yet due.
	for id, row := range map[int]struct {
		age  time.Duration
		hold bool
	}{1: {6 * 365 * 24 * time.Hour, false}, 2: {7 * 365 * 24 * time.Hour, false}, 3: {10 * 365 * 24 * time.Hour, false},
		4: {8 * 365 * 24 * time.Hour, true}, 5: {365 * 24 * time.Hour, false}} {
		if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".dossiers VALUES ($1, $2, $3)", id, now.Add(-row.age), row.hold); err != nil {
			t.Fatal(err)
		}
	}

	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "wijkteam"}}); err != nil {
		t.Fatal(err)
	}
	policy := &v1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "bewaartermijn", Namespace: "wijkteam"},
		Spec: v1alpha1.RetentionPolicySpec{
			StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"},
			Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"},
			Schedule: "0 3 * * *",
			Rules: []v1alpha1.RetentionRule{{Name: "dossiers", Table: v1alpha1.SQLTableName(schema + ".dossiers"),
				Clock:  v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact_at"},
				Period: "P5Y", LegalHoldColumn: "legal_hold"}},
		},
	}
	if err := env.Client.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}

	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGHOST", cfg.Host)
	t.Setenv("PGPORT", strconv.Itoa(int(cfg.Port)))
	t.Setenv("PGDATABASE", cfg.Database)
	t.Setenv("PGUSER", cfg.User)
	t.Setenv("PGPASSWORD", cfg.Password)
	t.Setenv("PGSSLMODE", "disable")

	var out bytes.Buffer
	if err := runSweep(ctx, env.Config, sweepOptions{policy: "bewaartermijn", namespace: "wijkteam"}, &out); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	var proof struct {
		Result string `json:"result"`
		Rules  []struct {
			Destroyed    int64    `json:"destroyed"`
			Held         int64    `json:"held"`
			RecordHashes []string `json:"recordHashes"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(out.Bytes(), &proof); err != nil {
		t.Fatalf("stdout is not one JSON proof record: %v\n%s", err, out.String())
	}
	if proof.Result != "Succeeded" || proof.Rules[0].Destroyed != 3 || proof.Rules[0].Held != 1 || len(proof.Rules[0].RecordHashes) != 3 {
		t.Errorf("proof %+v; want 3 destroyed with their hashes and 1 held", proof)
	}
	var left []int64
	rows, _ := conn.Query(ctx, "SELECT id FROM "+schema+".dossiers ORDER BY id")
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if fmt.Sprint(left) != "[4 5]" {
		t.Errorf("rows left %v; want the held row 4 and the not-yet-due row 5", left)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		t.Fatal(err)
	}
	run := policy.Status.LastRun
	if run == nil || run.Result != v1alpha1.RunSucceeded || run.Destroyed != 3 || run.Held != 1 || run.ProofDigest == "" {
		t.Errorf("status.lastRun %+v; want the run reported", run)
	}
	if bytes.Contains(out.Bytes(), []byte(cfg.Host+":")) || bytes.Contains(out.Bytes(), []byte("postgres://")) {
		t.Error("the proof record contains connection details")
	}

	// Usage errors exit with 2.
	err = runSweep(ctx, env.Config, sweepOptions{namespace: "wijkteam"}, &out)
	if exitCodeOf(err) != 2 {
		t.Errorf("missing --policy: exit code %d (%v); want 2", exitCodeOf(err), err)
	}
}
