package resources

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// The keys the operator makes are the keys the audit proxy and the
// verifier read.
func TestAuditKeysFitTheAuditLog(t *testing.T) {
	keys, err := NewAuditKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := auditlog.DecodePrivateKeyPEM(keys[AuditSigningKey])
	if err != nil {
		t.Fatalf("signing key: %v", err)
	}
	pub, err := auditlog.DecodePublicKeyPEM(keys[AuditVerifyKey])
	if err != nil {
		t.Fatalf("verification key: %v", err)
	}
	if !pub.Equal(priv.Public().(ed25519.PublicKey)) {
		t.Error("the verification key does not belong to the signing key")
	}
	if err := auditlog.CheckPseudonymKey(keys[AuditPseudonymKey]); err != nil {
		t.Errorf("pseudonymisation key: %v", err)
	}
	again, _ := NewAuditKeys(nil)
	if string(again[AuditPseudonymKey]) == string(keys[AuditPseudonymKey]) {
		t.Error("two stores got the same pseudonymisation key")
	}
}

func TestCheckAuditKeys(t *testing.T) {
	good, err := NewAuditKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	with := func(key string, value []byte) map[string][]byte {
		m := map[string][]byte{}
		for k, v := range good {
			m[k] = v
		}
		if value == nil {
			delete(m, key)
		} else {
			m[key] = value
		}
		return m
	}
	long := make([]byte, 64)
	for _, tt := range []struct {
		name    string
		data    map[string][]byte
		wantErr string
	}{
		{"made by NewAuditKeys", good, ""},
		{"longer pseudonym key", with(AuditPseudonymKey, long), ""},
		{"no signing key", with(AuditSigningKey, nil), AuditSigningKey},
		{"signing key not PEM", with(AuditSigningKey, []byte("not a key")), AuditSigningKey},
		{"public key as signing key", with(AuditSigningKey, good[AuditVerifyKey]), AuditSigningKey},
		{"no pseudonym key", with(AuditPseudonymKey, nil), AuditPseudonymKey},
		{"short pseudonym key", with(AuditPseudonymKey, make([]byte, 31)), AuditPseudonymKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAuditKeys(tt.data)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckAuditKeys: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr+":")):
				t.Errorf("CheckAuditKeys = %v; want an error naming %s", err, tt.wantErr)
			}
		})
	}
}
