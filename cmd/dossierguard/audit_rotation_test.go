package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// A chain written across a signing-key rotation, as the proxy writes it
// from the store's mounted <store>-audit-signing Secret, verifies with
// `audit verify` on the file given both public keys (the Secret's
// signing-N.pub), not with one of them, and with `audit verify --logbook`
// when the logbook trusts what ConfigMap dossierguard-audit-trust holds
// (read as --trust-key-dir reads it).
func TestAuditVerifyAcrossASigningKeyRotation(t *testing.T) {
	ctx := context.Background()
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "wijkteam", UID: "u-1"}}
	t0 := time.Now().Add(-time.Hour).UTC()
	ring, _, err := resources.SigningRing{}.Rotate(t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, v2, err := ring.Rotate(t0.Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := resources.NewSigningSecret(store, ring)
	if err != nil {
		t.Fatal(err)
	}
	cm := resources.NewAuditTrustConfigMap("dossierguard-system")
	for _, pub := range ring.PublicKeys() {
		if cm, _, err = resources.WithTrustKey(cm, store, pub); err != nil {
			t.Fatal(err)
		}
	}
	keyDir, trustDir, work := t.TempDir(), t.TempDir(), t.TempDir()
	for name, data := range secret.Data {
		if err := os.WriteFile(filepath.Join(keyDir, name), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	for name, pem := range cm.Data {
		if err := os.WriteFile(filepath.Join(trustDir, name), []byte(pem), 0o444); err != nil {
			t.Fatal(err)
		}
	}

	// The proxy's key source, before and after version 2 is active.
	clock := t0.Add(2 * time.Minute)
	source := auditproxy.NewSigningKeySource(keyDir, func() time.Time { return clock }, nil)
	first, err := source.Start()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(work, "audit.jsonl")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: first, CheckpointEvery: 2, Chain: &auditlog.Chain{Store: "wijkteam/dossiers", Pod: "p-0"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if i == 3 {
			clock = v2.ActiveFrom
			source.Check(w.SetSigningKey)
		}
		if err := w.Append(ctx, auditlog.Event{
			Time: time.Date(2026, 12, 1, 9, 0, i, 0, time.UTC), TraceID: fmt.Sprintf("%032x", i+1), OperationID: fmt.Sprintf("%016x", i+1),
			DataSubject: strings.Repeat("cd", 32), Actor: "coach-0042", Roles: []string{"wijkcoach"},
			Action: auditlog.ActionRead, Categories: []string{"identity"}, Outcome: auditlog.OutcomeAllowed, Method: "GET", Route: "read-dossier", Status: 200,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if w.SigningKeyID() != v2.ID() {
		t.Fatalf("the writer signs with %s after the rotation; want %s", w.SigningKeyID(), v2.ID())
	}
	chainID := w.ChainID()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	pub1, pub2 := filepath.Join(work, "signing-1.pub"), filepath.Join(work, "signing-2.pub")
	for file, entry := range map[string]string{pub1: auditlog.SigningPublicFile(1), pub2: auditlog.SigningPublicFile(2)} {
		if err := os.WriteFile(file, secret.Data[entry], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, code := runAudit(t, nil, "audit", "verify", path, "--public-key", pub1, "--public-key", pub2)
	if code != 0 || !strings.HasPrefix(out, "OK: 6 events") {
		t.Fatalf("audit verify with both keys: %d %q %q", code, out, stderr)
	}
	for _, one := range []string{pub1, pub2} {
		out, _, code = runAudit(t, nil, "audit", "verify", path, "--public-key", one)
		if code != 1 || !strings.Contains(out, "bad-signature") {
			t.Errorf("audit verify with %s alone: %d %q; want a bad signature", filepath.Base(one), code, out)
		}
	}

	// The logbook, with the keys of the trust ConfigMap.
	dsn := testenv.PostgresDSN(t)
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cc := pc.ConnConfig
	t.Setenv("PGHOST", cc.Host)
	t.Setenv("PGPORT", fmt.Sprint(cc.Port))
	t.Setenv("PGUSER", cc.User)
	t.Setenv("PGDATABASE", cc.Database)
	t.Setenv("PGSSLMODE", "disable")
	admin := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, admin, "lb_rot_cmd_")
	if out, stderr, code := runAudit(t, nil, "logbook", "migrate", "--schema", schema); code != 0 {
		t.Fatalf("logbook migrate: %d %q %q", code, out, stderr)
	}
	pool := testenv.PostgresSchemaPool(t, schema)
	lb, err := logbook.New(ctx, pool, logbook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]ed25519.PublicKey{}
	if errs := (&logbookOptions{trustKeyDir: trustDir}).addTrustKeyDir(keys); len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(keys["wijkteam/dossiers"]) != 2 {
		t.Fatalf("the trust directory holds %d keys of the store; want 2", len(keys["wijkteam/dossiers"]))
	}
	for _, k := range keys["wijkteam/dossiers"] {
		if err := lb.TrustKey(ctx, "wijkteam/dossiers", k); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*auditlog.Record
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		r, err := auditlog.ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if res, err := lb.Ingest(ctx, auditlog.ExportRequest("wijkteam/dossiers", "p-0", chainID, recs)); err != nil || res.Stored != len(recs) {
		t.Fatalf("Ingest: %+v %v", res, err)
	}
	out, stderr, code = runAudit(t, nil, "audit", "verify", "--logbook", "--schema", schema, "--store", "wijkteam/dossiers")
	if code != 0 || !strings.Contains(out, "OK: 6 events") || !strings.HasSuffix(out, "1 chains of store wijkteam/dossiers, 0 broken\n") {
		t.Fatalf("audit verify --logbook across the rotation: %d %q %q", code, out, stderr)
	}
}
