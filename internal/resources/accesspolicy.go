package resources

import (
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// AccessPolicyName is the ConfigMap with a store's rendered access policy.
func AccessPolicyName(store *v1alpha1.DossierStore) string { return store.Name + "-access-policy" }

// AccessPolicyConfigMap holds the canonical access-policy document that the
// audit proxy loads, with its hash as an annotation.
func AccessPolicyConfigMap(store *v1alpha1.DossierStore, document []byte, hash string) *corev1ac.ConfigMapApplyConfiguration {
	return corev1ac.ConfigMap(AccessPolicyName(store), store.Namespace).
		WithLabels(StoreLabels(store, "access-policy")).
		WithAnnotations(map[string]string{v1alpha1.AnnotationPolicyHash: hash}).
		WithOwnerReferences(StoreOwner(store)).
		WithData(map[string]string{accesspolicy.ConfigMapKey: string(document)})
}
