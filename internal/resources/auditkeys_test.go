package resources

import (
	"crypto/ed25519"
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
