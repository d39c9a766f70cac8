package controllers_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// endpointsUnreadable is a reader whose list of EndpointSlices fails, as
// when the API server refuses it.
type endpointsUnreadable struct{ client.Reader }

func (r endpointsUnreadable) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*discoveryv1.EndpointSliceList); ok {
		return errors.New("endpointslices is forbidden")
	}
	return r.Reader.List(ctx, list, opts...)
}

// apiServerRules counts the isolation policy's egress rules to an address.
func apiServerRules(p *networkingv1.NetworkPolicy) int {
	n := 0
	for _, rule := range p.Spec.Egress {
		if len(rule.To) == 1 && rule.To[0].IPBlock != nil {
			n++
		}
	}
	return n
}

// TestIsolationWhenTheAPIServerEndpointsCannotBeRead: the workload is never
// left without its isolation policy. A store without one gets it, without
// the API server (the proxy then refuses every request for a dossier), and
// the step reports the failure; a store with one keeps it unchanged and it
// is not reported applied; once the endpoints can be read, they are in it.
func TestIsolationWhenTheAPIServerEndpointsCannotBeRead(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// A store the manager does not know (it was never created), so that
	// only these calls write its policy.
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "unseen", Namespace: ns, UID: types.UID("unseen-uid")},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dossier"}}, ServiceAccountName: "dossier-app", AppPort: 8080}}}
	failing := &controllers.DossierStoreReconciler{Client: k8s, Reader: endpointsUnreadable{k8s}}
	working := &controllers.DossierStoreReconciler{Client: k8s, Reader: k8s}
	policy := &networkingv1.NetworkPolicy{}
	get := func() {
		t.Helper()
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "unseen-isolation"}, policy); err != nil {
			t.Fatalf("the isolation policy: %v", err)
		}
	}

	applied, apiServer, err := failing.ReconcileIsolation(ctx, store)
	if !applied || apiServer || err == nil {
		t.Fatalf("no policy yet, endpoints unreadable: applied %v, API server %v, error %v; want applied without the API server, and the error", applied, apiServer, err)
	}
	get()
	if n := apiServerRules(policy); n != 0 || len(policy.Spec.PolicyTypes) != 2 {
		t.Errorf("policy %+v with %d API server rules; want default deny both ways without them", policy.Spec, n)
	}

	if applied, apiServer, err = working.ReconcileIsolation(ctx, store); !applied || !apiServer || err != nil {
		t.Fatalf("endpoints readable: applied %v, API server %v, error %v", applied, apiServer, err)
	}
	get()
	if apiServerRules(policy) == 0 {
		t.Fatalf("policy %+v: no rule to the API server once its endpoints are read", policy.Spec)
	}
	version := policy.ResourceVersion

	applied, apiServer, err = failing.ReconcileIsolation(ctx, store)
	if applied || apiServer || err == nil {
		t.Errorf("policy present, endpoints unreadable: applied %v, API server %v, error %v; want neither, and the error", applied, apiServer, err)
	}
	get()
	if policy.ResourceVersion != version || apiServerRules(policy) == 0 {
		t.Errorf("the policy was changed (resourceVersion %s, was %s) while the endpoints could not be read", policy.ResourceVersion, version)
	}
}

// countingReader counts the lists of EndpointSlices it passes on to the API
// server.
type countingReader struct {
	client.Reader
	lists atomic.Int32
}

func (r *countingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*discoveryv1.EndpointSliceList); ok {
		r.lists.Add(1)
	}
	return r.Reader.List(ctx, list, opts...)
}

// TestAPIServerEndpointsReadOnceWhileFresh: the reconciles of stores at the
// same time share one live read of the API server's endpoints, which
// serves them for EndpointsFresh and no longer; a failed read is never
// kept.
func TestAPIServerEndpointsReadOnceWhileFresh(t *testing.T) {
	ctx := context.Background()
	reader := &countingReader{Reader: k8s}
	r := &controllers.DossierStoreReconciler{Client: k8s, Reader: reader}
	now := time.Now()

	const reconciles = 8
	got := make([][]resources.APIEndpoint, reconciles)
	errs := make([]error, reconciles)
	var wg sync.WaitGroup
	for i := range reconciles {
		wg.Go(func() { got[i], errs[i] = r.APIServerEndpoints(ctx, now) })
	}
	wg.Wait()
	for i := range reconciles {
		if errs[i] != nil || len(got[i]) == 0 || !slices.Equal(got[i], got[0]) {
			t.Fatalf("reconcile %d: endpoints %v, error %v; want %v, the API server's", i, got[i], errs[i], got[0])
		}
	}
	if n := reader.lists.Load(); n != 1 {
		t.Errorf("%d reconciles at once listed the EndpointSlices %d times; want once", reconciles, n)
	}
	// What a caller does with its endpoints is its own.
	got[0][0].Port = 1
	if again, err := r.APIServerEndpoints(ctx, now.Add(controllers.EndpointsFresh-time.Millisecond)); err != nil || !slices.Equal(again, got[1]) {
		t.Errorf("a read still fresh: %v, %v; want %v", again, err, got[1])
	}
	if n := reader.lists.Load(); n != 1 {
		t.Errorf("a read still fresh listed again (%d lists)", n)
	}
	if _, err := r.APIServerEndpoints(ctx, now.Add(controllers.EndpointsFresh)); err != nil {
		t.Fatal(err)
	}
	if n := reader.lists.Load(); n != 2 {
		t.Errorf("after %v: %d lists; want a second read", controllers.EndpointsFresh, n)
	}

	// A read that failed is not kept: the next reconcile reads again.
	flaky := &flakyReader{Reader: k8s}
	flaky.fail.Store(true)
	fresh := &controllers.DossierStoreReconciler{Client: k8s, Reader: flaky}
	if eps, err := fresh.APIServerEndpoints(ctx, now); err == nil {
		t.Fatalf("endpoints unreadable: %v and no error", eps)
	}
	flaky.fail.Store(false)
	if eps, err := fresh.APIServerEndpoints(ctx, now); err != nil || len(eps) == 0 {
		t.Errorf("readable again, at the same moment: %v, %v; want the endpoints", eps, err)
	}
}

// flakyReader refuses to list EndpointSlices while fail is set.
type flakyReader struct {
	client.Reader
	fail atomic.Bool
}

func (r *flakyReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if r.fail.Load() {
		return endpointsUnreadable{r.Reader}.List(ctx, list, opts...)
	}
	return r.Reader.List(ctx, list, opts...)
}
