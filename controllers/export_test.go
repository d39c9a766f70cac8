package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// ReconcileIsolation runs the store's isolation step alone, for tests of
// what it does when a dependency fails.
func (r *DossierStoreReconciler) ReconcileIsolation(ctx context.Context, store *v1alpha1.DossierStore) (applied, apiServer bool, err error) {
	return r.reconcileIsolation(ctx, store)
}

// APIServerEndpoints reads the API server's endpoints as the isolation step
// does, through the reconciler's shared read, as of now.
func (r *DossierStoreReconciler) APIServerEndpoints(ctx context.Context, now time.Time) ([]resources.APIEndpoint, error) {
	return r.endpoints.get(ctx, r.Reader, now)
}

// EndpointsFresh is how long one read of the API server's endpoints is shared.
const EndpointsFresh = endpointsFresh

// ApplyChild is applyChild, for tests of how a child is told in step.
var ApplyChild = applyChild

// OwnsExactly says whether dossierguard's applied entry in live holds
// exactly the fields of desired as applyHashed would apply it.
func OwnsExactly(live client.Object, desired runtime.ApplyConfiguration) (bool, error) {
	want, err := hashedChildOf(desired)
	if err != nil {
		return false, err
	}
	obj, err := want.object()
	if err != nil {
		return false, err
	}
	return ownsExactly(live.GetManagedFields(), obj)
}
