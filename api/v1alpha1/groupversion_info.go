// Package v1alpha1 holds the dossierguard API: DossierStore, AccessRole,
// SharingAgreement and RetentionPolicy in the group privacy.dossierguard.io.
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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every dossierguard resource.
	GroupVersion = schema.GroupVersion{Group: "privacy.dossierguard.io", Version: "v1alpha1"}

	// SchemeBuilder registers the dossierguard types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the dossierguard types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
