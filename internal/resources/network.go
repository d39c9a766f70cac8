package resources

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// NamespaceNameLabel is set by Kubernetes on every namespace and cannot be
// changed, so selecting a namespace by it cannot be spoofed.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// DNSPort is the port the workload may always reach, for name resolution.
const DNSPort = 53

// ProxyHealthPort is the audit proxy's plain-HTTP port for its health
// probes and Prometheus metrics in every workload pod.
const ProxyHealthPort = 9901

// DefaultLogbookPort is the port the logbook's pods receive OTLP/HTTP on.
const DefaultLogbookPort = 4318

// IsolationExtras are the rules of every store's isolation policy that come
// from how the operator is installed rather than from the store.
type IsolationExtras struct {
	// Logbook, when set, is where the injected audit proxies ship their
	// chains: the workload may send to those pods on that port. Without it
	// a proxy that is given a logbook URL cannot reach it under an
	// enforcing network plugin and refuses every request (fail closed).
	Logbook *PodPeer
	// ProxyMetricsNamespaces, when set, selects by label the namespaces
	// (such as the Prometheus one) that may reach the proxy's health and
	// metrics port ProxyHealthPort; empty admits nobody there.
	ProxyMetricsNamespaces map[string]string
}

// PodPeer is a set of pods in one namespace, reached on one TCP port.
type PodPeer struct {
	Namespace string
	PodLabels map[string]string
	Port      int32
}

// IsolationPolicy is the default-deny NetworkPolicy around a store's
// workload: ingress only to the audit proxy's port, from the store's own
// namespace and the listed ingress namespaces, and to the proxy's metrics
// port from the namespaces extras names; egress only to DNS, to the
// declared dependencies, to the logbook extras names and to exactly the
// API server's endpoints (where the audit proxy watches the store's
// DataSubjectRequests; none when apiServer is empty: an egress rule without
// peers would admit every destination). Partners are admitted by their
// agreements' own policies, which add to this one.
func IsolationPolicy(store *v1alpha1.DossierStore, extras IsolationExtras, apiServer []APIEndpoint) *networkingv1ac.NetworkPolicyApplyConfiguration {
	w := store.Spec.Workload
	ingressFrom := []*networkingv1ac.NetworkPolicyPeerApplyConfiguration{namespacePeer(store.Namespace)}
	for _, ns := range w.IngressNamespaces {
		ingressFrom = append(ingressFrom, namespacePeer(ns))
	}
	ingress := []*networkingv1ac.NetworkPolicyIngressRuleApplyConfiguration{
		networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(ingressFrom...).
			WithPorts(port(corev1.ProtocolTCP, ProxyPort(store))),
	}
	if len(extras.ProxyMetricsNamespaces) > 0 {
		ingress = append(ingress, networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(networkingv1ac.NetworkPolicyPeer().WithNamespaceSelector(
				metav1ac.LabelSelector().WithMatchLabels(extras.ProxyMetricsNamespaces))).
			WithPorts(port(corev1.ProtocolTCP, ProxyHealthPort)))
	}
	egress := []*networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration{
		networkingv1ac.NetworkPolicyEgressRule().WithPorts(
			port(corev1.ProtocolUDP, DNSPort), port(corev1.ProtocolTCP, DNSPort)),
	}
	if lb := extras.Logbook; lb != nil {
		egress = append(egress, networkingv1ac.NetworkPolicyEgressRule().
			WithTo(namespacePeer(lb.Namespace).WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(lb.PodLabels))).
			WithPorts(port(corev1.ProtocolTCP, lb.Port)))
	}
	for _, dep := range w.Dependencies {
		egress = append(egress, dependencyRule(store, dep))
	}
	for _, ep := range apiServer {
		egress = append(egress, apiServerRule(ep))
	}
	return networkingv1ac.NetworkPolicy(IsolationPolicyName(store), store.Namespace).
		WithLabels(StoreLabels(store, "network-isolation")).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(LabelSelector(&w.Selector)).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(ingress...).
			WithEgress(egress...))
}

// dependencyRule admits a declared dependency: its pods, in its namespace
// (the store's when empty), on its ports.
func dependencyRule(store *v1alpha1.DossierStore, dep v1alpha1.Dependency) *networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration {
	ns := dep.Namespace
	if ns == "" {
		ns = store.Namespace
	}
	return networkingv1ac.NetworkPolicyEgressRule().
		WithTo(namespacePeer(ns).WithPodSelector(LabelSelector(&dep.PodSelector))).
		WithPorts(Ports(dep.Ports)...)
}

// ProxyPort is the audit proxy's port of a store, defaulted.
func ProxyPort(store *v1alpha1.DossierStore) int32 {
	if store.Spec.Workload.ProxyPort == 0 {
		return 8443
	}
	return store.Spec.Workload.ProxyPort
}

func namespacePeer(namespace string) *networkingv1ac.NetworkPolicyPeerApplyConfiguration {
	return networkingv1ac.NetworkPolicyPeer().WithNamespaceSelector(
		metav1ac.LabelSelector().WithMatchLabels(map[string]string{NamespaceNameLabel: namespace}))
}

func port(protocol corev1.Protocol, number int32) *networkingv1ac.NetworkPolicyPortApplyConfiguration {
	return networkingv1ac.NetworkPolicyPort().WithProtocol(protocol).WithPort(intstr.FromInt32(number))
}

// Ports converts API ports, TCP when no protocol is given.
func Ports(ports []v1alpha1.NetworkPort) []*networkingv1ac.NetworkPolicyPortApplyConfiguration {
	out := make([]*networkingv1ac.NetworkPolicyPortApplyConfiguration, 0, len(ports))
	for _, p := range ports {
		protocol := corev1.Protocol(p.Protocol)
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		out = append(out, port(protocol, p.Port))
	}
	return out
}

// LabelSelector converts a selector to its apply configuration.
func LabelSelector(s *metav1.LabelSelector) *metav1ac.LabelSelectorApplyConfiguration {
	out := metav1ac.LabelSelector()
	if len(s.MatchLabels) > 0 {
		out.WithMatchLabels(s.MatchLabels)
	}
	for _, e := range s.MatchExpressions {
		out.WithMatchExpressions(metav1ac.LabelSelectorRequirement().
			WithKey(e.Key).WithOperator(e.Operator).WithValues(e.Values...))
	}
	return out
}
