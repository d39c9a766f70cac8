package webhook_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

const operatorNamespace = "dossierguard-system"

var env *testenv.Env

// injectorConfiguration is a mutating configuration for the certificate
// test, which must leave the shipped ones intact.
func injectorConfiguration() *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "dossierguard-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "inject.privacy.dossierguard.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Name: "dossierguard-webhook", Namespace: operatorNamespace, Path: ptr.To(webhook.Path)}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "privacy.dossierguard.io/store", Operator: metav1.LabelSelectorOpExists}}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{operatorNamespace}}}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr.To[int32](10),
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
		}},
	}
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	// The registration the operator ships, so that what reaches the
	// webhook (every pod, not only labelled ones) is tested too.
	env, err = testenv.StartWithWebhookManifests("config/webhook/manifests.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	opts := env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:        env.Scheme,
		Metrics:       metricsserver.Options{BindAddress: "0"},
		WebhookServer: crwebhook.NewServer(crwebhook.Options{Host: opts.LocalServingHost, Port: opts.LocalServingPort, CertDir: opts.LocalServingCertDir}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// With a logbook, as the chart installs it: the injected proxy then
	// carries env (POD_NAME), which the API server defaults before the
	// validating webhook compares it with what was injected.
	webhook.Register(mgr, webhook.Config{Image: "dossierguard:test", NativeSidecar: true,
		BreakGlassGroups: []string{breakGlassGroup},
		LogbookURL:       "http://dossierguard-logbook.dossierguard-system.svc:4318"}, operatorNamespace)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		fmt.Fprintln(os.Stderr, "cache did not sync")
		return 1
	}
	return m.Run()
}

func namespace(t *testing.T, name string) {
	t.Helper()
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

// store creates store "dossiers" selecting app=dossier, with OIDC identity.
func store(t *testing.T, ns string) {
	t.Helper()
	storeWith(t, ns, "dossiers", map[string]string{"app": "dossier"})
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "case-management:1"}}},
	}
}

func sidecars(p *corev1.Pod) int {
	n := 0
	for _, list := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == webhook.SidecarName {
				n++
			}
		}
	}
	return n
}

func TestLabelledPodGetsExactlyOneSidecar(t *testing.T) {
	ctx := context.Background()
	namespace(t, "wijkteam")
	store(t, "wijkteam")
	labels := map[string]string{"app": "dossier", "privacy.dossierguard.io/store": "dossiers"}
	first := pod("wijkteam", "app-1", labels)
	if err := env.Client.Create(ctx, first); err != nil {
		t.Fatalf("create labelled pod: %v", err)
	}
	if n := sidecars(first); n != 1 {
		t.Fatalf("%d audit-proxy containers; want 1", n)
	}
	proxy := first.Spec.InitContainers[0]
	if proxy.Name != webhook.SidecarName || proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("want the proxy as a native sidecar first among init containers, got %+v", first.Spec.InitContainers)
	}
	args := strings.Join(proxy.Args, " ")
	for _, want := range []string{"--listen=:8443", "--upstream=http://127.0.0.1:8080", "--oidc-issuer=https://login.voorbeeldstad.nl", "--oidc-audience=dossiers"} {
		if !strings.Contains(args, want) {
			t.Errorf("proxy args %q lack %s", args, want)
		}
	}
	sc := proxy.SecurityContext
	if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("proxy security context is not restricted: %+v", sc)
	}
	volumes := map[string]bool{}
	for _, v := range first.Spec.Volumes {
		volumes[v.Name] = true
	}
	if !volumes[webhook.PolicyVolume] || !volumes[webhook.SigningVolume] || !volumes[webhook.PseudonymVolume] || !volumes[webhook.LogVolume] {
		t.Errorf("volumes %v lack the policy, signing keys, pseudonym key or log", volumes)
	}

	// Submitting the mutated pod again (as kubectl apply of a dumped pod
	// would) does not add a second proxy.
	again := pod("wijkteam", "app-2", labels)
	again.Spec = *first.Spec.DeepCopy()
	again.Spec.NodeName = ""
	if err := env.Client.Create(ctx, again); err != nil {
		t.Fatalf("create resubmitted pod: %v", err)
	}
	if n := sidecars(again); n != 1 {
		t.Errorf("resubmitted pod has %d audit-proxy containers; want 1", n)
	}
}

func TestOtherPodsAreUntouched(t *testing.T) {
	ctx := context.Background()
	namespace(t, "other")
	p := pod("other", "web", map[string]string{"app": "web"})
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if sidecars(p) != 0 || len(p.Spec.Volumes) != 0 || p.Annotations[v1alpha1.AnnotationAuditProxy] != "" {
		t.Errorf("an unlabelled pod was changed: %+v", p.Spec)
	}
	// The operator's own namespace is excluded, even for a labelled pod.
	namespace(t, operatorNamespace)
	op := pod(operatorNamespace, "manager", map[string]string{"privacy.dossierguard.io/store": "x"})
	if err := env.Client.Create(ctx, op); err != nil {
		t.Fatalf("a pod in the operator's namespace was refused: %v", err)
	}
	if sidecars(op) != 0 {
		t.Error("a pod in the operator's namespace was mutated")
	}
}

func TestPodOfAStoreWithoutIdentityIsRefused(t *testing.T) {
	ctx := context.Background()
	namespace(t, "no-identity")
	s := &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "no-identity"},
		Spec: v1alpha1.DossierStoreSpec{
			Service: v1alpha1.ServiceNeighbourhoodTeam, Organisation: "Gemeente Voorbeeldstad",
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
			Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dossier"}},
				ServiceAccountName: "dossier", AppPort: 8080},
			Storage: v1alpha1.StorageSpec{StorageClassName: "encrypted", Size: "1Gi"},
		},
	}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	err := env.Client.Create(ctx, pod("no-identity", "app", map[string]string{"app": "dossier", "privacy.dossierguard.io/store": "dossiers"}))
	if err == nil || !strings.Contains(err.Error(), "spec.audit.identity") {
		t.Fatalf("want a refusal naming spec.audit.identity, got %v", err)
	}
}

func TestPodOfAMissingStoreIsRefused(t *testing.T) {
	namespace(t, "cjg")
	err := env.Client.Create(context.Background(), pod("cjg", "app", map[string]string{"privacy.dossierguard.io/store": "missing"}))
	if err == nil || !strings.Contains(err.Error(), `DossierStore "missing" does not exist`) || !strings.Contains(err.Error(), "must not start without its audit proxy") {
		t.Fatalf("want a refusal that names the store and the reason, got %v", err)
	}
}
