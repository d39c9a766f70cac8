package resources

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// LegacyAPIServerPolicyName is the NetworkPolicy that let the workload's
// pods reach the API server before its rules became part of the isolation
// policy; the operator removes it.
func LegacyAPIServerPolicyName(store *v1alpha1.DossierStore) string {
	return store.Name + "-api-server"
}

// APIEndpoint is one address and port the API server serves on.
type APIEndpoint struct {
	Address netip.Addr
	Port    int32
}

// APIServerServiceLabel selects the EndpointSlices of the API server's
// Service default/kubernetes.
const APIServerServiceLabel = "kubernetes"

// APIServerEndpoints are the ready addresses and TCP ports of the API
// server's EndpointSlices, sorted; NetworkPolicies see the endpoints, not
// the Service's cluster IP.
func APIServerEndpoints(slices []discoveryv1.EndpointSlice) []APIEndpoint {
	seen := map[APIEndpoint]bool{}
	var out []APIEndpoint
	for _, s := range slices {
		for _, p := range s.Ports {
			if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
				continue
			}
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && !*e.Conditions.Ready {
					continue
				}
				for _, a := range e.Addresses {
					addr, err := netip.ParseAddr(a)
					if err != nil {
						continue
					}
					ep := APIEndpoint{Address: addr, Port: *p.Port}
					if !seen[ep] {
						seen[ep] = true
						out = append(out, ep)
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Address.Compare(out[j].Address); c != 0 {
			return c < 0
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// apiServerRule admits one endpoint of the API server: its address alone,
// on its TCP port.
func apiServerRule(ep APIEndpoint) *networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration {
	return networkingv1ac.NetworkPolicyEgressRule().
		WithTo(networkingv1ac.NetworkPolicyPeer().WithIPBlock(networkingv1ac.IPBlock().WithCIDR(netip.PrefixFrom(ep.Address, ep.Address.BitLen()).String()))).
		WithPorts(port(corev1.ProtocolTCP, ep.Port))
}
