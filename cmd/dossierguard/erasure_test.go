package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// TestSweepCarriesOutGrantedErasures runs the sweep command with three
// Erasure requests: a granted one with the child's-interest weighing (its
// dossier is destroyed within the statutory minimum, the proof is in its
// status), one on a dossier under legal hold (kept, the status says
// Held) and an undecided one (untouched); a second run does not erase the
// first again. The first run is an --erasures-only run, which leaves
// status.lastRun alone; the second a scheduled one.
func TestSweepCarriesOutGrantedErasures(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	schema := fmt.Sprintf("erase_cmd_%d", time.Now().UnixNano())
	now := time.Now().UTC()
	long := now.AddDate(-30, 0, 0)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA %[1]s;
		CREATE TABLE %[1]s.dossiers (id bigint PRIMARY KEY, dossier_id text, closed_at timestamptz, legal_hold boolean NOT NULL DEFAULT false);`, schema)); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE") //nolint:errcheck
	// The sweep's own period (P50Y) destroys nothing here: only erasures do.
	for id, row := range map[int]struct {
		dossier string
		hold    bool
	}{1: {"D-1001", false}, 2: {"D-1001", false}, 3: {"D-2002", true}, 4: {"D-3003", false}} {
		if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".dossiers VALUES ($1, $2, $3, $4)", id, row.dossier, long, row.hold); err != nil {
			t.Fatal(err)
		}
	}

	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c := env.Client
	ns := "wijkteam"
	mustCreate := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	store := &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: "wijkteam-dossiers", Namespace: ns},
		Spec: v1alpha1.DossierStoreSpec{
			Service:        v1alpha1.ServiceYouthAndFamilyCentre,
			Organisation:   "Gemeente Voorbeeldstad",
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
			Workload: v1alpha1.WorkloadSpec{
				Selector:           metav1.LabelSelector{MatchLabels: map[string]string{"app": "dossier"}},
				ServiceAccountName: "dossier-app",
				AppPort:            8080,
			},
			Storage: v1alpha1.StorageSpec{StorageClassName: "standard", Size: "10Gi"},
		},
	}
	mustCreate(store)
	key := []byte("an erasure test key of 32 bytes!")
	secretName, secretKey := resources.PseudonymKeyRef(store)
	mustCreate(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns}, Data: map[string][]byte{secretKey: key}})
	policy := &v1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "bewaartermijn", Namespace: ns},
		Spec: v1alpha1.RetentionPolicySpec{
			StoreRef: v1alpha1.StoreReference{Name: store.Name},
			Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"},
			Schedule: "0 3 * * *",
			Rules: []v1alpha1.RetentionRule{{Name: "dossiers", Table: v1alpha1.SQLTableName(schema + ".dossiers"), DossierColumn: "dossier_id",
				Clock:  v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_at"},
				Period: "P50Y", LegalHoldColumn: "legal_hold"}},
		},
	}
	mustCreate(policy)
	received := metav1.NewTime(now.Add(-time.Hour))
	request := func(name, id string, granted bool, mutate ...func(*v1alpha1.DataSubjectRequest)) *v1alpha1.DataSubjectRequest {
		r := &v1alpha1.DataSubjectRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.DataSubjectRequestSpec{
				StoreRef: v1alpha1.StoreReference{Name: store.Name}, Type: v1alpha1.RequestErasure,
				Dossier:    v1alpha1.DossierPseudonym(auditproxy.DossierPseudonym(key, id)),
				ReceivedAt: received, Requester: v1alpha1.Requester{Relation: v1alpha1.RelationSelf},
				Subject: v1alpha1.DataSubject{AgeBand: v1alpha1.AgeAdult}, Handler: "privacy-officer",
			},
		}
		if granted {
			r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: received}
		}
		for _, m := range mutate {
			m(r)
		}
		mustCreate(r)
		return r
	}
	// Within the statutory minimum, as the policy's P50Y is not over: erase-a
	// records the child's-interest weighing, erase-b does not need it, as its
	// dossier is held anyway.
	erased := request("erase-a", "D-1001", true, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Erasure = &v1alpha1.ErasureSpec{ChildInterestWeighing: &v1alpha1.ChildInterestWeighing{Reference: "BW-2026-117", DecidedBy: "gedragswetenschapper"}}
	})
	held, open := request("erase-b", "D-2002", true), request("erase-c", "D-3003", false)

	pg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGHOST", pg.Host)
	t.Setenv("PGPORT", strconv.Itoa(int(pg.Port)))
	t.Setenv("PGDATABASE", pg.Database)
	t.Setenv("PGUSER", pg.User)
	t.Setenv("PGPASSWORD", pg.Password)
	t.Setenv("PGSSLMODE", "disable")

	// The first run is the one the operator starts when an erasure is
	// granted: erasures only, no sweep, no run statistics.
	var out bytes.Buffer
	if err := runSweep(ctx, env.Config, sweepOptions{policy: policy.Name, namespace: ns, erasuresOnly: true}, &out); err != nil {
		t.Fatalf("erasures-only run: %v", err)
	}
	lastRun := func() *v1alpha1.RetentionRun {
		t.Helper()
		p := &v1alpha1.RetentionPolicy{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(policy), p); err != nil {
			t.Fatal(err)
		}
		return p.Status.LastRun
	}
	if run := lastRun(); run != nil {
		t.Errorf("an erasures-only run wrote status.lastRun %+v; want it left unset", run)
	}
	left := func() string {
		var ids []int64
		rows, err := conn.Query(ctx, "SELECT id FROM "+schema+".dossiers ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ids)
	}
	if got := left(); got != "[3 4]" {
		t.Errorf("rows left %s; want [3 4]: the held dossier and the one not decided", got)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 { // two erasures, no sweep
		t.Fatalf("stdout has %d lines, want 2 (two proofs of erasure, no sweep):\n%s", len(lines), out.String())
	}
	for _, secret := range []string{"D-1001", "D-2002", string(erased.Spec.Dossier), string(held.Spec.Dossier), string(key)} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("stdout holds %q", secret)
		}
	}
	get := func(r *v1alpha1.DataSubjectRequest) []v1alpha1.ErasureRun {
		t.Helper()
		if err := c.Get(ctx, client.ObjectKeyFromObject(r), r); err != nil {
			t.Fatal(err)
		}
		return r.Status.Erasure
	}
	runA := get(erased)
	if len(runA) != 1 || runA[0].Policy != policy.Name || runA[0].Result != v1alpha1.ErasureErased ||
		len(runA[0].Tables) != 1 || runA[0].Tables[0].Destroyed != 2 || len(runA[0].ProofDigest) != 64 {
		t.Errorf("erase-a status.erasure %+v; want Erased by bewaartermijn, 2 destroyed, a digest", runA)
	}
	var proofA struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &proofA); err != nil || proofA.Result == "" {
		t.Errorf("first line is not a proof of erasure: %v %s", err, lines[0])
	}
	if runB := get(held); len(runB) != 1 || runB[0].Result != v1alpha1.ErasureHeld || runB[0].Tables[0].Held != 1 || runB[0].Tables[0].Destroyed != 0 {
		t.Errorf("erase-b status.erasure %+v; want Held, 1 held, nothing destroyed", runB)
	}
	if runC := get(open); len(runC) != 0 {
		t.Errorf("undecided erase-c has status.erasure %+v", runC)
	}

	// The next (scheduled) run: erase-a is done and not erased again; erase-b is tried
	// again (the hold may have been lifted) and is still held.
	out.Reset()
	if err := runSweep(ctx, env.Config, sweepOptions{policy: policy.Name, namespace: ns}, &out); err != nil {
		t.Fatalf("second sweep: %v", err)
	}
	if n := strings.Count(strings.TrimSpace(out.String()), "\n") + 1; n != 2 {
		t.Errorf("second run printed %d lines, want 2 (erase-b and the sweep)", n)
	}
	if again := get(erased); len(again) != 1 || !again[0].Time.Equal(&runA[0].Time) {
		t.Errorf("erase-a was reported again: %+v", again)
	}
	if run := lastRun(); run == nil {
		t.Error("the scheduled run did not write status.lastRun")
	}
}
