package resources

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestAPIServerEndpointsAndPolicy: the ready TCP endpoints, deduplicated
// and sorted, each one peer of its own with one port; egress only.
func TestAPIServerEndpointsAndPolicy(t *testing.T) {
	port, udp := int32(6443), corev1.ProtocolUDP
	ready, notReady := true, false
	slices := []discoveryv1.EndpointSlice{
		{Ports: []discoveryv1.EndpointPort{{Port: &port}}, Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"192.0.2.10"}}, {Addresses: []string{"192.0.2.9"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"192.0.2.11"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}}, {Addresses: []string{"not-an-ip"}}}},
		{Ports: []discoveryv1.EndpointPort{{Port: &port}}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10", "2001:db8::1"}}}},
		{Ports: []discoveryv1.EndpointPort{{Port: &port, Protocol: &udp}}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.99"}}}},
	}
	got := APIServerEndpoints(slices)
	var names []string
	for _, ep := range got {
		names = append(names, fmt.Sprintf("%s:%d", ep.Address, ep.Port))
	}
	if want := "192.0.2.9:6443 192.0.2.10:6443 2001:db8::1:6443"; strings.Join(names, " ") != want {
		t.Errorf("endpoints %v, want %s (ready, TCP, deduplicated, sorted)", names, want)
	}
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}}}}}
	pol := APIServerPolicy(store, got)
	if *pol.Name != "s-api-server" || len(pol.Spec.PolicyTypes) != 1 || pol.Spec.PolicyTypes[0] != "Egress" || len(pol.Spec.Egress) != 3 {
		t.Fatalf("policy %s types %v with %d rules", *pol.Name, pol.Spec.PolicyTypes, len(pol.Spec.Egress))
	}
	if cidr := *pol.Spec.Egress[2].To[0].IPBlock.CIDR; cidr != "2001:db8::1/128" {
		t.Errorf("IPv6 peer %s, want 2001:db8::1/128", cidr)
	}
	if cidr := *pol.Spec.Egress[0].To[0].IPBlock.CIDR; cidr != "192.0.2.9/32" {
		t.Errorf("IPv4 peer %s, want 192.0.2.9/32", cidr)
	}
}
