package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// TestLint: helm lint --strict passes, for the default values, with
// cert-manager and with the PrometheusRule, without a warning or an error.
func TestLint(t *testing.T) {
	for name, args := range map[string][]string{
		"default":      nil,
		"cert-manager": {"--set", "certManager.enabled=true", "--set", "metrics.serviceMonitor.enabled=true"},
		"alerts":       {"--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=prometheus"},
	} {
		t.Run(name, func(t *testing.T) {
			out := mustHelm(t, append([]string{"lint", "--strict", chartDir, "--namespace", namespace}, args...)...)
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Errorf("helm lint reports problems:\n%s", out)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint output does not say 0 chart(s) failed:\n%s", out)
			}
		})
	}
}

// TestGolden: `helm template` for the default values and for
// certManager.enabled=true equals testdata/golden/*.yaml (rewrite them with
// -update after an intended change, and review the diff).
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		file string
		args []string
	}{
		{"default.yaml", nil},
		{"cert-manager.yaml", []string{"--set", "certManager.enabled=true"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			got := mustHelm(t, templateArgs(c.args...)...)
			path := filepath.Join("testdata", "golden", c.file)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with: go test ./test/chart -run Golden -update)", err)
			}
			if got != string(want) {
				t.Errorf("helm template differs from %s; if the change is intended, run go test ./test/chart -run Golden -update and review the diff.\n%s", path, firstDifference(string(want), got))
			}
		})
	}
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "first difference at line " + strconv.Itoa(i+1) + ":\n  golden:   " + wl + "\n  rendered: " + gl
		}
	}
	return ""
}

// TestRendered checks the default rendering's essentials, which the golden
// file only shows: the manager's flags, the restricted security context, the
// webhook's fail-closed settings and the statutes.
func TestRendered(t *testing.T) {
	objs := decode(t, mustHelm(t, templateArgs()...))

	dep := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-manager"))
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *dep.Spec.Replicas)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	for _, arg := range []string{
		"manager", "--leader-elect", "--leader-election-namespace=" + namespace,
		"--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--webhook-port=9443", "--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs",
		"--webhook-cert-management=operator", "--retention-statutes=/etc/dossierguard/retention-statutes.yaml",
	} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("manager args %v lack %s", c.Args, arg)
		}
	}
	if c.Image != "dossierguard:dev" {
		t.Errorf("image = %q, want dossierguard:dev (appVersion)", c.Image)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["POD_NAMESPACE"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE = %+v, want the pod's namespace", e)
	}
	if env["DOSSIERGUARD_IMAGE"].Value != "dossierguard:dev" {
		t.Errorf("DOSSIERGUARD_IMAGE = %q, want the manager's image", env["DOSSIERGUARD_IMAGE"].Value)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the manager's root filesystem is not read-only")
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "health" {
		t.Errorf("liveness probe %+v, want /healthz on port health (8081)", p)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want /readyz", p)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	if vols["webhook-certs"].EmptyDir == nil {
		t.Error("operator-managed certificates: the cert dir is not an emptyDir")
	}
	if len(dep.Spec.Template.Spec.TopologySpreadConstraints) == 0 || dep.Spec.Template.Spec.Affinity == nil {
		t.Error("no topology spread or anti-affinity")
	}
	if dep.Spec.Template.Annotations["checksum/retention-statutes"] == "" {
		t.Error("no checksum of the statutes: a change would not roll the manager")
	}

	pdb := convert[policyv1.PodDisruptionBudget](t, find(t, objs, "PodDisruptionBudget", "dossierguard-manager"))
	if m := pdb.Spec.MinAvailable; m == nil || m.String() != "1" {
		t.Errorf("PodDisruptionBudget minAvailable = %v, want 1", m)
	}

	svc := convert[corev1.Service](t, find(t, objs, "Service", "dossierguard-webhook"))
	if p := svc.Spec.Ports[0]; p.Port != 443 || p.TargetPort.String() != "webhook" {
		t.Errorf("webhook Service port %+v, want 443 -> webhook", p)
	}
	mwc := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, find(t, objs, "MutatingWebhookConfiguration", "dossierguard-sidecar-injector"))
	checkWebhook(t, mwc, namespace)
	checkPodGuard(t, convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, find(t, objs, "ValidatingWebhookConfiguration", "dossierguard-pod-guard")), namespace)
	if len(mwc.Annotations) != 0 {
		t.Errorf("operator-managed certificates, yet annotations %v", mwc.Annotations)
	}

	cm := convert[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "dossierguard-retention-statutes"))
	statutes := map[string]map[string]string{}
	if err := yaml.UnmarshalStrict([]byte(cm.Data["retention-statutes.yaml"]), &statutes); err != nil {
		t.Fatalf("statutes ConfigMap: %v", err)
	}
	want := map[string][3]string{
		"YouthAndFamilyCentre": {"EndOfHelp", "P20Y", "P25Y"}, "YouthCare": {"EndOfHelp", "P20Y", "P25Y"},
		"YouthProtection": {"EndOfHelp", "P20Y", "P25Y"}, "YouthProbation": {"EndOfHelp", "P20Y", "P25Y"},
		"VeiligThuis": {"Closure", "P20Y", "P25Y"}, "NeighbourhoodTeam": {"LastContact", "P5Y", "P7Y"},
		"SocialSupport": {"EndOfHelp", "P5Y", "P7Y"},
	}
	if len(statutes) != len(want) {
		t.Errorf("statutes for %d services, want %d", len(statutes), len(want))
	}
	for svc, w := range want {
		s := statutes[svc]
		if got := [3]string{s["clock"], s["minimum"], s["maximum"]}; got != w || s["source"] == "" {
			t.Errorf("statute %s = %v, want %v with a source", svc, s, w)
		}
	}

	// The manager reads the file as loadStatutes does: strictly, then
	// validated; the chart's defaults are the built-in table.
	checkStatutesFile(t, cm.Data["retention-statutes.yaml"])
	table := map[v1alpha1.Service]compliance.Statute{}
	_ = yaml.UnmarshalStrict([]byte(cm.Data["retention-statutes.yaml"]), &table)
	if !reflect.DeepEqual(table, compliance.DefaultStatutes) {
		t.Errorf("the chart's default retentionStatutes differ from the manager's built-in table (internal/compliance.DefaultStatutes):\n chart: %v\n code:  %v", table, compliance.DefaultStatutes)
	}

	np := find(t, objs, "NetworkPolicy", "dossierguard-manager")
	if types, _, _ := unstructured.NestedStringSlice(np.Object, "spec", "policyTypes"); !slices.Equal(types, []string{"Ingress", "Egress"}) {
		t.Errorf("NetworkPolicy policyTypes %v, want Ingress and Egress", types)
	}
	if has(objs, "ServiceMonitor", "dossierguard-manager") || has(objs, "Certificate", "dossierguard-webhook") {
		t.Error("ServiceMonitor or Certificate rendered while disabled")
	}
}

// checkStatutesFile reads a --retention-statutes file as the manager does
// (cmd/dossierguard loadStatutes) and fails when the manager would refuse it.
func checkStatutesFile(t *testing.T, data string) {
	t.Helper()
	table := map[v1alpha1.Service]compliance.Statute{}
	if err := yaml.UnmarshalStrict([]byte(data), &table); err != nil {
		t.Fatalf("the manager cannot read the statutes file: %v\n%s", err, data)
	}
	if err := compliance.ValidateStatutes(table); err != nil {
		t.Errorf("the manager refuses the statutes file: %v", err)
	}
}

// checkWebhook asserts the webhook's fail-closed settings.
func checkWebhook(t *testing.T, mwc *admissionregistrationv1.MutatingWebhookConfiguration, ns string) {
	t.Helper()
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(mwc.Webhooks))
	}
	w := mwc.Webhooks[0]
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy %v, want Fail: a labelled pod must not start unaudited", w.FailurePolicy)
	}
	if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("sideEffects %v, want None", w.SideEffects)
	}
	if w.TimeoutSeconds == nil || *w.TimeoutSeconds != 10 {
		t.Errorf("timeoutSeconds %v, want 10", w.TimeoutSeconds)
	}
	if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("reinvocationPolicy %v, want IfNeeded", w.ReinvocationPolicy)
	}
	if !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("admissionReviewVersions %v, want [v1]", w.AdmissionReviewVersions)
	}
	s := w.ClientConfig.Service
	if s == nil || s.Name != "dossierguard-webhook" || s.Namespace != ns || s.Path == nil || *s.Path != "/mutate-v1-pod" || s.Port == nil || *s.Port != 443 {
		t.Errorf("clientConfig.service %+v, want dossierguard-webhook.%s:443/mutate-v1-pod", s, ns)
	}
	if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
		!slices.Equal(w.Rules[0].Resources, []string{"pods"}) {
		t.Errorf("rules %+v, want CREATE of pods", w.Rules)
	}
	checkSelectors(t, w.Name, w.ObjectSelector, w.NamespaceSelector, ns)
}

// checkSelectors: every pod but those of the operator's namespace and the
// control plane's reaches the webhook. An objectSelector on the store label
// would let a pod that a store's workload selector selects, without the
// label, start unaudited.
// controlPlaneNamespaces are excluded from the pod webhooks by default, so
// that the cluster can be repaired while no replica answers.
var controlPlaneNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

func checkSelectors(t *testing.T, name string, object, namespace *metav1.LabelSelector, ns string) {
	t.Helper()
	if object != nil && (len(object.MatchLabels) > 0 || len(object.MatchExpressions) > 0) {
		t.Errorf("%s: objectSelector %+v, want none: every pod a store selects must reach the webhook", name, object)
	}
	if namespace == nil || len(namespace.MatchExpressions) != 1 ||
		namespace.MatchExpressions[0].Key != "kubernetes.io/metadata.name" ||
		namespace.MatchExpressions[0].Operator != "NotIn" || !slices.Equal(namespace.MatchExpressions[0].Values, append([]string{ns}, controlPlaneNamespaces...)) {
		t.Errorf("%s: namespaceSelector %+v, want kubernetes.io/metadata.name NotIn %v", name, namespace, append([]string{ns}, controlPlaneNamespaces...))
	}
}

// checkPodGuard asserts the validating webhooks: pods created and updated,
// and exec, attach, port-forward and ephemeral containers, all fail closed.
func checkPodGuard(t *testing.T, vwc *admissionregistrationv1.ValidatingWebhookConfiguration, ns string) {
	t.Helper()
	want := map[string]struct {
		path      string
		resources []string
		effects   admissionregistrationv1.SideEffectClass
	}{
		"pods.privacy.dossierguard.io":       {"/validate-v1-pod", []string{"pods"}, admissionregistrationv1.SideEffectClassNone},
		"pod-access.privacy.dossierguard.io": {"/validate-v1-pod-access", []string{"pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy", "pods/ephemeralcontainers"}, admissionregistrationv1.SideEffectClassNoneOnDryRun},
	}
	if len(vwc.Webhooks) != len(want) {
		t.Fatalf("%d validating webhooks, want %d", len(vwc.Webhooks), len(want))
	}
	for _, w := range vwc.Webhooks {
		exp, ok := want[w.Name]
		if !ok {
			t.Errorf("unexpected validating webhook %s", w.Name)
			continue
		}
		if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("%s: failurePolicy %v, want Fail", w.Name, w.FailurePolicy)
		}
		if w.SideEffects == nil || *w.SideEffects != exp.effects {
			t.Errorf("%s: sideEffects %v, want %s", w.Name, w.SideEffects, exp.effects)
		}
		if s := w.ClientConfig.Service; s == nil || s.Name != "dossierguard-webhook" || s.Namespace != ns || s.Path == nil || *s.Path != exp.path {
			t.Errorf("%s: clientConfig.service %+v, want dossierguard-webhook.%s%s", w.Name, s, ns, exp.path)
		}
		var resources []string
		for _, r := range w.Rules {
			resources = append(resources, r.Resources...)
		}
		if !slices.Equal(resources, exp.resources) {
			t.Errorf("%s: resources %v, want %v", w.Name, resources, exp.resources)
		}
		checkSelectors(t, w.Name, w.ObjectSelector, w.NamespaceSelector, ns)
	}
}

// TestCertManagerVariant: with certManager.enabled the chart creates the
// Issuer and Certificate for Secret dossierguard-webhook-tls, asks the CA
// injector for the caBundle, mounts the Secret where the webhook server reads
// it, and drops the permissions the operator needed to issue certificates.
func TestCertManagerVariant(t *testing.T) {
	objs := decode(t, mustHelm(t, templateArgs("--set", "certManager.enabled=true")...))
	find(t, objs, "Issuer", "dossierguard-selfsigned")
	cert := find(t, objs, "Certificate", "dossierguard-webhook")
	if s, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); s != "dossierguard-webhook-tls" {
		t.Errorf("Certificate secretName %q, want dossierguard-webhook-tls", s)
	}
	if d, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames"); !slices.Contains(d, "dossierguard-webhook."+namespace+".svc") {
		t.Errorf("Certificate dnsNames %v lack the Service's name", d)
	}
	mwc := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, find(t, objs, "MutatingWebhookConfiguration", "dossierguard-sidecar-injector"))
	checkWebhook(t, mwc, namespace)
	if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != namespace+"/dossierguard-webhook" {
		t.Errorf("cert-manager.io/inject-ca-from = %q, want %s/dossierguard-webhook", got, namespace)
	}
	vwc := convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, find(t, objs, "ValidatingWebhookConfiguration", "dossierguard-pod-guard"))
	checkPodGuard(t, vwc, namespace)
	if got := vwc.Annotations["cert-manager.io/inject-ca-from"]; got != namespace+"/dossierguard-webhook" {
		t.Errorf("ValidatingWebhookConfiguration cert-manager.io/inject-ca-from = %q, want %s/dossierguard-webhook", got, namespace)
	}
	dep := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-manager"))
	if !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--webhook-cert-management=cert-manager") {
		t.Error("manager not started with --webhook-cert-management=cert-manager")
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "webhook-certs" && (v.Secret == nil || v.Secret.SecretName != "dossierguard-webhook-tls") {
			t.Errorf("cert dir volume %+v, want Secret dossierguard-webhook-tls", v)
		}
	}
	for _, gone := range [][2]string{{"Role", "dossierguard-webhook-tls"}, {"ClusterRole", "dossierguard-webhook-config"}} {
		if has(objs, gone[0], gone[1]) {
			t.Errorf("%s %s rendered with cert-manager, which needs no such permission", gone[0], gone[1])
		}
	}
	checkRBAC(t, objs, namespace)
	checkRestricted(t, objs)

	// An existing issuer replaces the self-signed one.
	objs = decode(t, mustHelm(t, templateArgs("--set", "certManager.enabled=true",
		"--set", "certManager.issuerRef.name=municipal-ca", "--set", "certManager.issuerRef.kind=ClusterIssuer")...))
	if has(objs, "Issuer", "dossierguard-selfsigned") {
		t.Error("self-signed Issuer rendered although issuerRef is set")
	}
	ref, _, _ := unstructured.NestedStringMap(find(t, objs, "Certificate", "dossierguard-webhook").Object, "spec", "issuerRef")
	if ref["name"] != "municipal-ca" || ref["kind"] != "ClusterIssuer" {
		t.Errorf("issuerRef %v, want ClusterIssuer municipal-ca", ref)
	}
}

// TestOptions: values that change what is rendered.
func TestOptions(t *testing.T) {
	t.Run("built-in statutes", func(t *testing.T) {
		objs := decode(t, mustHelm(t, templateArgs("--set", "retentionStatutes=null")...))
		if has(objs, "ConfigMap", "dossierguard-retention-statutes") {
			t.Error("statutes ConfigMap rendered with retentionStatutes=null")
		}
		dep := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-manager"))
		for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
			if strings.HasPrefix(a, "--retention-statutes") {
				t.Errorf("%s passed with retentionStatutes=null", a)
			}
		}
	})
	t.Run("one statute overridden and one dropped", func(t *testing.T) {
		values := writeValues(t, "retentionStatutes:\n  NeighbourhoodTeam: {maximum: P10Y, source: \"Gemeente Voorbeeldstad, besluit 2026-12\"}\n  SocialSupport: null\n")
		cm := convert[corev1.ConfigMap](t, find(t, decode(t, mustHelm(t, templateArgs("-f", values)...)), "ConfigMap", "dossierguard-retention-statutes"))
		statutes := map[string]map[string]string{}
		if err := yaml.Unmarshal([]byte(cm.Data["retention-statutes.yaml"]), &statutes); err != nil {
			t.Fatal(err)
		}
		if nt := statutes["NeighbourhoodTeam"]; nt["maximum"] != "P10Y" || nt["minimum"] != "P5Y" || nt["clock"] != "LastContact" {
			t.Errorf("NeighbourhoodTeam = %v, want the default with maximum P10Y", nt)
		}
		if _, ok := statutes["SocialSupport"]; ok || len(statutes) != 6 {
			t.Errorf("statutes %v, want six services without SocialSupport", statutes)
		}
		checkStatutesFile(t, cm.Data["retention-statutes.yaml"])
	})
	t.Run("image digest and images", func(t *testing.T) {
		digest := "sha256:" + strings.Repeat("ab", 32)
		objs := decode(t, mustHelm(t, templateArgs("--set", "image.repository=registry.example.nl/platform/dossierguard", "--set", "image.digest="+digest,
			"--set", "auditProxy.image=registry.example.nl/platform/audit-proxy:1.0.0")...))
		c := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-manager")).Spec.Template.Spec.Containers[0]
		if want := "registry.example.nl/platform/dossierguard@" + digest; c.Image != want {
			t.Errorf("image %q, want %q", c.Image, want)
		}
		if !slices.Contains(c.Args, "--audit-proxy-image=registry.example.nl/platform/audit-proxy:1.0.0") {
			t.Errorf("args %v lack the audit proxy image", c.Args)
		}
	})
	t.Run("one replica, no PodDisruptionBudget", func(t *testing.T) {
		if has(decode(t, mustHelm(t, templateArgs("--set", "replicaCount=1")...)), "PodDisruptionBudget", "dossierguard-manager") {
			t.Error("a PodDisruptionBudget with minAvailable 1 and one replica would block every drain")
		}
	})
	t.Run("minAvailable not below replicas", func(t *testing.T) {
		_, stderr, err := helm(t, templateArgs("--set", "replicaCount=2", "--set", "podDisruptionBudget.minAvailable=2")...)
		if err == nil || !strings.Contains(stderr, "podDisruptionBudget.minAvailable (2) must be lower than replicaCount (2)") {
			t.Errorf("minAvailable 2 with 2 replicas: err %v, stderr %s", err, stderr)
		}
	})
	t.Run("ServiceMonitor and API server addresses", func(t *testing.T) {
		objs := decode(t, mustHelm(t, templateArgs("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=prometheus",
			"--set", "networkPolicy.apiServer.cidrs={10.0.0.10/32}", "--set", "networkPolicy.metricsNamespace=observability")...))
		sm := find(t, objs, "ServiceMonitor", "dossierguard-manager")
		if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetLabels()["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s with labels %v", sm.GetAPIVersion(), sm.GetLabels())
		}
		np, _ := yaml.Marshal(find(t, objs, "NetworkPolicy", "dossierguard-manager").Object)
		for _, s := range []string{"cidr: 10.0.0.10/32", "kubernetes.io/metadata.name: observability"} {
			if !bytes.Contains(np, []byte(s)) {
				t.Errorf("NetworkPolicy lacks %q:\n%s", s, np)
			}
		}
	})
	t.Run("logbook", func(t *testing.T) {
		if has(decode(t, mustHelm(t, templateArgs()...)), "Deployment", "dossierguard-logbook") {
			t.Error("the logbook is rendered by default")
		}
		_, stderr, err := helm(t, templateArgs("--set", "logbook.enabled=true")...)
		if err == nil || !strings.Contains(stderr, "logbook.database.secretName is required") {
			t.Errorf("logbook without a database Secret: err %v, stderr %s", err, stderr)
		}
		objs := decode(t, mustHelm(t, templateArgs("--set", "logbook.enabled=true", "--set", "logbook.database.secretName=logbook-pg",
			"--set", "logbook.trustedKeysSecret=store-keys", "--set", "logbook.database.migrate=true")...))
		dep := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-logbook"))
		c := dep.Spec.Template.Spec.Containers[0]
		for _, a := range []string{"logbook", "--listen=:4318", "--schema=dossierguard_logbook", "--migrate", "--trust-key-dir=/etc/dossierguard/logbook/trusted-keys"} {
			if !slices.Contains(c.Args, a) {
				t.Errorf("logbook args %v lack %s", c.Args, a)
			}
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "logbook-pg" {
			t.Errorf("logbook envFrom %+v, want Secret logbook-pg", c.EnvFrom)
		}
		if dep.Spec.Template.Labels["app.kubernetes.io/component"] != "logbook" {
			t.Errorf("logbook pod labels %v", dep.Spec.Template.Labels)
		}
		mgr := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-manager")).Spec.Template.Spec.Containers[0]
		if !slices.Contains(mgr.Args, "--logbook-url=http://dossierguard-logbook."+namespace+".svc:4318") {
			t.Errorf("manager args %v do not point the injected proxies at the logbook", mgr.Args)
		}
		// Every store's isolation policy must admit egress to exactly the
		// logbook's pods: the labels the manager is given are the pods'.
		labels := map[string]string{}
		for _, a := range mgr.Args {
			if v, ok := strings.CutPrefix(a, "--logbook-pod-labels="); ok {
				for _, kv := range strings.Split(v, ",") {
					k, v, _ := strings.Cut(kv, "=")
					labels[k] = v
				}
			}
		}
		if !reflect.DeepEqual(labels, dep.Spec.Template.Labels) || !reflect.DeepEqual(labels, dep.Spec.Selector.MatchLabels) {
			t.Errorf("--logbook-pod-labels %v, want the logbook's pod labels %v", labels, dep.Spec.Template.Labels)
		}
		for _, a := range []string{"--logbook-namespace=" + namespace, "--logbook-port=4318"} {
			if !slices.Contains(mgr.Args, a) {
				t.Errorf("manager args %v lack %s", mgr.Args, a)
			}
		}
		if port := dep.Spec.Template.Spec.Containers[0].Ports[0]; port.ContainerPort != 4318 {
			t.Errorf("logbook container port %d, want the --logbook-port 4318", port.ContainerPort)
		}
		checkLogbookSenderAuth(t, objs)
		svc := convert[corev1.Service](t, find(t, objs, "Service", "dossierguard-logbook"))
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 4318 || svc.Spec.Selector["app.kubernetes.io/component"] != "logbook" {
			t.Errorf("logbook Service %+v", svc.Spec)
		}
		checkRestricted(t, objs)
		if has(objs, "CronJob", "dossierguard-logbook-retain") {
			t.Error("the logbook retention CronJob is rendered without logbook.retention.enabled")
		}
	})
	t.Run("logbook retention", func(t *testing.T) {
		base := []string{"--set", "logbook.enabled=true", "--set", "logbook.database.secretName=logbook-pg", "--set", "logbook.retention.enabled=true"}
		_, stderr, err := helm(t, templateArgs(base...)...)
		if err == nil || !strings.Contains(stderr, "logbook.retention.signingKeySecret is required") {
			t.Errorf("retention without a signing key: err %v, stderr %s", err, stderr)
		}
		objs := decode(t, mustHelm(t, templateArgs(append(base, "--set", "logbook.retention.signingKeySecret=logbook-signing",
			"--set", "logbook.retention.databaseSecretName=logbook-pg-retention", "--set", "logbook.retention.period=P7Y")...)...))
		cj := convert[batchv1.CronJob](t, find(t, objs, "CronJob", "dossierguard-logbook-retain"))
		c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
		for _, a := range []string{"logbook", "retain", "--period=P7Y", "--signing-key=/etc/dossierguard/logbook/signing/signing.pem"} {
			if !slices.Contains(c.Args, a) {
				t.Errorf("retention args %v lack %s", c.Args, a)
			}
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "logbook-pg-retention" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("retention CronJob: envFrom %+v, concurrency %s", c.EnvFrom, cj.Spec.ConcurrencyPolicy)
		}
		checkRestricted(t, objs)
	})
	t.Run("logbook URL", func(t *testing.T) {
		db := []string{"--set", "logbook.enabled=true", "--set", "logbook.database.secretName=logbook-pg"}
		for _, tc := range []struct {
			name   string
			args   []string
			want   string // the --logbook-url, "" for none
			labels bool   // --logbook-pod-labels passed
		}{
			{"no logbook", nil, "", false},
			{"this chart's logbook", db, "http://dossierguard-logbook." + namespace + ".svc:4318", true},
			{"another name of this chart's logbook", append(db, "--set", "logbook.url=http://dossierguard-logbook."+namespace+".svc.cluster.local:4318"),
				"http://dossierguard-logbook." + namespace + ".svc.cluster.local:4318", true},
			{"a logbook elsewhere", []string{"--set", "logbook.url=https://logbook.audit.example.nl"}, "https://logbook.audit.example.nl", false},
		} {
			objs := decode(t, mustHelm(t, templateArgs(tc.args...)...))
			args := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-manager")).Spec.Template.Spec.Containers[0].Args
			var urls []string
			labels := false
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "--logbook-url="); ok {
					urls = append(urls, v)
				}
				labels = labels || strings.HasPrefix(a, "--logbook-pod-labels=")
			}
			switch {
			case tc.want == "" && len(urls) > 0, tc.want != "" && (len(urls) != 1 || urls[0] != tc.want):
				t.Errorf("%s: --logbook-url %v, want %q", tc.name, urls, tc.want)
			}
			if labels != tc.labels {
				t.Errorf("%s: --logbook-pod-labels passed: %v, want %v", tc.name, labels, tc.labels)
			}
			if deployed := has(objs, "Deployment", "dossierguard-logbook"); deployed != tc.labels {
				t.Errorf("%s: logbook Deployment rendered: %v", tc.name, deployed)
			}
		}
		for _, bad := range []string{"ftp://logbook:4318", "logbook:4318", "https://user@logbook", "http://logbook:4318/v1/traces"} {
			if _, stderr, err := helm(t, templateArgs("--set", "logbook.url="+bad)...); err == nil || !strings.Contains(stderr, "/logbook/url") {
				t.Errorf("logbook.url=%s: err %v, stderr %s", bad, err, stderr)
			}
		}
	})
	t.Run("audit log size limit", func(t *testing.T) {
		for _, tc := range []struct{ value, want string }{{"", "--audit-log-size-limit=1Gi"}, {"256Mi", "--audit-log-size-limit=256Mi"}, {"0", "--audit-log-size-limit=0"}} {
			args := templateArgs()
			if tc.value != "" {
				args = templateArgs("--set-string", "auditProxy.logSizeLimit="+tc.value)
			}
			mgr := convert[appsv1.Deployment](t, find(t, decode(t, mustHelm(t, args...)), "Deployment", "dossierguard-manager"))
			if !slices.Contains(mgr.Spec.Template.Spec.Containers[0].Args, tc.want) {
				t.Errorf("logSizeLimit %q: manager args %v lack %s", tc.value, mgr.Spec.Template.Spec.Containers[0].Args, tc.want)
			}
		}
		if _, stderr, err := helm(t, templateArgs("--set", "auditProxy.logSizeLimit=lots")...); err == nil || !strings.Contains(stderr, "/auditProxy/logSizeLimit") {
			t.Errorf("logSizeLimit=lots: err %v, stderr %s", err, stderr)
		}
	})
	t.Run("proxy metrics namespaces", func(t *testing.T) {
		hasFlag := func(args []string) bool {
			return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--proxy-metrics-namespace-labels") })
		}
		if mgr := convert[appsv1.Deployment](t, find(t, decode(t, mustHelm(t, templateArgs()...)), "Deployment", "dossierguard-manager")); hasFlag(mgr.Spec.Template.Spec.Containers[0].Args) {
			t.Error("by default no namespace may reach the proxies' metrics port")
		}
		values := writeValues(t, "metrics:\n  auditProxy:\n    scrapeNamespaceLabels: {kubernetes.io/metadata.name: monitoring, team: observability}\n")
		mgr := convert[appsv1.Deployment](t, find(t, decode(t, mustHelm(t, templateArgs("-f", values)...)), "Deployment", "dossierguard-manager"))
		if want := "--proxy-metrics-namespace-labels=kubernetes.io/metadata.name=monitoring,team=observability"; !slices.Contains(mgr.Spec.Template.Spec.Containers[0].Args, want) {
			t.Errorf("manager args %v lack %s", mgr.Spec.Template.Spec.Containers[0].Args, want)
		}
		bad := writeValues(t, "metrics:\n  auditProxy:\n    scrapeNamespaceLabels: {\"bad key\": monitoring}\n")
		if _, stderr, err := helm(t, templateArgs("-f", bad)...); err == nil || !strings.Contains(stderr, "invalid propertyName 'bad key'") {
			t.Errorf("a label key with a space: err %v, stderr %s", err, stderr)
		}
	})
	t.Run("no NetworkPolicy", func(t *testing.T) {
		if has(decode(t, mustHelm(t, templateArgs("--set", "networkPolicy.enabled=false")...)), "NetworkPolicy", "dossierguard-manager") {
			t.Error("NetworkPolicy rendered while disabled")
		}
	})
}

func writeValues(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSchemaRejectsBadValues: values.schema.json refuses testdata/bad-values.yaml
// and names every mistake with its path.
func TestSchemaRejectsBadValues(t *testing.T) {
	out, stderr, err := helm(t, templateArgs("-f", filepath.Join("test", "chart", "testdata", "bad-values.yaml"))...)
	if err == nil {
		t.Fatalf("helm template accepted testdata/bad-values.yaml:\n%s", out)
	}
	for _, want := range []string{
		"values don't meet the specifications of the schema",
		"at '/replicaCount': minimum: got 0, want 1",
		"at '': additional properties 'replicas' not allowed",
		"at '/image/tag': 'latest please' does not match pattern",
		"at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
		"at '/certManager/enabled': got string, want boolean",
		"at '/retentionStatutes/YouthCare/minimum': '20 years' does not match pattern '^P[1-9][0-9]{0,3}[YMWD]$'",
		"at '/retentionStatutes/VeiligThuis/clock': value must be one of 'LastContact', 'EndOfHelp', 'Closure', 'Creation'",
		"at '/retentionStatutes': additional properties 'Jeugdzorg' not allowed",
		"at '/webhook/timeoutSeconds': maximum: got 60, want 30",
		"at '/manager/logLevel': value must be one of 'debug', 'info', 'error'",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the schema error lacks %q; helm said:\n%s", want, stderr)
		}
	}

	// And the defaults pass the same schema.
	mustHelm(t, templateArgs()...)
}

// TestRenderedPodSecurity: every pod spec rendered by the chart (default and
// cert-manager) and by kustomize passes the restricted Pod Security Standard;
// and the check itself catches a pod that does not.
func TestRenderedPodSecurity(t *testing.T) {
	t.Run("chart", func(t *testing.T) { checkRestricted(t, decode(t, mustHelm(t, templateArgs()...))) })
	t.Run("chart with cert-manager", func(t *testing.T) {
		checkRestricted(t, decode(t, mustHelm(t, templateArgs("--set", "certManager.enabled=true")...)))
	})
	t.Run("the check is not vacuous", func(t *testing.T) {
		dep := convert[appsv1.Deployment](t, find(t, decode(t, mustHelm(t, templateArgs()...)), "Deployment", "dossierguard-manager"))
		tmpl := dep.Spec.Template
		tmpl.Spec.SecurityContext.SeccompProfile = nil
		tmpl.Spec.Containers[0].SecurityContext.SeccompProfile = nil
		tmpl.Spec.Containers[0].SecurityContext.Capabilities = nil
		if v := restrictedViolations(t, tmpl); len(v) < 2 {
			t.Errorf("a pod without seccomp profile and dropped capabilities passes: %v", v)
		}
	})
}

// TestKustomize: config/default and config/certmanager build with kubectl's
// kustomize, hold the same CRDs and manager rules as config/, grant nothing
// undocumented, run restricted pods, and set the webhook up fail-closed.
func TestKustomize(t *testing.T) {
	k := kubectl(t)
	for _, c := range []struct{ dir, mode string }{{"config/default", "operator"}, {"config/certmanager", "cert-manager"}} {
		t.Run(c.dir, func(t *testing.T) {
			objs := decode(t, run(t, nil, k, "kustomize", c.dir))
			crds := 0
			for _, o := range objs {
				if o.GetKind() == "CustomResourceDefinition" {
					crds++
				} else if ns := o.GetNamespace(); ns != "" && ns != namespace {
					t.Errorf("%s %s in namespace %q, want %s", o.GetKind(), o.GetName(), ns, namespace)
				}
			}
			if crds != 6 {
				t.Errorf("%d CRDs, want 6", crds)
			}
			cr := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "dossierguard-manager"))
			if !reflect.DeepEqual(cr.Rules, generatedRules(t)) {
				t.Error("ClusterRole dossierguard-manager differs from config/rbac/role.yaml: run hack/sync-chart.sh")
			}
			checkRBAC(t, objs, namespace)
			checkRestricted(t, objs)
			mwc := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, find(t, objs, "MutatingWebhookConfiguration", "dossierguard-sidecar-injector"))
			checkWebhook(t, mwc, namespace)
			checkPodGuard(t, convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, find(t, objs, "ValidatingWebhookConfiguration", "dossierguard-pod-guard")), namespace)
			dep := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-manager"))
			if !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--webhook-cert-management="+c.mode) {
				t.Errorf("manager args %v, want --webhook-cert-management=%s", dep.Spec.Template.Spec.Containers[0].Args, c.mode)
			}
			find(t, objs, "NetworkPolicy", "dossierguard-manager")
			if c.mode == "cert-manager" {
				find(t, objs, "Certificate", "dossierguard-webhook")
				if mwc.Annotations["cert-manager.io/inject-ca-from"] != namespace+"/dossierguard-webhook" {
					t.Errorf("inject-ca-from %q", mwc.Annotations["cert-manager.io/inject-ca-from"])
				}
				if has(objs, "ClusterRole", "dossierguard-webhook-config") || has(objs, "Role", "dossierguard-webhook-tls") {
					t.Error("cert-manager variant keeps the operator's certificate permissions")
				}
			}
			// make undeploy deletes what carries this label: all but the CRDs.
			for _, o := range objs {
				labelled := o.GetLabels()["app.kubernetes.io/part-of"] == "dossierguard"
				if (o.GetKind() == "CustomResourceDefinition") == labelled {
					t.Errorf("%s %s: app.kubernetes.io/part-of=dossierguard is %v; undeploy would delete the wrong objects", o.GetKind(), o.GetName(), labelled)
				}
			}
		})
	}
}

// checkLogbookSenderAuth: the logbook authenticates senders with the
// Kubernetes API, as ServiceAccount dossierguard-logbook, which may create
// TokenReviews and get Pods and DossierStores, nothing else.
func checkLogbookSenderAuth(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	dep := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-logbook"))
	spec := dep.Spec.Template.Spec
	if spec.ServiceAccountName != "dossierguard-logbook" || spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Errorf("logbook pod: ServiceAccount %q, automount %v; want dossierguard-logbook with its token", spec.ServiceAccountName, spec.AutomountServiceAccountToken)
	}
	if !slices.Contains(spec.Containers[0].Args, "--sender-auth=kubernetes") {
		t.Errorf("logbook args %v lack --sender-auth=kubernetes", spec.Containers[0].Args)
	}
	find(t, objs, "ServiceAccount", "dossierguard-logbook")
	role := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "dossierguard-logbook"))
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{"privacy.dossierguard.io"}, Resources: []string{"dossierstores"}, Verbs: []string{"get"}},
	}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("logbook ClusterRole rules %+v, want %+v", role.Rules, want)
	}
	b := convert[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", "dossierguard-logbook"))
	if b.RoleRef.Name != "dossierguard-logbook" || len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" ||
		b.Subjects[0].Name != "dossierguard-logbook" || b.Subjects[0].Namespace != namespace {
		t.Errorf("logbook ClusterRoleBinding %+v %+v", b.RoleRef, b.Subjects)
	}
}

// TestKustomizeLogbook: config/logbook builds into the logbook's Deployment
// and Service in the operator's namespace, restricted, with its database
// named by a Secret.
func TestKustomizeLogbook(t *testing.T) {
	objs := decode(t, run(t, nil, kubectl(t), "kustomize", "config/logbook"))
	if len(objs) != 5 {
		t.Fatalf("%d objects, want the Deployment, the Service, and the ServiceAccount with its ClusterRole and binding", len(objs))
	}
	for _, o := range objs {
		ns := namespace
		if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
			ns = ""
		}
		if o.GetNamespace() != ns || o.GetLabels()["app.kubernetes.io/part-of"] != "dossierguard" {
			t.Errorf("%s %s: namespace %q, labels %v", o.GetKind(), o.GetName(), o.GetNamespace(), o.GetLabels())
		}
	}
	checkLogbookSenderAuth(t, objs)
	checkRestricted(t, objs)
	c := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-logbook")).Spec.Template.Spec.Containers[0]
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "dossierguard-logbook-db" || c.Args[0] != "logbook" {
		t.Errorf("logbook container %v %+v", c.Args, c.EnvFrom)
	}
	find(t, objs, "Service", "dossierguard-logbook")
}

// TestChartInSync: the chart's CRDs and manager rules, and the kustomize copy
// of the rules, are those controller-gen wrote to config/ (hack/sync-chart.sh
// --check), and the rendered ClusterRole has exactly the generated rules.
func TestChartInSync(t *testing.T) {
	check := exec.Command("bash", filepath.Join(root, "hack", "sync-chart.sh"), "--check")
	check.Dir = root
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("hack/sync-chart.sh --check: %v\n%s", err, out)
	}

	src, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(src) != 6 {
		t.Fatalf("config/crd/bases: %d CRDs (%v), want 6", len(src), err)
	}
	dst, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if len(dst) != len(src) {
		t.Errorf("charts/dossierguard/crds has %d files, config/crd/bases %d: run hack/sync-chart.sh", len(dst), len(src))
	}
	for _, f := range src {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(f)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("charts/dossierguard/crds/%s differs from config/crd/bases: run hack/sync-chart.sh", filepath.Base(f))
		}
	}

	cr := convert[rbacv1.ClusterRole](t, find(t, decode(t, mustHelm(t, templateArgs()...)), "ClusterRole", "dossierguard-manager"))
	if !reflect.DeepEqual(cr.Rules, generatedRules(t)) {
		t.Error("the chart's ClusterRole dossierguard-manager differs from config/rbac/role.yaml: run hack/sync-chart.sh")
	}
	checkRBAC(t, decode(t, mustHelm(t, templateArgs()...)), namespace)
}

// TestStoreFinalizerPolicyOnlyWhereServed: the chart renders the admission
// policy that sets a store's finalizer (and its binding) where the API
// server serves MutatingAdmissionPolicies (Kubernetes 1.36 and later), and
// leaves it out before, where the operator adds the finalizer itself.
func TestStoreFinalizerPolicyOnlyWhereServed(t *testing.T) {
	served := decode(t, mustHelm(t, templateArgs()...))
	if !has(served, "MutatingAdmissionPolicy", "dossierguard-store-finalizer") || !has(served, "MutatingAdmissionPolicyBinding", "dossierguard-store-finalizer") {
		t.Error("the chart lacks the store-finalizer policy or its binding where the API server serves them")
	}
	older := decode(t, mustHelm(t, "template", "dossierguard", chartDir, "--namespace", namespace, "--kube-version", "1.35.0"))
	if has(older, "MutatingAdmissionPolicy", "dossierguard-store-finalizer") || has(older, "MutatingAdmissionPolicyBinding", "dossierguard-store-finalizer") {
		t.Error("the chart renders the store-finalizer policy for an API server that does not serve it")
	}
}
