package resources

import (
	"crypto/ed25519"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

func trustTestKey(t *testing.T, seed byte) ed25519.PublicKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
}

// Keys are only added to the trust ConfigMap: a rotated key gets an entry
// of its own beside the old one, the same key adds nothing, and an entry of
// the same name with another key is refused, never replaced.
func TestWithTrustKey(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "wijkteam"}}
	other := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "jeugd"}}
	k1, k2 := trustTestKey(t, 1), trustTestKey(t, 2)
	k1PEM, _ := auditlog.EncodePublicKeyPEM(k1)
	k2PEM, _ := auditlog.EncodePublicKeyPEM(k2)
	tests := []struct {
		name      string
		data      map[string]string
		store     *v1alpha1.DossierStore
		key       ed25519.PublicKey
		wantAdded bool
		wantKeys  []string
		wantErr   string
	}{
		{"first key of a new ConfigMap", nil, store, k1, true, []string{TrustKeyName(store, k1)}, ""},
		{"the same key again", map[string]string{TrustKeyName(store, k1): string(k1PEM)}, store, k1, false, []string{TrustKeyName(store, k1)}, ""},
		{"a rotated key keeps the old one", map[string]string{TrustKeyName(store, k1): string(k1PEM)}, store, k2, true,
			[]string{TrustKeyName(store, k1), TrustKeyName(store, k2)}, ""},
		{"another store's key is kept", map[string]string{TrustKeyName(other, k1): string(k1PEM)}, store, k1, true,
			[]string{TrustKeyName(other, k1), TrustKeyName(store, k1)}, ""},
		{"an entry of the name with another key", map[string]string{TrustKeyName(store, k1): string(k2PEM)}, store, k1, false, nil, "holds another key"},
		{"an entry of the name that is no key", map[string]string{TrustKeyName(store, k1): "junk"}, store, k1, false, nil, "holds another key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := NewAuditTrustConfigMap("dossierguard-system")
			cm.Data = tt.data
			before := len(tt.data)
			got, added, err := WithTrustKey(cm, tt.store, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if added != tt.wantAdded {
				t.Errorf("added %v, want %v", added, tt.wantAdded)
			}
			if len(got.Data) != len(tt.wantKeys) {
				t.Fatalf("entries %v, want %v", got.Data, tt.wantKeys)
			}
			for _, name := range tt.wantKeys {
				pub, err := auditlog.DecodePublicKeyPEM([]byte(got.Data[name]))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if name == TrustKeyName(tt.store, tt.key) && !pub.Equal(tt.key) {
					t.Errorf("%s holds another key", name)
				}
			}
			if len(cm.Data) != before {
				t.Error("WithTrustKey changed the ConfigMap it was given")
			}
		})
	}
}

// The trust ConfigMap belongs to no store, so deleting a store never
// deletes it, and it carries the managed-by label the operator's cache
// selects.
func TestAuditTrustConfigMapHasNoOwner(t *testing.T) {
	cm := NewAuditTrustConfigMap("dossierguard-system")
	if len(cm.OwnerReferences) != 0 {
		t.Errorf("owner references %v", cm.OwnerReferences)
	}
	if cm.Labels[LabelManagedBy] != ManagedByValue || cm.Name != AuditTrustName || cm.Namespace != "dossierguard-system" {
		t.Errorf("ConfigMap %s/%s labels %v", cm.Namespace, cm.Name, cm.Labels)
	}
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "wijkteam"}}
	if got, want := TrustKeyName(store, trustTestKey(t, 1)), "wijkteam_dossiers_"+auditlog.KeyID(trustTestKey(t, 1))+".pem"; got != want {
		t.Errorf("TrustKeyName %q, want %q", got, want)
	}
}

func TestHoldsTrustKey(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "wijkteam"}}
	other := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "jeugd"}}
	k1, k2 := trustTestKey(t, 1), trustTestKey(t, 2)
	k1PEM, _ := auditlog.EncodePublicKeyPEM(k1)
	k2PEM, _ := auditlog.EncodePublicKeyPEM(k2)
	tests := []struct {
		name string
		data map[string]string
		want bool
	}{
		{"kept", map[string]string{TrustKeyName(store, k1): string(k1PEM)}, true},
		{"no ConfigMap data", nil, false},
		{"only another store's entry for the key", map[string]string{TrustKeyName(other, k1): string(k1PEM)}, false},
		{"the entry's name with another key", map[string]string{TrustKeyName(store, k1): string(k2PEM)}, false},
		{"the entry's name with no key", map[string]string{TrustKeyName(store, k1): "not a key"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := NewAuditTrustConfigMap("dossierguard-system")
			cm.Data = tt.data
			if got := HoldsTrustKey(cm, store, k1); got != tt.want {
				t.Errorf("HoldsTrustKey = %v; want %v", got, tt.want)
			}
		})
	}
}
