package resources

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// decode renders an apply configuration as the API server would store it.
func decode[T any](t *testing.T, ac any) T {
	t.Helper()
	data, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func outboundAgreement(name string, mutate func(*v1alpha1.SharingAgreement)) v1alpha1.SharingAgreement {
	a := v1alpha1.SharingAgreement{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: v1alpha1.SharingAgreementSpec{
		Direction: v1alpha1.DirectionEgress,
		Partner: v1alpha1.Partner{Type: v1alpha1.PartnerReferralIndex, Name: "VI", CIDRs: []string{"192.0.2.0/28"},
			Ports: []v1alpha1.NetworkPort{{Port: 443}}, Endpoint: "https://vi.example.nl/api",
			TLS: &v1alpha1.PartnerTLS{CABundle: v1alpha1.SecretKeyReference{Name: name + "-ca"}}},
		OutboundRoutes: []v1alpha1.OutboundRoute{{Name: "signal", Method: "POST", Path: "/signalen/{dossier}"}},
	}}
	if mutate != nil {
		mutate(&a)
	}
	return a
}

func TestOutboundAndAgreementPolicyNeeded(t *testing.T) {
	deleting := metav1.Now()
	cases := []struct {
		name             string
		mutate           func(*v1alpha1.SharingAgreement)
		outbound, policy bool
	}{
		{"egress with routes: only the gateway", nil, true, false},
		{"both with routes: the partner still reaches the proxy", func(a *v1alpha1.SharingAgreement) { a.Spec.Direction = v1alpha1.DirectionBoth }, true, true},
		{"no routes: direct egress as before", func(a *v1alpha1.SharingAgreement) { a.Spec.OutboundRoutes = nil }, false, true},
		{"no endpoint", func(a *v1alpha1.SharingAgreement) { a.Spec.Partner.Endpoint = "" }, false, true},
		{"being deleted", func(a *v1alpha1.SharingAgreement) { a.DeletionTimestamp = &deleting }, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := outboundAgreement("vi", tc.mutate)
			if got := Outbound(&a); got != tc.outbound {
				t.Errorf("Outbound = %v; want %v", got, tc.outbound)
			}
			if got := AgreementPolicyNeeded(&a); got != tc.policy {
				t.Errorf("AgreementPolicyNeeded = %v; want %v", got, tc.policy)
			}
			np := decode[networkingv1.NetworkPolicy](t, AgreementPolicy(&a, testStore()))
			if direct := slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress); direct == tc.outbound {
				t.Errorf("agreement policy gives the workload egress: %v; want %v", direct, !tc.outbound)
			}
		})
	}
}

// TestEgressDeployment: the restricted Pod Security Standard, the flags,
// the mounts, the TLS projection per agreement, the logbook and the log
// bound exactly when the installation sets them.
func TestEgressDeployment(t *testing.T) {
	store := testStore()
	store.Spec.Audit = &v1alpha1.AuditSpec{ConsentURL: "https://cases.ns.svc/consent/{dossier}"}
	vi := outboundAgreement("vi", func(a *v1alpha1.SharingAgreement) {
		a.Spec.Partner.TLS = &v1alpha1.PartnerTLS{CABundle: v1alpha1.SecretKeyReference{Name: "vi-ca", Key: "bundle.pem"}, ClientCertificateSecretName: "vi-client"}
	})
	wc := outboundAgreement("wc", nil)
	cases := []struct {
		name        string
		opts        EgressOptions
		wantArgs    []string
		notArgs     []string
		wantVolumes []string
	}{
		{"plain", EgressOptions{Image: "img:1"},
			[]string{"--store=ns/s", "--listen=:8080", "--health-listen=:8081", "--policy=/etc/dossierguard/egress/egress.json",
				"--tls-dir=/etc/dossierguard/partners", "--signing-key-dir=/etc/dossierguard/signing", "--pseudonym-key=/etc/dossierguard/pseudonym/pseudonym.key",
				"--consent-url=https://cases.ns.svc/consent/{dossier}"},
			[]string{"--logbook-url", "--audit-log-max-bytes"},
			[]string{"policy", "partners", "signing", "pseudonym", "audit-log"}},
		{"logbook and bound", EgressOptions{Image: "img:1", LogbookURL: "http://lb:4318", LogSizeLimit: resource.MustParse("1Gi"), LogMaxBytes: 1000},
			[]string{"--logbook-url=http://lb:4318", "--logbook-token-file=/var/run/secrets/dossierguard/logbook/token", "--audit-log-max-bytes=1000"},
			nil,
			[]string{"policy", "partners", "signing", "pseudonym", "audit-log", "logbook-token"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decode[appsv1.Deployment](t, EgressDeployment(store, []v1alpha1.SharingAgreement{wc, vi}, tc.opts))
			pod := d.Spec.Template.Spec
			if d.Name != "s-egress" || pod.ServiceAccountName != "s-egress" || len(pod.Containers) != 1 || pod.Containers[0].Image != "img:1" {
				t.Fatalf("deployment %s, sa %s, containers %d", d.Name, pod.ServiceAccountName, len(pod.Containers))
			}
			if _, ok := d.Spec.Template.Labels[v1alpha1.LabelStore]; ok {
				t.Error("gateway pods carry the workload's store label; the webhook would take them for the workload")
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
				sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("not restricted: %+v", sc)
			}
			args := strings.Join(c.Args, " ")
			for _, w := range tc.wantArgs {
				if !strings.Contains(args, w) {
					t.Errorf("args lack %q: %s", w, args)
				}
			}
			for _, n := range tc.notArgs {
				if strings.Contains(args, n) {
					t.Errorf("args have %q: %s", n, args)
				}
			}
			var names []string
			for _, v := range pod.Volumes {
				names = append(names, v.Name)
			}
			if !slices.Equal(names, tc.wantVolumes) {
				t.Errorf("volumes %v; want %v", names, tc.wantVolumes)
			}
			var mounted []string
			for _, m := range c.VolumeMounts {
				mounted = append(mounted, m.Name)
				if m.Name != "audit-log" && !m.ReadOnly {
					t.Errorf("mount %s is writable", m.Name)
				}
			}
			if !slices.Equal(mounted, tc.wantVolumes) {
				t.Errorf("mounts %v; want %v", mounted, tc.wantVolumes)
			}
			var paths []string
			for _, s := range pod.Volumes[1].Projected.Sources {
				if s.Secret.Optional == nil || !*s.Secret.Optional {
					t.Errorf("Secret %s is not optional: one missing Secret would keep the whole gateway down", s.Secret.Name)
				}
				for _, i := range s.Secret.Items {
					paths = append(paths, s.Secret.Name+":"+i.Key+">"+i.Path)
				}
			}
			want := []string{"vi-ca:bundle.pem>vi/ca.crt", "vi-client:tls.crt>vi/tls.crt", "vi-client:tls.key>vi/tls.key", "wc-ca:ca.crt>wc/ca.crt"}
			if !slices.Equal(paths, want) {
				t.Errorf("TLS projection %v; want %v", paths, want)
			}
		})
	}
}

// TestEgressGatewayPolicy: ingress only from the workload to the gateway
// port; egress to DNS, the logbook, the API server, the dependencies only
// with a consent source, and the partners in force only, skipping a
// partner without peers (a rule without peers admits everyone).
func TestEgressGatewayPolicy(t *testing.T) {
	logbook := &PodPeer{Namespace: "dg", Port: 4318, PodLabels: map[string]string{"c": "logbook"}}
	api := []APIEndpoint{{Port: 6443}}
	api[0].Address = mustAddr(t, "10.0.0.1")
	withDeps := testStore()
	withDeps.Spec.Workload.Dependencies = []v1alpha1.Dependency{{Name: "db", PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "pg"}}, Ports: []v1alpha1.NetworkPort{{Port: 5432}}}}
	withConsent := withDeps.DeepCopy()
	withConsent.Spec.Audit = &v1alpha1.AuditSpec{ConsentURL: "https://db/consent"}
	noPeers := outboundAgreement("nopeers", func(a *v1alpha1.SharingAgreement) { a.Spec.Partner.CIDRs = nil })
	cases := []struct {
		name    string
		store   *v1alpha1.DossierStore
		inForce []v1alpha1.SharingAgreement
		extras  IsolationExtras
		api     []APIEndpoint
		egress  int
		scraped bool // the metrics namespaces reach the health port
	}{
		{"nothing in force: DNS only", testStore(), nil, IsolationExtras{}, nil, 1, false},
		{"partner, logbook, API server", testStore(), []v1alpha1.SharingAgreement{outboundAgreement("vi", nil)}, IsolationExtras{Logbook: logbook}, api, 4, false},
		{"dependencies without a consent source stay closed", withDeps, nil, IsolationExtras{}, nil, 1, false},
		{"dependencies with a consent source", withConsent, nil, IsolationExtras{}, nil, 2, false},
		{"a partner without peers adds no rule", testStore(), []v1alpha1.SharingAgreement{noPeers}, IsolationExtras{}, nil, 1, false},
		{"metrics scraped from the monitoring namespace", testStore(), nil, IsolationExtras{ProxyMetricsNamespaces: map[string]string{NamespaceNameLabel: "monitoring"}}, nil, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			np := decode[networkingv1.NetworkPolicy](t, EgressGatewayPolicy(tc.store, tc.inForce, tc.extras, tc.api))
			if len(np.Spec.Egress) != tc.egress {
				t.Fatalf("%d egress rules; want %d: %+v", len(np.Spec.Egress), tc.egress, np.Spec.Egress)
			}
			for i, r := range np.Spec.Egress[1:] {
				if len(r.To) == 0 {
					t.Errorf("egress rule %d has no peers: it admits every destination", i+1)
				}
			}
			rules := 1
			if tc.scraped {
				rules = 2
			}
			if len(np.Spec.Ingress) != rules || len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].NamespaceSelector != nil ||
				np.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app"] != "a" || np.Spec.Ingress[0].Ports[0].Port.IntValue() != EgressGatewayPort {
				t.Fatalf("ingress %+v; want the workload's pods to the gateway port (and the metrics rule: %v)", np.Spec.Ingress, tc.scraped)
			}
			if tc.scraped {
				m := np.Spec.Ingress[1]
				if len(m.From) != 1 || m.From[0].PodSelector != nil || m.From[0].NamespaceSelector == nil ||
					m.From[0].NamespaceSelector.MatchLabels[NamespaceNameLabel] != "monitoring" || len(m.Ports) != 1 || m.Ports[0].Port.IntValue() != EgressHealthPort {
					t.Errorf("metrics rule %+v; want the monitoring namespace to the health port only", m)
				}
			}
			if np.Spec.PodSelector.MatchLabels[v1alpha1.LabelEgressGateway] != "s" {
				t.Errorf("selects %v; want the gateway's pods", np.Spec.PodSelector.MatchLabels)
			}
		})
	}
}

// TestEgressReplicasAndDisruptionBudget: the Deployment runs the replicas
// the installation asks for (two when it does not say), spread over nodes
// where it can; with more than one a budget lets one pod go at a time, and
// a lone pod gets none (a budget would only block drains).
func TestEgressReplicasAndDisruptionBudget(t *testing.T) {
	cases := []struct {
		asked, want int32
		budget      bool
	}{
		{0, DefaultEgressReplicas, true},
		{1, 1, false},
		{2, 2, true},
		{3, 3, true},
	}
	for _, tc := range cases {
		opts := EgressOptions{Image: "img", Replicas: tc.asked}
		d := decode[appsv1.Deployment](t, EgressDeployment(testStore(), nil, opts))
		if d.Spec.Replicas == nil || *d.Spec.Replicas != tc.want {
			t.Errorf("asked %d: replicas %v; want %d", tc.asked, d.Spec.Replicas, tc.want)
		}
		spread := d.Spec.Template.Spec.TopologySpreadConstraints
		if len(spread) != 1 || spread[0].TopologyKey != corev1.LabelHostname || spread[0].WhenUnsatisfiable != corev1.ScheduleAnyway ||
			spread[0].LabelSelector.MatchLabels[v1alpha1.LabelEgressGateway] != "s" {
			t.Errorf("asked %d: spread %+v; want over hostnames, scheduling anyway", tc.asked, spread)
		}
		ac := EgressPodDisruptionBudget(testStore(), opts)
		if (ac != nil) != tc.budget {
			t.Fatalf("asked %d: budget %v; want %v", tc.asked, ac != nil, tc.budget)
		}
		if ac == nil {
			continue
		}
		pdb := decode[policyv1.PodDisruptionBudget](t, ac)
		switch {
		case pdb.Name != "s-egress" || pdb.Namespace != "ns" || len(pdb.OwnerReferences) != 1:
			t.Errorf("budget %s/%s owners %v", pdb.Namespace, pdb.Name, pdb.OwnerReferences)
		case pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil:
			t.Errorf("budget allows %v unavailable (min %v); want one at a time", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
		case pdb.Spec.UnhealthyPodEvictionPolicy == nil || *pdb.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow:
			t.Errorf("unhealthy pods %v; want always evictable", pdb.Spec.UnhealthyPodEvictionPolicy)
		case !slices.Equal(mapKeys(pdb.Spec.Selector.MatchLabels), mapKeys(d.Spec.Selector.MatchLabels)) || pdb.Spec.Selector.MatchLabels[v1alpha1.LabelEgressGateway] != "s":
			t.Errorf("budget selects %v; want the Deployment's pods %v", pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
		}
	}
}

func mapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestEgressRouteURL(t *testing.T) {
	a := outboundAgreement("verwijsindex", nil)
	if got := EgressRouteURL(testStore(), &a); got != "http://s-egress.ns.svc/verwijsindex/" {
		t.Errorf("EgressRouteURL = %q", got)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
