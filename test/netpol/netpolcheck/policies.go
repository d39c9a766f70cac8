package netpolcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// loadedPolicy is a policy with the file it came from ("inline" otherwise).
type loadedPolicy struct {
	np     *networkingv1.NetworkPolicy
	source string
}

func (lp loadedPolicy) ref() string { return lp.np.Namespace + "/" + lp.np.Name }

// decodePolicyStream decodes a (multi-document) YAML stream of
// NetworkPolicies; a document may also be a List of them.
func decodePolicyStream(data []byte) ([]*networkingv1.NetworkPolicy, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*networkingv1.NetworkPolicy
	for doc := 1; ; doc++ {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		j, err := yaml.YAMLToJSONStrict(chunk)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
			continue // empty document or only comments
		}
		nps, err := decodePolicyObject(j)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		out = append(out, nps...)
	}
	return out, nil
}

// decodePolicyObject decodes one JSON object: a networking.k8s.io/v1
// NetworkPolicy, or a List / NetworkPolicyList of them. Unknown fields
// are errors, so a typo cannot silently drop a rule.
func decodePolicyObject(j []byte) ([]*networkingv1.NetworkPolicy, error) {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(j, &head); err != nil {
		return nil, err
	}
	switch {
	case head.Kind == "NetworkPolicy" && head.APIVersion == "networking.k8s.io/v1":
		var np networkingv1.NetworkPolicy
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&np); err != nil {
			return nil, fmt.Errorf("NetworkPolicy: %w", err)
		}
		return []*networkingv1.NetworkPolicy{&np}, nil
	case (head.Kind == "List" && head.APIVersion == "v1") ||
		(head.Kind == "NetworkPolicyList" && head.APIVersion == "networking.k8s.io/v1"):
		var out []*networkingv1.NetworkPolicy
		for i, item := range head.Items {
			nps, err := decodePolicyObject(item)
			if err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			out = append(out, nps...)
		}
		return out, nil
	}
	if head.APIVersion == "" && head.Kind == "" {
		return nil, fmt.Errorf("apiVersion and kind are missing: write them (apiVersion: networking.k8s.io/v1, kind: NetworkPolicy); a Go builder leaves TypeMeta empty unless it is set before marshalling")
	}
	return nil, fmt.Errorf("apiVersion %q kind %q: only networking.k8s.io/v1 NetworkPolicy (or a List of them) is accepted", head.APIVersion, head.Kind)
}

// validatePolicies defaults the policies as the API server does and rejects
// what the API server would reject, what the scenario cannot place, and the
// selectors the matcher is known to evaluate differently from Kubernetes.
func (s *Scenario) validatePolicies() error {
	seen := map[string]string{}
	for _, lp := range s.netpols {
		np := lp.np
		where := fmt.Sprintf("policy %s/%s (%s)", np.Namespace, np.Name, lp.source)
		if np.Name == "" {
			return fmt.Errorf("a policy in %s has no metadata.name", lp.source)
		}
		if np.Namespace == "" {
			return fmt.Errorf("%s: metadata.namespace is required: the checker does not guess the namespace kubectl would apply it to", where)
		}
		if s.namespace(np.Namespace) == nil {
			return fmt.Errorf("%s: namespace %q is not declared under namespaces", where, np.Namespace)
		}
		if prev, ok := seen[lp.ref()]; ok {
			return fmt.Errorf("%s: declared again (first in %s); applying both would keep only the last", where, prev)
		}
		seen[lp.ref()] = lp.source
		defaultPolicy(np)
		if err := validateSpec(&np.Spec); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// defaultPolicy applies the API server's defaults: policyTypes is Ingress,
// plus Egress when there are egress rules; a port's protocol is TCP.
func defaultPolicy(np *networkingv1.NetworkPolicy) {
	spec := &np.Spec
	if len(spec.PolicyTypes) == 0 {
		spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(spec.Egress) > 0 {
			spec.PolicyTypes = append(spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	tcp := corev1.ProtocolTCP
	for i := range spec.Ingress {
		for k := range spec.Ingress[i].Ports {
			if spec.Ingress[i].Ports[k].Protocol == nil {
				spec.Ingress[i].Ports[k].Protocol = &tcp
			}
		}
	}
	for i := range spec.Egress {
		for k := range spec.Egress[i].Ports {
			if spec.Egress[i].Ports[k].Protocol == nil {
				spec.Egress[i].Ports[k].Protocol = &tcp
			}
		}
	}
}

func validateSpec(spec *networkingv1.NetworkPolicySpec) error {
	if err := validateSelector("spec.podSelector", &spec.PodSelector); err != nil {
		return err
	}
	types := map[networkingv1.PolicyType]bool{}
	for _, t := range spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			return fmt.Errorf("spec.policyTypes: %q is not Ingress or Egress", t)
		}
		if types[t] {
			return fmt.Errorf("spec.policyTypes: %q given twice", t)
		}
		types[t] = true
	}
	for i, r := range spec.Ingress {
		if err := validateRule(fmt.Sprintf("spec.ingress[%d]", i), r.Ports, r.From); err != nil {
			return err
		}
	}
	for i, r := range spec.Egress {
		if err := validateRule(fmt.Sprintf("spec.egress[%d]", i), r.Ports, r.To); err != nil {
			return err
		}
	}
	return nil
}

func validateRule(path string, ports []networkingv1.NetworkPolicyPort, peers []networkingv1.NetworkPolicyPeer) error {
	if err := validatePorts(path, ports); err != nil {
		return err
	}
	return validatePeers(path, peers)
}

func validatePorts(path string, ports []networkingv1.NetworkPolicyPort) error {
	for i, p := range ports {
		pp := fmt.Sprintf("%s.ports[%d]", path, i)
		switch *p.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			return fmt.Errorf("%s.protocol: %q is not TCP, UDP or SCTP", pp, *p.Protocol)
		}
		if p.Port != nil && p.Port.Type == intstr.Int && (p.Port.IntVal < 1 || p.Port.IntVal > 65535) {
			return fmt.Errorf("%s.port: %d is not 1-65535", pp, p.Port.IntVal)
		}
		if p.Port != nil && p.Port.Type == intstr.String && p.Port.StrVal == "" {
			return fmt.Errorf("%s.port: empty port name", pp)
		}
		if p.EndPort != nil {
			if p.Port == nil || p.Port.Type != intstr.Int {
				return fmt.Errorf("%s.endPort: requires a numeric port", pp)
			}
			if *p.EndPort < p.Port.IntVal || *p.EndPort > 65535 {
				return fmt.Errorf("%s.endPort: %d must be between port and 65535", pp, *p.EndPort)
			}
		}
	}
	return nil
}

func validatePeers(path string, peers []networkingv1.NetworkPolicyPeer) error {
	for i, peer := range peers {
		pp := fmt.Sprintf("%s.peers[%d]", path, i)
		if peer.IPBlock == nil && peer.NamespaceSelector == nil && peer.PodSelector == nil {
			return fmt.Errorf("%s: needs an ipBlock, a namespaceSelector or a podSelector", pp)
		}
		if peer.IPBlock != nil {
			if peer.NamespaceSelector != nil || peer.PodSelector != nil {
				return fmt.Errorf("%s: an ipBlock cannot be combined with a selector", pp)
			}
			if err := validateIPBlock(pp+".ipBlock", peer.IPBlock); err != nil {
				return err
			}
		}
		if peer.NamespaceSelector != nil {
			if err := validateSelector(pp+".namespaceSelector", peer.NamespaceSelector); err != nil {
				return err
			}
		}
		if peer.PodSelector != nil {
			if err := validateSelector(pp+".podSelector", peer.PodSelector); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateIPBlock(path string, b *networkingv1.IPBlock) error {
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil {
		return fmt.Errorf("%s.cidr: %w", path, err)
	}
	outer, _ := cidr.Mask.Size()
	for i, e := range b.Except {
		_, ex, err := net.ParseCIDR(e)
		if err != nil {
			return fmt.Errorf("%s.except[%d]: %w", path, i, err)
		}
		inner, _ := ex.Mask.Size()
		if !cidr.Contains(ex.IP) || inner <= outer {
			return fmt.Errorf("%s.except[%d]: %s must be a strict subset of %s", path, i, e, b.CIDR)
		}
	}
	return nil
}

func validateSelector(path string, sel *metav1.LabelSelector) error {
	for i, r := range sel.MatchExpressions {
		rp := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			if len(r.Values) == 0 {
				return fmt.Errorf("%s: operator In needs values", rp)
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			if len(r.Values) != 0 {
				return fmt.Errorf("%s: operator %s takes no values", rp, r.Operator)
			}
		case metav1.LabelSelectorOpNotIn:
			// Kubernetes: "key notin (v)" also matches objects without the
			// key. cyclonus v0.5.6 (kube.IsMatchExpressionMatchForLabels)
			// does not match them, so its verdict could be wrong: refuse.
			return fmt.Errorf("%s: operator NotIn is not supported: the matcher (cyclonus v0.5.6) wrongly treats a missing key as no match, where Kubernetes matches", rp)
		default:
			return fmt.Errorf("%s: unknown operator %q", rp, r.Operator)
		}
	}
	return nil
}
