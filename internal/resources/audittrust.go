package resources

import (
	"crypto/ed25519"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// AuditTrustName is the ConfigMap in the operator's namespace that keeps
// every public checkpoint key a store has used, so that the store's audit
// logs can be verified after the store and its key Secrets are deleted. No
// store owns it, keys are added to it and never removed, and the logbook
// mounts it as its --trust-key-dir.
const AuditTrustName = "dossierguard-audit-trust"

// TrustKeyName is the ConfigMap key of one public signing key of a store:
// NAMESPACE_STORE_KEYID.pem, the file name `dossierguard logbook
// --trust-key-dir` reads (names of namespaces and stores have no
// underscore), with the key's id (auditlog.KeyID) as suffix, so that every
// rotated key has an entry of its own.
func TrustKeyName(store *v1alpha1.DossierStore, pub ed25519.PublicKey) string {
	return store.Namespace + "_" + store.Name + "_" + auditlog.KeyID(pub) + ".pem"
}

// NewAuditTrustConfigMap is the empty trust ConfigMap, labelled so that the
// operator's cache sees it, with no owner.
func NewAuditTrustConfigMap(namespace string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: AuditTrustName, Namespace: namespace, Labels: map[string]string{
			LabelManagedBy: ManagedByValue, LabelPartOf: ManagedByValue, LabelComponent: "audit-trust"}},
		Data: map[string]string{},
	}
}

// HoldsTrustKey says whether the trust ConfigMap already holds the store's
// public signing key pub under its entry name: the same key, not merely an
// entry of that name. It copies nothing, so that a reconcile that finds its
// keys kept costs no copy of a ConfigMap holding every store's keys.
func HoldsTrustKey(cm *corev1.ConfigMap, store *v1alpha1.DossierStore, pub ed25519.PublicKey) bool {
	old, ok := cm.Data[TrustKeyName(store, pub)]
	if !ok {
		return false
	}
	kept, err := auditlog.DecodePublicKeyPEM([]byte(old))
	return err == nil && kept.Equal(pub)
}

// WithTrustKey is a copy of the trust ConfigMap with the store's public
// signing key pub added (PEM), and whether it was missing. Every other entry
// is kept as it is: an entry of the same name with other content is an
// error, never overwritten, since older logs may depend on it.
func WithTrustKey(cm *corev1.ConfigMap, store *v1alpha1.DossierStore, pub ed25519.PublicKey) (*corev1.ConfigMap, bool, error) {
	pubPEM, err := auditlog.EncodePublicKeyPEM(pub)
	if err != nil {
		return nil, false, fmt.Errorf("encode the public signing key: %w", err)
	}
	name := TrustKeyName(store, pub)
	c := cm.DeepCopy()
	if old, ok := c.Data[name]; ok {
		if kept, err := auditlog.DecodePublicKeyPEM([]byte(old)); err != nil || !kept.Equal(pub) {
			return nil, false, fmt.Errorf("ConfigMap %s: entry %s holds another key; it is not replaced", AuditTrustName, name)
		}
		return c, false, nil
	}
	if c.Data == nil {
		c.Data = map[string]string{}
	}
	c.Data[name] = string(pubPEM)
	return c, true, nil
}
