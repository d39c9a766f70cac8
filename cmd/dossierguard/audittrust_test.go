package main

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// The trust ConfigMap the store reconciler fills, mounted as a directory,
// is what `logbook --trust-key-dir` reads: every key of every store, under
// the store's namespace/name.
func TestTrustConfigMapIsATrustKeyDir(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "wijkteam"}}
	cm := resources.NewAuditTrustConfigMap("dossierguard-system")
	var keys []ed25519.PublicKey
	for seed := byte(1); seed <= 2; seed++ {
		s := make([]byte, ed25519.SeedSize)
		s[0] = seed
		pub := ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
		keys = append(keys, pub)
		next, _, err := resources.WithTrustKey(cm, store, pub)
		if err != nil {
			t.Fatal(err)
		}
		cm = next
	}
	dir := t.TempDir()
	for name, pem := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(pem), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := logbookOptions{trustKeyDir: dir}
	got := map[string][]ed25519.PublicKey{}
	if errs := opts.addTrustKeyDir(got); len(errs) != 0 {
		t.Fatal(errs)
	}
	kept := got["wijkteam/dossiers"]
	if len(got) != 1 || len(kept) != 2 {
		t.Fatalf("trust keys %v", got)
	}
	for _, want := range keys {
		if !kept[0].Equal(want) && !kept[1].Equal(want) {
			t.Errorf("key %x is not trusted", want)
		}
	}
}
