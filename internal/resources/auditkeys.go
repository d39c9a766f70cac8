package resources

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// Keys of the audit-keys Secret.
const (
	AuditSigningKey   = "signing.key"
	AuditVerifyKey    = "signing.pub"
	AuditPseudonymKey = "pseudonym.key"
)

// ProxyTLSName is the Secret with the audit proxy's serving certificate.
func ProxyTLSName(store *v1alpha1.DossierStore) string { return store.Name + "-proxy-tls" }

// AuditKeysName is the Secret with a store's audit keys.
func AuditKeysName(store *v1alpha1.DossierStore) string { return store.Name + "-audit-keys" }

// NewAuditKeys generates the Ed25519 key that signs the audit log's
// checkpoints and the 256-bit key that pseudonymises data subjects, in the
// encodings the audit proxy reads (internal/auditlog).
func NewAuditKeys(random io.Reader) (map[string][]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	pub, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	privPEM, err := auditlog.EncodePrivateKeyPEM(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	pubPEM, err := auditlog.EncodePublicKeyPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("encode verification key: %w", err)
	}
	pseudonym := make([]byte, auditlog.PseudonymKeySize)
	if _, err := io.ReadFull(random, pseudonym); err != nil {
		return nil, fmt.Errorf("generate pseudonymisation key: %w", err)
	}
	return map[string][]byte{
		AuditSigningKey:   privPEM,
		AuditVerifyKey:    pubPEM,
		AuditPseudonymKey: pseudonym,
	}, nil
}

// CheckAuditKeys reports whether the data of an audit-keys Secret holds keys
// the audit proxy can use: a PEM Ed25519 signing key and a pseudonym key
// that passes auditlog.CheckPseudonymKey. The error names the key and the
// rule, never the key material.
func CheckAuditKeys(data map[string][]byte) error {
	if _, err := auditlog.DecodePrivateKeyPEM(data[AuditSigningKey]); err != nil {
		return fmt.Errorf("%s: %w", AuditSigningKey, err)
	}
	if err := auditlog.CheckPseudonymKey(data[AuditPseudonymKey]); err != nil {
		return fmt.Errorf("%s: %w", AuditPseudonymKey, err)
	}
	return nil
}

// NewAuditKeysSecret is a store's audit-keys Secret as it is created. The
// keys are made once and kept: a new signing key would not verify the
// checkpoints already written, and a new pseudonymisation key would break
// the link between a subject's events. It is never applied or updated but
// to put back labels someone took off (AdoptKeySecret).
func NewAuditKeysSecret(store *v1alpha1.DossierStore, keys map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: AuditKeysName(store), Namespace: store.Namespace,
			Labels: StoreLabels(store, "audit-keys"), OwnerReferences: []metav1.OwnerReference{storeOwnerRef(store)}},
		Type: corev1.SecretTypeOpaque, Data: keys,
	}
}
