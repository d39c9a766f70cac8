package resources

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// PseudonymKeyRef is where a store's pseudonym key is kept: the Secret and
// its data key. Everything that reads the key outside the audit proxy (the
// `dossierguard pseudonym` command) finds it here, so that it follows the
// key wherever the store keeps it.
func PseudonymKeyRef(store *v1alpha1.DossierStore) (secret, key string) {
	return PseudonymName(store), PseudonymKey
}

// ReadPseudonymKey is the pseudonym key in the Secret PseudonymKeyRef names,
// checked with auditlog.CheckPseudonymKey. The error names the Secret and
// the rule, never the key material.
func ReadPseudonymKey(store *v1alpha1.DossierStore, secret *corev1.Secret) ([]byte, error) {
	name, key := PseudonymKeyRef(store)
	if secret == nil || secret.Name != name {
		return nil, fmt.Errorf("the pseudonym key of store %s is in Secret %s", store.Name, name)
	}
	data := secret.Data[key]
	if err := auditlog.CheckPseudonymKey(data); err != nil {
		return nil, fmt.Errorf("the pseudonym key in Secret %s, key %s: %w", name, key, err)
	}
	return data, nil
}
