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

// The recommended Kubernetes labels dossierguard sets on the objects it
// manages; its own labels and annotations are in api/v1alpha1.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelComponent = "app.kubernetes.io/component"
	ManagedByValue = "dossierguard"
)

// FieldOwner is the server-side-apply field manager of every write.
const FieldOwner = "dossierguard"

// Names of a store's children are deterministic so that a crash
// mid-reconcile never leaves an orphan or a duplicate.

// ClaimName is the store's dossier volume claim.
func ClaimName(store *v1alpha1.DossierStore) string { return store.Name + "-dossiers" }

// KeySecretName is the Secret holding the store's versioned data keys.
func KeySecretName(store *v1alpha1.DossierStore) string { return store.Name + "-datakey" }

// WorkloadAccessName is the Role (and RoleBinding) of the workload's
// ServiceAccount: it may read the data key and watch the namespace's
// DataSubjectRequests (the injected audit proxy runs as it).
func WorkloadAccessName(store *v1alpha1.DossierStore) string { return store.Name + "-workload" }

// LegacyWorkloadAccessNames are the Roles (and RoleBindings) that granted
// the workload the same two permissions one each before they became
// WorkloadAccessName; the operator removes them.
func LegacyWorkloadAccessNames(store *v1alpha1.DossierStore) []string {
	return []string{store.Name + "-datakey-reader", store.Name + "-subject-requests"}
}

// IsolationPolicyName is the store's default-deny NetworkPolicy.
func IsolationPolicyName(store *v1alpha1.DossierStore) string { return store.Name + "-isolation" }

// StoreLabels are the labels of every child of a store.
func StoreLabels(store *v1alpha1.DossierStore, component string) map[string]string {
	return map[string]string{
		LabelManagedBy:      ManagedByValue,
		LabelPartOf:         ManagedByValue,
		LabelComponent:      component,
		v1alpha1.LabelStore: store.Name,
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
