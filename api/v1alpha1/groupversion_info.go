// Package v1alpha1 holds the dossierguard API: DossierStore, AccessRole,
// SharingAgreement, RetentionPolicy and DataSubjectRequest in the group privacy.dossierguard.io.
//
// Validation that concerns one object lives here as OpenAPI and CEL markers so
// that the API server rejects bad input at admission with a message that names
// the field and the rule. Rules that span objects (an agreement's categories
// against its store's) are checked by the reconcilers and reported in status.
//
// +kubebuilder:object:generate=true
// +groupName=privacy.dossierguard.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every dossierguard resource.
	GroupVersion = schema.GroupVersion{Group: "privacy.dossierguard.io", Version: "v1alpha1"}

	// SchemeBuilder registers the dossierguard types with a runtime.Scheme.
	SchemeBuilder = &typeRegistry{}

	// AddToScheme adds the dossierguard types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// typeRegistry collects the kinds of this group version; each types file
// registers its kinds in init. It keeps the API package free of
// controller-runtime, so that clients can import it with apimachinery alone.
type typeRegistry struct {
	runtime.SchemeBuilder
}

// Register adds kinds to the group version.
func (r *typeRegistry) Register(objects ...runtime.Object) {
	r.SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, objects...)
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})
}
