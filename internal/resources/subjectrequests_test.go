package resources

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestAPIServerEndpoints: the ready TCP endpoints, deduplicated and sorted.
func TestAPIServerEndpoints(t *testing.T) {
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
}

// TestIsolationPolicyAdmitsTheAPIServer: the isolation policy with the API
// server's endpoints is the isolation policy without them plus, for each
// endpoint, one egress rule to its address alone on its TCP port, the
// rules the separate API-server policy used to hold. The same pods are
// selected, with the same policy types, and NetworkPolicies add up rule by
// rule, so the one policy admits exactly what the two did.
func TestIsolationPolicyAdmitsTheAPIServer(t *testing.T) {
	tcp := corev1.ProtocolTCP
	endpoints := []APIEndpoint{{Address: netip.MustParseAddr("192.0.2.9"), Port: 6443}, {Address: netip.MustParseAddr("2001:db8::1"), Port: 443}}
	without, with := isolationSpec(t, IsolationExtras{}, nil), isolationSpec(t, IsolationExtras{}, endpoints)
	if !reflect.DeepEqual(with.PodSelector, without.PodSelector) || !reflect.DeepEqual(with.PolicyTypes, without.PolicyTypes) ||
		!reflect.DeepEqual(with.Ingress, without.Ingress) {
		t.Fatalf("the API server's endpoints changed more than egress:\n%+v\n%+v", with, without)
	}
	want := append(slices.Clone(without.Egress),
		networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.9/32"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(6443))}}},
		networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "2001:db8::1/128"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(443))}}})
	if !reflect.DeepEqual(with.Egress, want) {
		t.Errorf("egress\n%+v\nwant\n%+v", with.Egress, want)
	}
	if !slices.Contains(with.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Error("egress must be isolated")
	}
}
