package resources

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// DossierClaim is the PersistentVolumeClaim that holds a store's dossiers.
// The caller creates it only on a class verified to encrypt at rest. The
// size is validated by the API (a positive quantity that never shrinks).
func DossierClaim(store *v1alpha1.DossierStore) *corev1ac.PersistentVolumeClaimApplyConfiguration {
	return corev1ac.PersistentVolumeClaim(ClaimName(store), store.Namespace).
		WithLabels(StoreLabels(store, "dossier-volume")).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(corev1ac.PersistentVolumeClaimSpec().
			WithAccessModes(corev1.ReadWriteOnce).
			WithStorageClassName(store.Spec.Storage.StorageClassName).
			WithResources(corev1ac.VolumeResourceRequirements().
				WithRequests(corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(store.Spec.Storage.Size)})))
}
