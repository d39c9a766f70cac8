package controllers_test

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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// writeSignedLog writes a short audit log signed with priv, as the audit
// proxy does, and returns its bytes.
func writeSignedLog(t *testing.T, priv ed25519.PrivateKey) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: priv, CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ev := auditlog.Event{Time: time.Date(2026, 9, 1, 8, 30, i, 0, time.UTC), TraceID: fmt.Sprintf("%032x", i+1), OperationID: fmt.Sprintf("%016x", i+1),
			ProcessingActivityID: "https://register.example/verwerkingen/wijkteam", DataSubject: strings.Repeat("ab", 32), Actor: "coach-0042",
			Roles: []string{"wijkcoach"}, Action: auditlog.ActionRead, Categories: []string{"identity"}, Outcome: auditlog.OutcomeAllowed,
			Method: "GET", Route: "read-dossier", Status: 200}
		if err := w.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// trustedKeys are the public keys the trust ConfigMap holds for a store.
func trustedKeys(ctx context.Context, ns, store string) ([]ed25519.PublicKey, error) {
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, key(operatorNamespace, resources.AuditTrustName), cm); err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for name, pem := range cm.Data {
		if !strings.HasPrefix(name, ns+"_"+store+"_") {
			continue
		}
		pub, err := auditlog.DecodePublicKeyPEM([]byte(pem))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// Deleting a store deletes its signing Secret (it is owned by the
// store), and with it the public key that verifies the store's past audit
// logs. The store publishes its public signing key into the trust ConfigMap
// in the operator's namespace, which the store does not own: after the
// store and its Secret are gone (the garbage collector, which envtest does
// not run, is played by the test), a log signed before still verifies with
// the keys that remain.
func TestAuditPublicKeysOutliveTheStore(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, resources.AuditSigningName(store)), secret); err != nil {
		t.Fatal(err)
	}
	ring, err := resources.ReadSigningRing(secret)
	if err != nil {
		t.Fatal(err)
	}
	log := writeSignedLog(t, ring.Newest().Key)

	eventually(t, timeout, func() error {
		keys, err := trustedKeys(ctx, ns, store.Name)
		if err != nil {
			return err
		}
		if len(keys) != 1 {
			return fmt.Errorf("trust ConfigMap holds %d keys of the store; want 1", len(keys))
		}
		return nil
	})

	live := getStore(t, store)
	if err := k8s.Delete(ctx, live); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		if err := k8s.Get(ctx, key(ns, store.Name), &v1alpha1.DossierStore{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("store still there (%v)", err)
		}
		return nil
	})
	// The garbage collector deletes what the store owned.
	if err := k8s.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, key(operatorNamespace, resources.AuditTrustName), cm); err != nil {
		t.Fatal(err)
	}
	for _, o := range cm.OwnerReferences {
		if o.UID == live.UID {
			t.Fatalf("the trust ConfigMap is owned by the store, so the garbage collector deletes it with the store")
		}
	}
	keys, err := trustedKeys(ctx, ns, store.Name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := auditlog.VerifyWithOptions(bytes.NewReader(log), auditlog.VerifyOptions{PublicKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Events != 3 {
		t.Fatalf("the store's old log does not verify with the kept keys: %+v", res)
	}
}
