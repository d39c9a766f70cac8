package resources

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// AgreementPolicyName is the NetworkPolicy of an agreement in force.
func AgreementPolicyName(a *v1alpha1.SharingAgreement) string { return "share-" + a.Name }

// AgreementPolicy admits the partner while the agreement is in force:
// egress from the store's workload to the partner on the listed ports,
// and/or ingress from the partner to the audit proxy's port only. It is
// owned by the agreement and deleted when the agreement leaves force.
func AgreementPolicy(a *v1alpha1.SharingAgreement, store *v1alpha1.DossierStore) *networkingv1ac.NetworkPolicyApplyConfiguration {
	peers := partnerPeers(a.Spec.Partner)
	spec := networkingv1ac.NetworkPolicySpec().WithPodSelector(LabelSelector(&store.Spec.Workload.Selector))
	direction := a.Spec.Direction
	if direction == "" {
		direction = v1alpha1.DirectionEgress
	}
	// An agreement with outbound routes sends through the store's egress
	// gateway only: the workload gets no direct egress to its partner.
	if (direction == v1alpha1.DirectionEgress || direction == v1alpha1.DirectionBoth) && !Outbound(a) {
		rule := networkingv1ac.NetworkPolicyEgressRule().WithTo(peers...)
		if len(a.Spec.Partner.Ports) > 0 {
			rule.WithPorts(Ports(a.Spec.Partner.Ports)...)
		}
		spec.WithEgress(rule).WithPolicyTypes(networkingv1.PolicyTypeEgress)
	}
	if direction == v1alpha1.DirectionIngress || direction == v1alpha1.DirectionBoth {
		spec.WithIngress(networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(peers...).
			WithPorts(port(corev1.ProtocolTCP, ProxyPort(store)))).
			WithPolicyTypes(networkingv1.PolicyTypeIngress)
	}
	labels := StoreLabels(store, "sharing-agreement")
	labels[v1alpha1.LabelAgreement] = a.Name
	return networkingv1ac.NetworkPolicy(AgreementPolicyName(a), a.Namespace).
		WithLabels(labels).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).
			WithKind("SharingAgreement").
			WithName(a.Name).
			WithUID(a.UID).
			WithController(true).
			WithBlockOwnerDeletion(true)).
		WithSpec(spec)
}

// AgreementPolicyNeeded says whether the agreement's own NetworkPolicy
// admits anything: not for an Egress agreement with outbound routes,
// whose partner only the egress gateway reaches (EgressGatewayPolicy).
func AgreementPolicyNeeded(a *v1alpha1.SharingAgreement) bool {
	return a.Spec.Direction == v1alpha1.DirectionIngress || a.Spec.Direction == v1alpha1.DirectionBoth || !Outbound(a)
}

// partnerPeers: a namespace (by its immutable name label) with an optional
// pod selector, a pod selector in the agreement's namespace, and/or CIDRs.
func partnerPeers(p v1alpha1.Partner) []*networkingv1ac.NetworkPolicyPeerApplyConfiguration {
	var peers []*networkingv1ac.NetworkPolicyPeerApplyConfiguration
	switch {
	case p.Namespace != "":
		peer := namespacePeer(p.Namespace)
		if p.PodSelector != nil {
			peer.WithPodSelector(LabelSelector(p.PodSelector))
		}
		peers = append(peers, peer)
	case p.PodSelector != nil:
		peers = append(peers, networkingv1ac.NetworkPolicyPeer().WithPodSelector(LabelSelector(p.PodSelector)))
	}
	for _, cidr := range p.CIDRs {
		peers = append(peers, networkingv1ac.NetworkPolicyPeer().WithIPBlock(networkingv1ac.IPBlock().WithCIDR(cidr)))
	}
	return peers
}
