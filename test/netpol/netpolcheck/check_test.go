package netpolcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const world = `
namespaces:
- name: a
- name: b
  labels: {team: b}
pods:
- {namespace: a, name: server, labels: {app: server}, ip: 10.0.0.1, ports: [{name: web, port: 8443}]}
- {namespace: a, name: client, labels: {app: client}, ip: 10.0.0.2}
- {namespace: b, name: client, labels: {app: client}, ip: 10.0.1.2}
- {namespace: b, name: plain, ip: 10.0.1.3, ports: [{name: other, port: 8443}]}
`

// parse parses world + rest; it fails the test on an error.
func parse(t *testing.T, rest string) *Scenario {
	t.Helper()
	s, err := Parse([]byte(world+rest), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verdicts checks a scenario and returns "flow=allowed|denied" per line.
func verdicts(t *testing.T, s *Scenario) []string {
	t.Helper()
	results, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range results {
		out = append(out, r.Flow+"="+word(r.Allowed))
		if !r.OK() {
			t.Errorf("mismatch: %s", r)
		}
	}
	return out
}

func TestNoPolicyAllowsEverything(t *testing.T) {
	s := parse(t, `
expectations:
- {from: a/client, to: a/server, port: 8080, allowed: true}
- {from: b/client, to: a/server, port: 1, protocol: udp, allowed: true}
- {from: a/server, to: 203.0.113.1, port: 443, allowed: true}
- {from: 203.0.113.1, to: a/server, port: 443, allowed: true}
`)
	verdicts(t, s)
}

func TestUnselectedPodIsUnrestricted(t *testing.T) {
	s := parse(t, `
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny-server, namespace: a}
  spec:
    podSelector: {matchLabels: {app: server}}
    policyTypes: [Ingress, Egress]
expectations:
- {from: a/client, to: a/server, port: 8443, allowed: false}
- {from: a/server, to: a/client, port: 8443, allowed: false}
- {from: a/client, to: b/client, port: 8443, allowed: true}
- {from: b/client, to: a/client, port: 8443, allowed: true}
`)
	verdicts(t, s)
}

func TestBothSidesMustAllow(t *testing.T) {
	// The destination admits the source, but the source's egress does not
	// list the destination: denied. And the other way round.
	s := parse(t, `
policies: |
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: server-in, namespace: a}
  spec:
    podSelector: {matchLabels: {app: server}}
    ingress:
    - from: [{namespaceSelector: {}}]
  ---
  # a comment-only document is skipped
  ---
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: client-out, namespace: b}
  spec:
    podSelector: {matchLabels: {app: client}}
    policyTypes: [Egress]
    egress:
    - to: [{ipBlock: {cidr: 203.0.113.0/24}}]
expectations:
- {from: a/client, to: a/server, port: 8443, allowed: true}
- {from: b/client, to: a/server, port: 8443, allowed: false, note: b/client's egress does not list a/server}
- {from: b/client, to: 203.0.113.9, port: 443, allowed: true}
- {from: 203.0.113.9, to: a/server, port: 443, allowed: false, note: server admits pods only}
`)
	if got := len(s.NetworkPolicies()); got != 2 {
		t.Fatalf("%d policies, want 2", got)
	}
	verdicts(t, s)
}

func TestMetadataNameLabelIsAdded(t *testing.T) {
	s := parse(t, `
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: from-b, namespace: a}
  spec:
    podSelector: {}
    ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: b}}}]
expectations:
- {from: b/client, to: a/server, port: 8443, allowed: true}
- {from: a/client, to: a/server, port: 8443, allowed: false}
`)
	verdicts(t, s)
	if got := s.namespace("b").Labels; got[MetadataNameLabel] != "b" || got["team"] != "b" {
		t.Errorf("labels of b: %v", got)
	}
}

func TestPolicyTypesDefaulting(t *testing.T) {
	// Without policyTypes the API server sets Ingress, plus Egress only
	// when there are egress rules.
	s := parse(t, `
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: ingress-only, namespace: a}
  spec:
    podSelector: {matchLabels: {app: server}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: egress-too, namespace: a}
  spec:
    podSelector: {matchLabels: {app: client}}
    egress:
    - ports: [{port: 53, protocol: UDP}]
expectations:
- {from: b/client, to: a/server, port: 8443, allowed: false}
- {from: a/server, to: b/client, port: 8443, allowed: true, note: server's egress is not isolated}
- {from: a/client, to: b/client, port: 8443, allowed: false}
- {from: a/client, to: b/client, port: 53, protocol: UDP, allowed: true}
- {from: a/client, to: b/client, port: 53, protocol: TCP, allowed: false}
`)
	verdicts(t, s)
}

func TestNamedPortsAndRanges(t *testing.T) {
	s := parse(t, `
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: web, namespace: a}
  spec:
    podSelector: {}
    policyTypes: [Egress]
    egress:
    - ports: [{port: web}]
    - to: [{ipBlock: {cidr: 198.51.100.0/24, except: [198.51.100.128/25]}}]
      ports: [{port: 1000, endPort: 2000}]
expectations:
- {from: a/client, to: a/server, port: 8443, allowed: true, note: the server calls 8443 "web"}
- {from: a/client, to: b/plain, port: 8443, allowed: false, note: b/plain calls 8443 "other"}
- {from: a/client, to: 198.51.100.1, port: 1000, allowed: true}
- {from: a/client, to: 198.51.100.1, port: 2000, allowed: true}
- {from: a/client, to: 198.51.100.1, port: 2001, allowed: false}
- {from: a/client, to: 198.51.100.200, port: 1500, allowed: false, note: in except}
`)
	verdicts(t, s)
}

func TestPolicyFilesAndLists(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "generated"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"generated/one.yaml": `
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: server-in, namespace: a}
  spec:
    podSelector: {matchLabels: {app: server}}
    policyTypes: [Ingress]
`,
		"generated/two.yaml": `
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-from-a, namespace: a, creationTimestamp: null}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {}}]
`,
		"scenario.yaml": world + `
policyFiles: [generated/*.yaml]
expectations:
- {from: a/client, to: a/server, port: 8443, allowed: true}
- {from: b/client, to: a/server, port: 8443, allowed: false}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := LoadFile(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "scenario" {
		t.Errorf("name %q, want the file name", s.Name)
	}
	if got := len(s.NetworkPolicies()); got != 2 {
		t.Fatalf("%d policies, want 2", got)
	}
	verdicts(t, s)
}

func TestMismatchIsReported(t *testing.T) {
	s := parse(t, `
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny-server, namespace: a}
  spec:
    podSelector: {matchLabels: {app: server}}
expectations:
- {from: a/client, to: a/server, port: 8443, allowed: true}
- {from: a/client, to: a/server, port: 8080, allowed: false}
`)
	results, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	bad := Mismatches(results)
	if len(bad) != 1 {
		t.Fatalf("%d mismatches, want 1: %v", len(bad), bad)
	}
	want := "a/client -> a/server:8443/TCP: expected allowed, got denied (policies: ingress denied, a/deny-server selects a/server and admits no such traffic; egress open, no policy selects a/client)"
	if got := bad[0].String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestInvalidScenarios(t *testing.T) {
	policy := func(spec string) string {
		return `
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: p, namespace: a}
  spec: ` + spec + `
expectations: [{from: a/client, to: a/server, port: 1, allowed: true}]
`
	}
	for _, tc := range []struct{ name, rest, want string }{
		{"unknown scenario field", `expectation: []`, `unknown field "expectation"`},
		{"no expectations", `expectations: []`, "none given"},
		{"allowed missing", `expectations: [{from: a/client, to: a/server, port: 1}]`, "allowed: required"},
		{"unknown pod", `expectations: [{from: a/nobody, to: a/server, port: 1, allowed: true}]`, `pod "a/nobody" is not declared`},
		{"pod IP as external", `expectations: [{from: 10.0.0.2, to: a/server, port: 1, allowed: true}]`, "refer to the pod by name"},
		{"not a ref", `expectations: [{from: client, to: a/server, port: 1, allowed: true}]`, "neither a pod reference"},
		{"self", `expectations: [{from: a/server, to: a/server, port: 1, allowed: true}]`, "same pod"},
		{"two externals", `expectations: [{from: 192.0.2.1, to: 192.0.2.2, port: 1, allowed: true}]`, "at least one end must be a pod"},
		{"bad port", `expectations: [{from: a/client, to: a/server, port: 0, allowed: true}]`, "must be 1-65535"},
		{"bad protocol", `expectations: [{from: a/client, to: a/server, port: 1, protocol: ICMP, allowed: true}]`, "TCP, UDP or SCTP"},
		{"missing policy file", `policyFiles: [generated/nope.yaml]`, "nope.yaml"},
		{"glob matches nothing", `policyFiles: [generated/*.yaml]`, "matches no file"},
		{"typo in policy", policy(`{podSelectr: {}}`), `unknown field "podSelectr"`},
		{"NotIn", policy(`{podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [x]}]}}`), "NotIn is not supported"},
		{"ipBlock with selector", policy(`{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}`), "cannot be combined"},
		{"bad cidr", policy(`{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]}`), "invalid CIDR"},
		{"bad protocol in policy", policy(`{podSelector: {}, ingress: [{ports: [{port: 1, protocol: tcp}]}]}`), `"tcp" is not TCP`},
		{"endPort on named port", policy(`{podSelector: {}, ingress: [{ports: [{port: web, endPort: 9000}]}]}`), "requires a numeric port"},
		{"wrong kind", `
policies: [{apiVersion: v1, kind: ConfigMap, metadata: {name: x, namespace: a}}]
expectations: [{from: a/client, to: a/server, port: 1, allowed: true}]
`, "only networking.k8s.io/v1 NetworkPolicy"},
		{"no TypeMeta", `
policies: [{metadata: {name: x, namespace: a}, spec: {podSelector: {}}}]
expectations: [{from: a/client, to: a/server, port: 1, allowed: true}]
`, "apiVersion and kind are missing"},
		{"no namespace", `
policies: [{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: x}, spec: {podSelector: {}}}]
expectations: [{from: a/client, to: a/server, port: 1, allowed: true}]
`, "metadata.namespace is required"},
		{"undeclared namespace", `
policies: [{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: x, namespace: c}, spec: {podSelector: {}}}]
expectations: [{from: a/client, to: a/server, port: 1, allowed: true}]
`, `namespace "c" is not declared`},
		{"duplicate policy", `
policies:
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: x, namespace: a}, spec: {podSelector: {}}}
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: x, namespace: a}, spec: {podSelector: {}}}
expectations: [{from: a/client, to: a/server, port: 1, allowed: true}]
`, "declared again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(world+tc.rest), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestInvalidWorlds(t *testing.T) {
	exp := "\nexpectations: [{from: a/x, to: a/y, port: 1, allowed: true}]\n"
	for _, tc := range []struct{ name, text, want string }{
		{"wrong metadata.name", "namespaces: [{name: a, labels: {kubernetes.io/metadata.name: b}}]\npods: []" + exp, "always sets it"},
		{"undeclared namespace", "namespaces: [{name: a}]\npods: [{namespace: z, name: x, ip: 10.0.0.1}]" + exp, `namespace "z" is not declared`},
		{"duplicate IP", "namespaces: [{name: a}]\npods: [{namespace: a, name: x, ip: 10.0.0.1}, {namespace: a, name: y, ip: 10.0.0.1}]" + exp, "is also pod a/x's"},
		{"bad IP", "namespaces: [{name: a}]\npods: [{namespace: a, name: x, ip: 10.0.0}]" + exp, "not an IP address"},
		{"duplicate pod", "namespaces: [{name: a}]\npods: [{namespace: a, name: x, ip: 10.0.0.1}, {namespace: a, name: x, ip: 10.0.0.2}]" + exp, "declared twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
