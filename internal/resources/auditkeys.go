package resources

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Keys of the audit-keys Secret.
const (
	AuditSigningKey   = "signing.key"
	AuditVerifyKey    = "signing.pub"
	AuditPseudonymKey = "pseudonym.key"
)

// AuditKeysName is the Secret with a store's audit keys.
func AuditKeysName(store *v1alpha1.DossierStore) string { return store.Name + "-audit-keys" }

// NewAuditKeys generates the Ed25519 key that signs the audit log's
// checkpoints and the 256-bit key that pseudonymises data subjects.
func NewAuditKeys(random io.Reader) (map[string][]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	pub, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode verification key: %w", err)
	}
	pseudonym := make([]byte, 32)
	if _, err := io.ReadFull(random, pseudonym); err != nil {
		return nil, fmt.Errorf("generate pseudonymisation key: %w", err)
	}
	return map[string][]byte{
		AuditSigningKey:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		AuditVerifyKey:    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		AuditPseudonymKey: pseudonym,
	}, nil
}

// AuditKeysSecret holds a store's audit keys. The keys are made once and
// kept: a new signing key would not verify the checkpoints already written,
// and a new pseudonymisation key would break the link between a subject's
// events.
func AuditKeysSecret(store *v1alpha1.DossierStore, keys map[string][]byte) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(AuditKeysName(store), store.Namespace).
		WithLabels(StoreLabels(store, "audit-keys")).
		WithOwnerReferences(StoreOwner(store)).
		WithType(corev1.SecretTypeOpaque).
		WithData(keys)
}
