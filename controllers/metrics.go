package controllers

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/dossierguard/dossierguard/internal/metrics"
)

// forgetIfGone handles a failed read of the reconciled object: when it is
// gone its metric series go too (internal/metrics), and not-found is no
// error.
func forgetIfGone(kind string, req ctrl.Request, err error) error {
	if apierrors.IsNotFound(err) {
		metrics.Forget(kind, req.Namespace, req.Name)
		return nil
	}
	return err
}
