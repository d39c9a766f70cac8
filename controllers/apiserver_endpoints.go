package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/internal/resources"
)

// endpointsFresh is how long one live read of the API server's endpoints
// serves every store's reconcile. The endpoints are not watched: a store
// takes a change in at its next reconcile (at most auditRecheck later), so
// a read this much older delays no store noticeably, and converging stores
// cost the API server one list every endpointsFresh instead of one per
// reconcile.
const endpointsFresh = 10 * time.Second

// apiServerEndpoints is the last live read of the API server's endpoints,
// shared by every store's reconcile while it is fresh. Reconciles that
// need a read at the same time wait for one read; a failed read is not
// kept, so the next reconcile asks again. The zero value is ready to use.
type apiServerEndpoints struct {
	mu        sync.Mutex
	read      time.Time
	endpoints []resources.APIEndpoint
}

// get is the API server's endpoints (resources.APIServerEndpoints), read
// live from the EndpointSlices of default/kubernetes with reader unless a
// read of less than endpointsFresh before now is kept. The caller gets its
// own copy.
func (m *apiServerEndpoints) get(ctx context.Context, reader client.Reader, now time.Time) ([]resources.APIEndpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.read.IsZero() && now.Sub(m.read) < endpointsFresh && !now.Before(m.read) {
		return slices.Clone(m.endpoints), nil
	}
	list := &discoveryv1.EndpointSliceList{}
	if err := reader.List(ctx, list, client.InNamespace("default"),
		client.MatchingLabels{discoveryv1.LabelServiceName: resources.APIServerServiceLabel}); err != nil {
		return nil, fmt.Errorf("list the API server's EndpointSlices: %w", err)
	}
	m.endpoints, m.read = resources.APIServerEndpoints(list.Items), now
	return slices.Clone(m.endpoints), nil
}
