// Package resources builds the desired child objects of dossierguard
// resources as server-side-apply configurations. Every function here is pure:
// it takes the parent (and facts such as the current key ring) and returns
// the object with only the fields dossierguard owns, so it is unit-tested
// without a client.
package resources

import (
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Labels and annotations dossierguard sets on the objects it manages.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	LabelPartOf         = "app.kubernetes.io/part-of"
	LabelComponent      = "app.kubernetes.io/component"
	ManagedByValue      = "dossierguard"
	LabelStore          = "privacy.dossierguard.io/store"
	AnnotationEncrypted = "privacy.dossierguard.io/encrypted-at-rest"
	AnnotationRetained  = "privacy.dossierguard.io/retained-from-store"
)

// FieldOwner is the server-side-apply field manager of every write.
const FieldOwner = "dossierguard"

// Names of a store's children. They are deterministic so that a crash
// mid-reconcile never leaves an orphan or a duplicate.
func ClaimName(store *v1alpha1.DossierStore) string           { return store.Name + "-dossiers" }
func KeySecretName(store *v1alpha1.DossierStore) string       { return store.Name + "-datakey" }
func KeyReaderName(store *v1alpha1.DossierStore) string       { return store.Name + "-datakey-reader" }
func IsolationPolicyName(store *v1alpha1.DossierStore) string { return store.Name + "-isolation" }

// StoreLabels are the labels of every child of a store.
func StoreLabels(store *v1alpha1.DossierStore, component string) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelPartOf:    ManagedByValue,
		LabelComponent: component,
		LabelStore:     store.Name,
	}
}

// StoreOwner is the controller owner reference of a store's children.
func StoreOwner(store *v1alpha1.DossierStore) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).
		WithKind("DossierStore").
		WithName(store.Name).
		WithUID(store.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}
