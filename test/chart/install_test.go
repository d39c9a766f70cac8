package chart

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dossierguard/dossierguard/internal/testenv"
)

// TestInstall installs the chart with the real Helm into a real
// kube-apiserver that has no dossierguard CRDs yet, so that Helm installs
// them from crds/. There are no controllers, so no pod ever runs: the checks
// are on the objects the API server accepted.
//
//  1. helm install: the six CRDs are Established; the installed RBAC grants
//     nothing beyond config/rbac/role.yaml and the documented extras; the
//     installed Deployment (and every pod spec of `helm get manifest`) passes
//     the restricted Pod Security Standard; the webhook is fail-closed.
//  2. the operator injects a caBundle; helm upgrade keeps it.
//  3. helm uninstall keeps the CRDs and the dossierguard resources.
//  4. make deploy (kustomize) applies config/default on top; make undeploy
//     removes it again but keeps the CRDs and the resources.
func TestInstall(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with 'make test' (or 'make test-chart'), which builds kube-apiserver and etcd with hack/envtest-assets.sh")
	}
	ctx := context.Background()
	env := &envtest.Environment{} // no CRDs: Helm installs them
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	kc := []string{"--kubeconfig", kubeconfig}

	// 1. Install.
	notes := mustHelm(t, append([]string{"install", "dossierguard", chartDir, "--namespace", namespace, "--create-namespace", "--timeout", "2m"}, kc...)...)
	for _, want := range []string{"STATUS: deployed", "kubectl get deploy dossierguard-manager -n " + namespace, "kubectl get privacy -A", "kubectl get crd"} {
		if !strings.Contains(notes, want) {
			t.Errorf("helm install's notes lack %q:\n%s", want, notes)
		}
	}

	crds := waitEstablished(ctx, t, c)
	if len(crds) != 6 {
		t.Errorf("Established CRDs %v, want the six of config/crd/bases", crds)
	}

	installed := installedRBAC(ctx, t, c)
	checkRBAC(t, installed, namespace)

	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "dossierguard-manager"}, dep); err != nil {
		t.Fatalf("the Deployment was not installed: %v", err)
	}
	if v := restrictedViolations(t, dep.Spec.Template); len(v) > 0 {
		t.Errorf("the installed Deployment violates the restricted Pod Security Standard: %v", v)
	}
	manifest := decode(t, mustHelm(t, append([]string{"get", "manifest", "dossierguard", "--namespace", namespace}, kc...)...))
	checkRestricted(t, manifest)

	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, types.NamespacedName{Name: "dossierguard-sidecar-injector"}, mwc); err != nil {
		t.Fatalf("the MutatingWebhookConfiguration was not installed: %v", err)
	}
	checkWebhook(t, mwc, namespace)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, types.NamespacedName{Name: "dossierguard-pod-guard"}, vwc); err != nil {
		t.Fatalf("the ValidatingWebhookConfiguration was not installed: %v", err)
	}
	checkPodGuard(t, vwc, namespace)
	for _, kind := range []string{"ConfigMap", "Service", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"} {
		n := map[string]string{"ConfigMap": "dossierguard-retention-statutes", "Service": "dossierguard-webhook",
			"NetworkPolicy": "dossierguard-manager", "PodDisruptionBudget": "dossierguard-manager", "ServiceAccount": "dossierguard-manager"}[kind]
		if !has(manifest, kind, n) {
			t.Errorf("helm get manifest lacks %s %s", kind, n)
		}
	}

	// The documented CRD upgrade (docs/install.md): a changed CRD conflicts
	// with Helm's ownership until --force-conflicts hands its fields to
	// kubectl; later applies need no force.
	k := kubectl(t)
	changed := changedCRDs(t)
	if out, err := exec.Command(k, "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", changed).CombinedOutput(); err == nil || !strings.Contains(string(out), "conflict") {
		t.Errorf("server-side apply of a changed CRD over Helm's: err %v, want a conflict\n%s", err, out)
	}
	run(t, nil, k, "--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", changed)
	run(t, nil, k, "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", filepath.Join(chartDir, "crds"))

	// A dossierguard resource, as a user would create one.
	store := sampleStore(t)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: store.GetNamespace()}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The store-finalizer admission policy answers 503 for a few seconds
	// after the CRDs changed (the API server reloads their schemas every
	// 5 s), as a client would see it: try again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Create(ctx, store.DeepCopy())
		if err == nil {
			break
		}
		if !apierrors.IsServiceUnavailable(err) || time.Now().After(deadline) {
			t.Fatalf("create sample DossierStore %s/%s: %v", store.GetNamespace(), store.GetName(), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The chart's admission policy set its finalizer (no manager runs here).
	created := store.DeepCopy()
	if err := c.Get(ctx, client.ObjectKeyFromObject(store), created); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(created.GetFinalizers(), "privacy.dossierguard.io/dossier-volume") {
		t.Errorf("sample DossierStore finalizers %v; want the one the chart's admission policy sets", created.GetFinalizers())
	}

	// 2. The operator injects its CA; an upgrade leaves it alone.
	ca := cfg.CAData
	if len(ca) == 0 {
		t.Fatal("envtest gave no CA to inject")
	}
	patch := client.MergeFrom(mwc.DeepCopy())
	mwc.Webhooks[0].ClientConfig.CABundle = ca
	if err := c.Patch(ctx, mwc, patch); err != nil {
		t.Fatalf("inject caBundle as the operator does: %v", err)
	}
	mustHelm(t, append([]string{"upgrade", "dossierguard", chartDir, "--namespace", namespace, "--reuse-values", "--set", "replicaCount=3"}, kc...)...)
	if err := c.Get(ctx, types.NamespacedName{Name: "dossierguard-sidecar-injector"}, mwc); err != nil {
		t.Fatal(err)
	}
	if string(mwc.Webhooks[0].ClientConfig.CABundle) != string(ca) {
		t.Error("helm upgrade removed the caBundle the operator injected: the webhook would fail closed until the next rotation")
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "dossierguard-manager"}, dep); err != nil || *dep.Spec.Replicas != 3 {
		t.Errorf("upgrade to 3 replicas: %v, replicas %v", err, dep.Spec.Replicas)
	}

	// 3. Uninstall keeps CRDs and resources.
	mustHelm(t, append([]string{"uninstall", "dossierguard", "--namespace", namespace, "--wait", "--timeout", "1m"}, kc...)...)
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "dossierguard-manager"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment survived helm uninstall: %v", err)
	}
	if got := waitEstablished(ctx, t, c); len(got) != 6 {
		t.Errorf("after helm uninstall the CRDs are %v, want all six kept", got)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(store), store.DeepCopy()); err != nil {
		t.Errorf("the DossierStore did not survive helm uninstall: %v", err)
	}

	// 4. make deploy / make undeploy, as the Makefile runs them.
	env2 := []string{"KUBECONFIG=" + kubeconfig, "K=" + k}
	run(t, env2, "bash", "-c", deployCommand)
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "dossierguard-manager"}, dep); err != nil {
		t.Fatalf("make deploy did not create the Deployment: %v", err)
	}
	if v := restrictedViolations(t, dep.Spec.Template); len(v) > 0 {
		t.Errorf("the kustomize Deployment violates the restricted Pod Security Standard: %v", v)
	}
	checkRBAC(t, installedRBAC(ctx, t, c), namespace)
	run(t, env2, "bash", "-c", undeployCommand)
	for _, gone := range []struct {
		obj client.Object
		key types.NamespacedName
	}{
		{&appsv1.Deployment{}, types.NamespacedName{Namespace: namespace, Name: "dossierguard-manager"}},
		{&corev1.Service{}, types.NamespacedName{Namespace: namespace, Name: "dossierguard-webhook"}},
		{&rbacv1.ClusterRole{}, types.NamespacedName{Name: "dossierguard-manager"}},
		{&admissionregistrationv1.MutatingWebhookConfiguration{}, types.NamespacedName{Name: "dossierguard-sidecar-injector"}},
	} {
		if err := c.Get(ctx, gone.key, gone.obj); !apierrors.IsNotFound(err) {
			t.Errorf("make undeploy left %T %s: %v", gone.obj, gone.key, err)
		}
	}
	if got := waitEstablished(ctx, t, c); len(got) != 6 {
		t.Errorf("after make undeploy the CRDs are %v, want all six kept", got)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(store), store.DeepCopy()); err != nil {
		t.Errorf("the DossierStore did not survive make undeploy: %v", err)
	}
}

// The Makefile's deploy and undeploy recipes ($K is kubectl, IMG the image).
const (
	deployCommand   = `set -o pipefail; "$K" kustomize config/default | sed "s|dossierguard:dev|${IMG:-dossierguard:dev}|g" | "$K" apply --server-side -f -`
	undeployCommand = `set -o pipefail; "$K" kustomize config/default | "$K" delete --ignore-not-found --wait=false -l app.kubernetes.io/part-of=dossierguard -f -`
)

// changedCRDs is a folder with the chart's CRDs, one of them changed as a
// new release might (another short name).
func changedCRDs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	changed := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, "_dossierstores.yaml") {
			s := strings.Replace(string(data), "    - dstore\n", "    - dstore\n    - dossier\n", 1)
			changed = s != string(data)
			data = []byte(s)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !changed {
		t.Fatal("could not change the DossierStore CRD's short names")
	}
	return dir
}

// waitEstablished waits until every privacy.dossierguard.io CRD is
// Established and returns their names.
func waitEstablished(ctx context.Context, t *testing.T, c client.Client) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list := &apiextensionsv1.CustomResourceDefinitionList{}
		if err := c.List(ctx, list); err != nil {
			t.Fatal(err)
		}
		var names, pending []string
		for _, crd := range list.Items {
			if crd.Spec.Group != "privacy.dossierguard.io" {
				continue
			}
			established := false
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					established = true
				}
			}
			if established {
				names = append(names, crd.Name)
			} else {
				pending = append(pending, crd.Name)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			if len(pending) > 0 {
				t.Errorf("CRDs not Established after 30s: %v", pending)
			}
			return names
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// installedRBAC reads the Roles, ClusterRoles and their bindings that carry
// app.kubernetes.io/part-of=dossierguard, as unstructured objects.
func installedRBAC(ctx context.Context, t *testing.T, c client.Client) []*unstructured.Unstructured {
	t.Helper()
	sel := client.MatchingLabels{"app.kubernetes.io/part-of": "dossierguard"}
	var out []*unstructured.Unstructured
	add := func(kind string, obj runtime.Object) {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		o := &unstructured.Unstructured{Object: u}
		o.SetKind(kind)
		out = append(out, o)
	}
	crs, roles := &rbacv1.ClusterRoleList{}, &rbacv1.RoleList{}
	crbs, rbs := &rbacv1.ClusterRoleBindingList{}, &rbacv1.RoleBindingList{}
	for _, l := range []client.ObjectList{crs, roles, crbs, rbs} {
		if err := c.List(ctx, l, sel); err != nil {
			t.Fatal(err)
		}
	}
	for i := range crs.Items {
		add("ClusterRole", &crs.Items[i])
	}
	for i := range roles.Items {
		add("Role", &roles.Items[i])
	}
	for i := range crbs.Items {
		add("ClusterRoleBinding", &crbs.Items[i])
	}
	for i := range rbs.Items {
		add("RoleBinding", &rbs.Items[i])
	}
	if len(crs.Items) == 0 || len(roles.Items) == 0 {
		t.Fatalf("no dossierguard ClusterRoles (%d) or Roles (%d) installed", len(crs.Items), len(roles.Items))
	}
	return out
}

// sampleStore is the first DossierStore of config/samples.
func sampleStore(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "DossierStore" && !strings.Contains(o.GetName(), " ") {
			return o
		}
	}
	t.Fatal("no DossierStore in config/samples")
	return nil
}
