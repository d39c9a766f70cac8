// Package scheme builds the runtime.Scheme every dossierguard client uses:
// the built-in Kubernetes types, the privacy.dossierguard.io API and the
// OpenReports API (openreports.io/v1alpha1) of the compliance reports.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"

	privacyv1alpha1 "github.com/dossierguard/dossierguard/api/v1alpha1"
)

// New returns a scheme with the Kubernetes, dossierguard and OpenReports
// types.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(privacyv1alpha1.AddToScheme(s))
	utilruntime.Must(openreportsv1alpha1.Install(s))
	return s
}
