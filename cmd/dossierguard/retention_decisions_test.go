package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/dsr"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// TestSweepHonoursRetentionDecisions runs the sweep command against a real
// API server and PostgreSQL: a due dossier with a granted RetentionExtension
// request is kept while another due dossier is destroyed, and the policy's
// status counts what the extension kept; a dated erasure does nothing before
// its day and erases on it; once the decisions cannot be read (the store and
// its cap are gone) the sweep destroys nothing and reports Failed.
func TestSweepHonoursRetentionDecisions(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	schema := fmt.Sprintf("decisions_cmd_%d", time.Now().UnixNano())
	now := time.Now().UTC()
	long, recent := now.AddDate(-30, 0, 0), now.AddDate(-1, 0, 0)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA %[1]s;
		CREATE TABLE %[1]s.dossiers (id bigint PRIMARY KEY, dossier_id text, closed_at timestamptz);`, schema)); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE") //nolint:errcheck
	insert := func(id int, dossier string, closed time.Time) {
		t.Helper()
		if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".dossiers VALUES ($1, $2, $3)", id, dossier, closed); err != nil {
			t.Fatal(err)
		}
	}
	insert(1, "D-1001", long)   // due, extended
	insert(2, "D-2002", long)   // due, no decision
	insert(3, "D-3003", recent) // not due; erasure from next month
	insert(4, "D-4004", recent) // not due; erasure from today

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
			Storage:           v1alpha1.StorageSpec{StorageClassName: "standard", Size: "10Gi"},
			DataSubjectRights: &v1alpha1.DataSubjectRightsSpec{MaxRetentionExtension: "P2Y"},
		},
	}
	mustCreate(store)
	key := []byte("a decisions test key of 32 byte!")
	secretName, secretKey := resources.PseudonymKeyRef(store)
	mustCreate(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns}, Data: map[string][]byte{secretKey: key}})
	policy := &v1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "bewaartermijn", Namespace: ns},
		Spec: v1alpha1.RetentionPolicySpec{
			StoreRef: v1alpha1.StoreReference{Name: store.Name},
			Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"},
			Schedule: "0 3 * * *",
			Rules: []v1alpha1.RetentionRule{{Name: "dossiers", Table: v1alpha1.SQLTableName(schema + ".dossiers"), DossierColumn: "dossier_id",
				Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_at"}, Period: "P15Y"}},
		},
	}
	mustCreate(policy)
	received := metav1.NewTime(now.Add(-time.Hour).Truncate(time.Second))
	request := func(name, id string, typ v1alpha1.RequestType, mutate func(*v1alpha1.DataSubjectRequest)) {
		r := &v1alpha1.DataSubjectRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.DataSubjectRequestSpec{
				StoreRef: v1alpha1.StoreReference{Name: store.Name}, Type: typ,
				Dossier:    v1alpha1.DossierPseudonym(auditproxy.DossierPseudonym(key, id)),
				ReceivedAt: received, Requester: v1alpha1.Requester{Relation: v1alpha1.RelationSelf},
				Subject: v1alpha1.DataSubject{AgeBand: v1alpha1.AgeAdult}, Handler: "privacy-officer",
				Decision: &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: received},
			},
		}
		mutate(r)
		mustCreate(r)
	}
	request("langer-bewaren", "D-1001", v1alpha1.RequestRetentionExtension, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.RetentionExtension = &v1alpha1.RetentionExtensionSpec{Until: dsr.DateOf(now.AddDate(1, 0, 0)).String(), Reference: "BRIEF-2026-118"}
	})
	weighing := &v1alpha1.ChildInterestWeighing{Reference: "BW-2026-117", DecidedBy: "gedragswetenschapper"}
	request("wissen-later", "D-3003", v1alpha1.RequestErasure, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Erasure = &v1alpha1.ErasureSpec{ChildInterestWeighing: weighing, NotBefore: dsr.DateOf(now.AddDate(0, 1, 0)).String()}
	})
	request("wissen-vandaag", "D-4004", v1alpha1.RequestErasure, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Erasure = &v1alpha1.ErasureSpec{ChildInterestWeighing: weighing, NotBefore: dsr.DateOf(received.Time).String()}
	})

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
	left := func() string {
		t.Helper()
		rows, err := conn.Query(ctx, "SELECT id FROM "+schema+".dossiers ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ids)
	}
	lastRun := func() *v1alpha1.RetentionRun {
		t.Helper()
		p := &v1alpha1.RetentionPolicy{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(policy), p); err != nil {
			t.Fatal(err)
		}
		return p.Status.LastRun
	}

	var out bytes.Buffer
	if err := runSweep(ctx, env.Config, sweepOptions{policy: policy.Name, namespace: ns}, &out); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if got := left(); got != "[1 3]" {
		t.Errorf("rows left %s; want [1 3]: the extended dossier and the erasure of next month", got)
	}
	run := lastRun()
	if run == nil || run.Result != v1alpha1.RunSucceeded || run.Destroyed != 1 || run.KeptByExtension != 1 || run.ExtensionsInEffect != 1 || run.Held != 1 {
		t.Errorf("status.lastRun %+v; want Succeeded, 1 destroyed, 1 kept by 1 extension (held)", run)
	}
	for _, secret := range []string{"D-1001", "D-3003", "D-4004", auditproxy.DossierPseudonym(key, "D-1001"), string(key)} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("stdout holds %q", secret)
		}
	}
	later := &v1alpha1.DataSubjectRequest{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "wissen-later"}, later); err != nil {
		t.Fatal(err)
	}
	if len(later.Status.Erasure) != 0 {
		t.Errorf("the erasure of next month was reported: %+v", later.Status.Erasure)
	}

	// The decisions cannot be read (the store, with its cap, is gone): a
	// newly due record stays, and the run says why.
	insert(5, "D-5005", long)
	if err := c.Delete(ctx, store); err != nil {
		t.Fatal(err)
	}
	// The store's finalizer, set at admission, is what the operator (not
	// running here) would take off once the volume is decided.
	gone := &v1alpha1.DossierStore{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(store), gone); err == nil {
		gone.Finalizers = nil
		if err := c.Update(ctx, gone); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(store), gone); !apierrors.IsNotFound(err) {
		t.Fatalf("the store is still there after its finalizer was taken off: %v", err)
	}
	out.Reset()
	err = runSweep(ctx, env.Config, sweepOptions{policy: policy.Name, namespace: ns}, &out)
	if err == nil || !strings.Contains(err.Error(), "the granted retention extensions could not be read; nothing was destroyed") {
		t.Errorf("sweep without the decisions: %v; want an error saying nothing was destroyed", err)
	}
	if got := left(); got != "[1 3 5]" {
		t.Errorf("rows left %s; want [1 3 5]: nothing destroyed", got)
	}
	if run := lastRun(); run == nil || run.Result != v1alpha1.RunFailed || run.Destroyed != 0 {
		t.Errorf("status.lastRun %+v; want Failed, nothing destroyed", run)
	}
}
