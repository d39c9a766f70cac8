// Package scheme builds the runtime.Scheme every dossierguard client uses:
// the built-in Kubernetes types and the privacy.dossierguard.io API.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	privacyv1alpha1 "github.com/dossierguard/dossierguard/api/v1alpha1"
)

// New returns a scheme with the Kubernetes and dossierguard types.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(privacyv1alpha1.AddToScheme(s))
	return s
}
