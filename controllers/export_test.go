package controllers

import (
	"context"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// ReconcileIsolation runs the store's isolation step alone, for tests of
// what it does when a dependency fails.
func (r *DossierStoreReconciler) ReconcileIsolation(ctx context.Context, store *v1alpha1.DossierStore) (applied, apiServer bool, err error) {
	return r.reconcileIsolation(ctx, store)
}
