package resources

import (
	"encoding/json"
	"reflect"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// isolationSpec renders the isolation policy of testStore, with the API
// server's endpoints eps, and decodes it as the API server would store it.
func isolationSpec(t *testing.T, extras IsolationExtras, eps []APIEndpoint) networkingv1.NetworkPolicySpec {
	t.Helper()
	data, err := json.Marshal(IsolationPolicy(testStore(), extras, eps))
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	if err := json.Unmarshal(data, &np); err != nil {
		t.Fatal(err)
	}
	return np.Spec
}

// TestIsolationExtras: the logbook's egress rule and the proxy metrics'
// ingress rule exist exactly when the installation names them, and each
// opens one TCP port to one set of peers.
func TestIsolationExtras(t *testing.T) {
	logbook := &PodPeer{Namespace: "dossierguard-system", Port: 4318,
		PodLabels: map[string]string{"app.kubernetes.io/component": "logbook", "app.kubernetes.io/instance": "dossierguard"}}
	monitoring := map[string]string{NamespaceNameLabel: "monitoring"}
	cases := []struct {
		name        string
		extras      IsolationExtras
		wantEgress  int // rules: DNS plus what extras add
		wantIngress int // rules: the proxy port plus what extras add
	}{
		{"none", IsolationExtras{}, 1, 1},
		{"logbook", IsolationExtras{Logbook: logbook}, 2, 1},
		{"proxy metrics", IsolationExtras{ProxyMetricsNamespaces: monitoring}, 1, 2},
		{"both", IsolationExtras{Logbook: logbook, ProxyMetricsNamespaces: monitoring}, 2, 2},
		{"empty metrics selector admits nobody", IsolationExtras{ProxyMetricsNamespaces: map[string]string{}}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := isolationSpec(t, tc.extras, nil)
			if len(spec.Egress) != tc.wantEgress || len(spec.Ingress) != tc.wantIngress {
				t.Fatalf("egress %d ingress %d rules, want %d and %d: %+v", len(spec.Egress), len(spec.Ingress), tc.wantEgress, tc.wantIngress, spec)
			}
			if tc.extras.Logbook != nil {
				rule := spec.Egress[len(spec.Egress)-1]
				if len(rule.To) != 1 || len(rule.Ports) != 1 {
					t.Fatalf("logbook rule: %+v, want one peer and one port", rule)
				}
				peer := rule.To[0]
				if peer.NamespaceSelector == nil || !reflect.DeepEqual(peer.NamespaceSelector.MatchLabels, map[string]string{NamespaceNameLabel: "dossierguard-system"}) {
					t.Errorf("logbook peer's namespace: %+v, want the immutable name label of dossierguard-system", peer.NamespaceSelector)
				}
				if peer.PodSelector == nil || !reflect.DeepEqual(peer.PodSelector.MatchLabels, logbook.PodLabels) {
					t.Errorf("logbook peer's pods: %+v, want %v in the same peer", peer.PodSelector, logbook.PodLabels)
				}
				if p := rule.Ports[0]; p.Port == nil || p.Port.IntVal != 4318 || p.Protocol == nil || *p.Protocol != "TCP" {
					t.Errorf("logbook port: %+v, want 4318/TCP", p)
				}
			}
			if len(tc.extras.ProxyMetricsNamespaces) > 0 {
				rule := spec.Ingress[1]
				if len(rule.From) != 1 || rule.From[0].PodSelector != nil || rule.From[0].NamespaceSelector == nil ||
					!reflect.DeepEqual(rule.From[0].NamespaceSelector.MatchLabels, monitoring) {
					t.Errorf("metrics rule's peers: %+v, want the namespaces labelled %v", rule.From, monitoring)
				}
				if len(rule.Ports) != 1 || rule.Ports[0].Port.IntVal != ProxyHealthPort {
					t.Errorf("metrics rule's ports: %+v, want %d only", rule.Ports, ProxyHealthPort)
				}
			}
			// The proxy port rule never changes, and the app port is never opened.
			first := spec.Ingress[0]
			if len(first.Ports) != 1 || first.Ports[0].Port.IntVal != 8443 {
				t.Errorf("proxy port rule: %+v", first)
			}
			for _, r := range spec.Ingress {
				for _, p := range r.Ports {
					if p.Port.IntVal == 8080 {
						t.Error("the app port must not be opened")
					}
				}
			}
		})
	}
}
