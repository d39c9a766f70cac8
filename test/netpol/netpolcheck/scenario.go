// Package netpolcheck checks the semantics of Kubernetes NetworkPolicies
// against a small, declared world of namespaces and pods, using the policy
// matcher of github.com/mattfenwick/cyclonus as an independent
// implementation of the NetworkPolicy rules.
//
// A scenario file (YAML) declares the namespaces, the pods, the policies
// (inline or by reference to policy files) and a list of expectations of
// the form "traffic from A to B on port/protocol is allowed (or denied)".
// Check evaluates every expectation and reports the ones that do not hold.
package netpolcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// MetadataNameLabel is the label the API server puts on every namespace,
// holding the namespace's name. It is immutable, so policies use it to
// select a namespace by name.
const MetadataNameLabel = "kubernetes.io/metadata.name"

// Scenario is one scenario file: a world of namespaces and pods, the
// NetworkPolicies in force, and the expectations to check.
type Scenario struct {
	// Name of the scenario, for reports; the file name when empty.
	Name string `json:"name,omitempty"`
	// Description says what the scenario is about.
	Description string `json:"description,omitempty"`
	// Namespaces of the world. Every pod and every policy must be in one.
	Namespaces []Namespace `json:"namespaces"`
	// Pods of the world.
	Pods []Pod `json:"pods"`
	// PolicyFiles are YAML files of NetworkPolicies (multi-document, or a
	// List), relative to the scenario file's folder. An entry may be a glob
	// such as generated/*.yaml; it must match at least one file.
	PolicyFiles []string `json:"policyFiles,omitempty"`
	// Policies are inline NetworkPolicies: either a YAML list of objects,
	// or a string holding a multi-document YAML stream.
	Policies InlinePolicies `json:"policies,omitempty"`
	// Expectations to check.
	Expectations []Expectation `json:"expectations"`

	// path of the scenario file, "" when parsed from bytes.
	path string
	// netpols are all the policies, in load order, with where each came from.
	netpols []loadedPolicy
}

// Namespace of the world.
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Pod of the world.
type Pod struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	// IP of the pod; policies' ipBlocks are matched against it.
	IP string `json:"ip"`
	// Ports are the pod's named container ports. They are needed only when
	// a policy names a port ("port: audit-proxy") instead of numbering it.
	Ports []PodPort `json:"ports,omitempty"`
}

// PodPort is a named container port.
type PodPort struct {
	Name     string `json:"name"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol,omitempty"`
}

// Expectation says whether one flow of traffic is allowed.
type Expectation struct {
	// From is a pod ("namespace/name") or an IP address outside the cluster.
	From string `json:"from"`
	// To is a pod ("namespace/name") or an IP address outside the cluster.
	To string `json:"to"`
	// Port on the destination.
	Port int32 `json:"port"`
	// Protocol: TCP (the default), UDP or SCTP.
	Protocol string `json:"protocol,omitempty"`
	// Allowed is the expected outcome; required.
	Allowed *bool `json:"allowed"`
	// Note explains the expectation; it is printed with a mismatch.
	Note string `json:"note,omitempty"`
}

// InlinePolicies holds the raw "policies" field of a scenario: a list of
// NetworkPolicy objects or a string with a multi-document YAML stream.
type InlinePolicies struct {
	raw json.RawMessage
}

// UnmarshalJSON keeps the raw value; it is decoded when the scenario loads.
func (p *InlinePolicies) UnmarshalJSON(b []byte) error {
	p.raw = append(json.RawMessage(nil), b...)
	return nil
}

// MarshalJSON returns the raw value.
func (p InlinePolicies) MarshalJSON() ([]byte, error) {
	if len(p.raw) == 0 {
		return []byte("null"), nil
	}
	return p.raw, nil
}

// LoadFile reads and validates a scenario file and the policy files it
// references.
func LoadFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.path = path
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return s, nil
}

// Parse parses and validates a scenario. Policy files are resolved
// relative to baseDir.
func Parse(data []byte, baseDir string) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if err := s.validateWorld(); err != nil {
		return nil, err
	}
	for _, pattern := range s.PolicyFiles {
		files, err := resolvePolicyFiles(baseDir, pattern)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("policyFiles: %w", err)
			}
			nps, err := decodePolicyStream(data)
			if err != nil {
				return nil, fmt.Errorf("policy file %s: %w", f, err)
			}
			for _, np := range nps {
				s.netpols = append(s.netpols, loadedPolicy{np: np, source: f})
			}
		}
	}
	inline, err := s.Policies.decode()
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	for _, np := range inline {
		s.netpols = append(s.netpols, loadedPolicy{np: np, source: "inline"})
	}
	if err := s.validatePolicies(); err != nil {
		return nil, err
	}
	if len(s.Expectations) == 0 {
		return nil, fmt.Errorf("expectations: none given")
	}
	for i := range s.Expectations {
		if _, err := s.resolveFlow(&s.Expectations[i]); err != nil {
			return nil, fmt.Errorf("expectations[%d]: %w", i, err)
		}
	}
	return &s, nil
}

// Path is the scenario file, "" when the scenario was parsed from bytes.
func (s *Scenario) Path() string { return s.path }

// NetworkPolicies returns the scenario's policies (after defaulting), in
// load order: policy files first, then inline ones.
func (s *Scenario) NetworkPolicies() []*networkingv1.NetworkPolicy {
	out := make([]*networkingv1.NetworkPolicy, len(s.netpols))
	for i, lp := range s.netpols {
		out[i] = lp.np
	}
	return out
}

// WithoutPolicies returns a copy of the scenario with no policy in force;
// the copy shares nothing mutable with s except the world's label maps.
func (s *Scenario) WithoutPolicies() *Scenario {
	c := *s
	c.netpols = nil
	c.Expectations = append([]Expectation(nil), s.Expectations...)
	return &c
}

func resolvePolicyFiles(baseDir, pattern string) ([]string, error) {
	p := pattern
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	if strings.ContainsAny(pattern, "*?[") {
		files, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("policyFiles: %q: %w", pattern, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("policyFiles: %q matches no file", pattern)
		}
		return files, nil
	}
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("policyFiles: %w", err)
	}
	return []string{p}, nil
}

func (p InlinePolicies) decode() ([]*networkingv1.NetworkPolicy, error) {
	raw := bytes.TrimSpace(p.raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, err
		}
		return decodePolicyStream([]byte(text))
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		var out []*networkingv1.NetworkPolicy
		for i, item := range items {
			nps, err := decodePolicyObject(item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, nps...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("must be a list of NetworkPolicy objects or a string of multi-document YAML")
	}
}

// world lookups

func (s *Scenario) namespace(name string) *Namespace {
	for i := range s.Namespaces {
		if s.Namespaces[i].Name == name {
			return &s.Namespaces[i]
		}
	}
	return nil
}

func (s *Scenario) pod(ref string) *Pod {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		return nil
	}
	for i := range s.Pods {
		if s.Pods[i].Namespace == ns && s.Pods[i].Name == name {
			return &s.Pods[i]
		}
	}
	return nil
}

func (s *Scenario) podByIP(ip net.IP) *Pod {
	for i := range s.Pods {
		if net.ParseIP(s.Pods[i].IP).Equal(ip) {
			return &s.Pods[i]
		}
	}
	return nil
}

func (s *Scenario) validateWorld() error {
	if err := s.validateNamespaces(); err != nil {
		return err
	}
	return s.validatePods()
}

// validateNamespaces checks the namespaces and sets the label the API server
// sets on each.
func (s *Scenario) validateNamespaces() error {
	if len(s.Namespaces) == 0 {
		return fmt.Errorf("namespaces: none given")
	}
	seenNS := map[string]bool{}
	for i := range s.Namespaces {
		ns := &s.Namespaces[i]
		if ns.Name == "" {
			return fmt.Errorf("namespaces[%d]: name is empty", i)
		}
		if seenNS[ns.Name] {
			return fmt.Errorf("namespaces[%d]: namespace %q declared twice", i, ns.Name)
		}
		seenNS[ns.Name] = true
		if v, ok := ns.Labels[MetadataNameLabel]; ok && v != ns.Name {
			return fmt.Errorf("namespace %q: label %s=%q, but the API server always sets it to the namespace's name", ns.Name, MetadataNameLabel, v)
		}
		labels := make(map[string]string, len(ns.Labels)+1)
		for k, v := range ns.Labels {
			labels[k] = v
		}
		labels[MetadataNameLabel] = ns.Name
		ns.Labels = labels
	}
	return nil
}

// validatePods checks the pods (unique names and IPs, declared namespaces,
// named ports) and normalises their port protocols.
func (s *Scenario) validatePods() error {
	seenPod := map[string]bool{}
	seenIP := map[string]string{}
	for i := range s.Pods {
		p := &s.Pods[i]
		ref := p.Namespace + "/" + p.Name
		if p.Name == "" || p.Namespace == "" {
			return fmt.Errorf("pods[%d]: namespace and name are required", i)
		}
		if s.namespace(p.Namespace) == nil {
			return fmt.Errorf("pod %s: namespace %q is not declared under namespaces", ref, p.Namespace)
		}
		if seenPod[ref] {
			return fmt.Errorf("pod %s declared twice", ref)
		}
		seenPod[ref] = true
		ip := net.ParseIP(p.IP)
		if ip == nil {
			return fmt.Errorf("pod %s: ip %q is not an IP address", ref, p.IP)
		}
		if other, ok := seenIP[ip.String()]; ok {
			return fmt.Errorf("pod %s: ip %s is also pod %s's", ref, p.IP, other)
		}
		seenIP[ip.String()] = ref
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		for j := range p.Ports {
			pp := &p.Ports[j]
			if pp.Name == "" || pp.Port < 1 || pp.Port > 65535 {
				return fmt.Errorf("pod %s: ports[%d]: a name and a port 1-65535 are required", ref, j)
			}
			proto, err := normalizeProtocol(pp.Protocol)
			if err != nil {
				return fmt.Errorf("pod %s: ports[%d]: %w", ref, j, err)
			}
			pp.Protocol = string(proto)
		}
	}
	return nil
}

// endpoint is a resolved end of a flow.
type endpoint struct {
	pod *Pod   // nil for an address outside the cluster
	ip  string // the pod's IP, or the external address
}

func (e endpoint) String() string {
	if e.pod != nil {
		return e.pod.Namespace + "/" + e.pod.Name
	}
	return e.ip
}

// flow is a resolved expectation.
type flow struct {
	from, to endpoint
	port     int32
	protocol corev1.Protocol
	portName string // the destination pod's name for the port, if any
}

func (f flow) String() string {
	dst := f.to.String()
	if f.to.pod == nil && strings.Contains(dst, ":") {
		dst = "[" + dst + "]" // IPv6 literal
	}
	return fmt.Sprintf("%s -> %s:%d/%s", f.from, dst, f.port, f.protocol)
}

func (s *Scenario) resolveEndpoint(ref string) (endpoint, error) {
	if strings.Contains(ref, "/") {
		p := s.pod(ref)
		if p == nil {
			return endpoint{}, fmt.Errorf("pod %q is not declared under pods", ref)
		}
		return endpoint{pod: p, ip: p.IP}, nil
	}
	ip := net.ParseIP(ref)
	if ip == nil {
		return endpoint{}, fmt.Errorf("%q is neither a pod reference (namespace/name) nor an IP address", ref)
	}
	if p := s.podByIP(ip); p != nil {
		return endpoint{}, fmt.Errorf("%s is the IP of pod %s/%s: refer to the pod by name", ref, p.Namespace, p.Name)
	}
	return endpoint{ip: ref}, nil
}

func (s *Scenario) resolveFlow(e *Expectation) (flow, error) {
	if e.Allowed == nil {
		return flow{}, fmt.Errorf("allowed: required (true or false)")
	}
	if e.Port < 1 || e.Port > 65535 {
		return flow{}, fmt.Errorf("port %d: must be 1-65535", e.Port)
	}
	proto, err := normalizeProtocol(e.Protocol)
	if err != nil {
		return flow{}, err
	}
	from, err := s.resolveEndpoint(e.From)
	if err != nil {
		return flow{}, fmt.Errorf("from: %w", err)
	}
	to, err := s.resolveEndpoint(e.To)
	if err != nil {
		return flow{}, fmt.Errorf("to: %w", err)
	}
	if from.pod == nil && to.pod == nil {
		return flow{}, fmt.Errorf("from %s to %s: at least one end must be a pod", e.From, e.To)
	}
	if from.pod != nil && from.pod == to.pod {
		return flow{}, fmt.Errorf("from and to are the same pod %s: NetworkPolicy does not govern a pod's traffic to itself", e.From)
	}
	f := flow{from: from, to: to, port: e.Port, protocol: proto}
	if to.pod != nil {
		for _, pp := range to.pod.Ports {
			if pp.Port == e.Port && corev1.Protocol(pp.Protocol) == proto {
				f.portName = pp.Name
			}
		}
	}
	return f, nil
}

func normalizeProtocol(p string) (corev1.Protocol, error) {
	switch strings.ToUpper(p) {
	case "", "TCP":
		return corev1.ProtocolTCP, nil
	case "UDP":
		return corev1.ProtocolUDP, nil
	case "SCTP":
		return corev1.ProtocolSCTP, nil
	}
	return "", fmt.Errorf("protocol %q: must be TCP, UDP or SCTP", p)
}
