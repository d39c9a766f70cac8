package controllers_test

import (
	"context"
	"errors"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
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
