package resources

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// SubjectRequestReaderName is the Role and RoleBinding that let the audit
// proxy (the workload's ServiceAccount) watch the DataSubjectRequests of
// its namespace.
func SubjectRequestReaderName(store *v1alpha1.DossierStore) string {
	return store.Name + "-subject-requests"
}

// APIServerPolicyName is the NetworkPolicy that lets the workload's pods
// reach the API server, where the audit proxy watches the requests.
func APIServerPolicyName(store *v1alpha1.DossierStore) string { return store.Name + "-api-server" }

// SubjectRequestReaderRole may get, list and watch DataSubjectRequests in
// the store's namespace: what the audit proxy needs to enforce restrictions
// and objections within seconds of their decision. A request holds
// pseudonyms and dates, never an identifier.
func SubjectRequestReaderRole(store *v1alpha1.DossierStore) *rbacv1ac.RoleApplyConfiguration {
	return rbacv1ac.Role(SubjectRequestReaderName(store), store.Namespace).
		WithLabels(StoreLabels(store, "subject-requests-access")).
		WithOwnerReferences(StoreOwner(store)).
		WithRules(rbacv1ac.PolicyRule().
			WithAPIGroups(v1alpha1.GroupVersion.Group).
			WithResources("datasubjectrequests").
			WithVerbs("get", "list", "watch"))
}

// SubjectRequestReaderBinding grants that Role to the workload's
// ServiceAccount, which the injected proxy runs as.
func SubjectRequestReaderBinding(store *v1alpha1.DossierStore) *rbacv1ac.RoleBindingApplyConfiguration {
	return rbacv1ac.RoleBinding(SubjectRequestReaderName(store), store.Namespace).
		WithLabels(StoreLabels(store, "subject-requests-access")).
		WithOwnerReferences(StoreOwner(store)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(SubjectRequestReaderName(store))).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(store.Spec.Workload.ServiceAccountName).WithNamespace(store.Namespace))
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

// APIServerPolicy lets the workload's pods open connections to exactly the
// API server's endpoints; it adds to the isolation policy. It must not be
// applied without endpoints: an egress rule without peers admits every
// destination.
func APIServerPolicy(store *v1alpha1.DossierStore, endpoints []APIEndpoint) *networkingv1ac.NetworkPolicyApplyConfiguration {
	rules := make([]*networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration, 0, len(endpoints))
	for _, ep := range endpoints {
		rules = append(rules, apiServerRule(ep))
	}
	w := store.Spec.Workload
	return networkingv1ac.NetworkPolicy(APIServerPolicyName(store), store.Namespace).
		WithLabels(StoreLabels(store, "api-server-access")).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(LabelSelector(&w.Selector)).
			WithPolicyTypes(networkingv1.PolicyTypeEgress).
			WithEgress(rules...))
}

// apiServerRule admits one endpoint of the API server: its address alone,
// on its TCP port.
func apiServerRule(ep APIEndpoint) *networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration {
	return networkingv1ac.NetworkPolicyEgressRule().
		WithTo(networkingv1ac.NetworkPolicyPeer().WithIPBlock(networkingv1ac.IPBlock().WithCIDR(netip.PrefixFrom(ep.Address, ep.Address.BitLen()).String()))).
		WithPorts(port(corev1.ProtocolTCP, ep.Port))
}
