package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/internal/testenv"
)

// decode splits rendered manifests into objects.
func decode(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.DecodeManifests([]byte(manifests))
	if err != nil {
		t.Fatalf("decode manifests: %v", err)
	}
	return objs
}

// find returns the object of a kind and name, failing when there is none.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q among the rendered objects", kind, name)
	return nil
}

func has(objs []*unstructured.Unstructured, kind, name string) bool {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return true
		}
	}
	return false
}

// convert turns an unstructured object into a typed one.
func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("convert %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// ---- RBAC ------------------------------------------------------------------

// triple is one permission: a verb on a resource of an API group.
type triple struct{ group, resource, verb string }

func (p triple) String() string {
	g := p.group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s/%s:%s", g, p.resource, p.verb)
}

func triples(rules []rbacv1.PolicyRule) map[triple]bool {
	out := map[triple]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out[triple{g, res, v}] = true
				}
			}
		}
	}
	return out
}

// generatedRules are the rules controller-gen writes to config/rbac/role.yaml.
func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatalf("config/rbac/role.yaml: %v", err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	return role.Rules
}

// extraRule is a permission beyond the generated ClusterRole, documented in
// docs/install.md ("Permissions"), always scoped: to the operator's namespace
// (a Role) or to named objects (resourceNames).
type extraRule struct {
	kind, name    string // the Role or ClusterRole that grants it
	group         string
	resource      string
	verbs         []string
	resourceNames []string
}

var extraRules = []extraRule{
	// Leader election, in the operator's namespace.
	{"Role", "dossierguard-leader-election", "coordination.k8s.io", "leases", []string{"get", "list", "watch", "create", "update", "patch", "delete"}, nil},
	{"Role", "dossierguard-leader-election", "", "events", []string{"create", "patch"}, nil},
	{"Role", "dossierguard-leader-election", "events.k8s.io", "events", []string{"create", "patch"}, nil},
	// The webhook's certificate Secret: create cannot take resourceNames.
	{"Role", "dossierguard-webhook-tls", "", "secrets", []string{"create"}, nil},
	{"Role", "dossierguard-webhook-tls", "", "secrets", []string{"get", "update", "patch"}, []string{"dossierguard-webhook-tls"}},
	// The public checkpoint keys, for people who verify audit logs (bound to no one).
	{"Role", "dossierguard-audit-trust-reader", "", "configmaps", []string{"get"}, []string{"dossierguard-audit-trust"}},
	// The stores' egress gateways review their callers' tokens; bound by the
	// manager to each gateway's ServiceAccount only, never by the chart.
	{"ClusterRole", "dossierguard-egress-gateway", "authentication.k8s.io", "tokenreviews", []string{"create"}, nil},
	// The caBundle of the operator's own webhook configurations.
	{"ClusterRole", "dossierguard-webhook-config", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", []string{"get", "update", "patch"}, []string{"dossierguard-sidecar-injector"}},
	{"ClusterRole", "dossierguard-webhook-config", "admissionregistration.k8s.io", "validatingwebhookconfigurations", []string{"get", "update", "patch"}, []string{"dossierguard-pod-guard"}},
}

// checkRBAC asserts that the ClusterRole dossierguard-manager grants nothing
// beyond config/rbac/role.yaml, that every other Role and ClusterRole grants
// only the documented extra rules (with the same resourceNames), that Roles
// live in the operator's namespace, that nothing uses a wildcard, and that
// every binding binds only the manager's ServiceAccount.
func checkRBAC(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	generated := triples(generatedRules(t))
	sawManager := false
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole", "Role":
			var rules []rbacv1.PolicyRule
			if o.GetKind() == "Role" {
				rules = convert[rbacv1.Role](t, o).Rules
				if o.GetNamespace() != ns {
					t.Errorf("Role %s is in namespace %q, want the operator's namespace %q", o.GetName(), o.GetNamespace(), ns)
				}
			} else {
				rules = convert[rbacv1.ClusterRole](t, o).Rules
			}
			for _, r := range rules {
				for _, field := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
					if slices.Contains(field, "*") {
						t.Errorf("%s %s has a wildcard rule: %+v", o.GetKind(), o.GetName(), r)
					}
				}
				if len(r.NonResourceURLs) > 0 {
					t.Errorf("%s %s grants non-resource URLs %v", o.GetKind(), o.GetName(), r.NonResourceURLs)
				}
			}
			if o.GetKind() == "ClusterRole" && o.GetName() == "dossierguard-manager" {
				sawManager = true
				var broader []string
				for p := range triples(rules) {
					if !generated[p] {
						broader = append(broader, p.String())
					}
				}
				sort.Strings(broader)
				if len(broader) > 0 {
					t.Errorf("ClusterRole dossierguard-manager grants %v, which config/rbac/role.yaml does not: run hack/sync-chart.sh", broader)
				}
				continue
			}
			for _, r := range rules {
				for p := range triples([]rbacv1.PolicyRule{r}) {
					if !allowedExtra(o.GetKind(), o.GetName(), p, r.ResourceNames) {
						t.Errorf("%s %s grants %s (resourceNames %v), which is neither in config/rbac/role.yaml's ClusterRole nor a documented extra rule", o.GetKind(), o.GetName(), p, r.ResourceNames)
					}
				}
			}
		case "ClusterRoleBinding", "RoleBinding":
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				m := s.(map[string]any)
				if m["kind"] != "ServiceAccount" || m["name"] != "dossierguard-manager" || m["namespace"] != ns {
					t.Errorf("%s %s binds %v, want only ServiceAccount %s/dossierguard-manager", o.GetKind(), o.GetName(), m, ns)
				}
			}
		}
	}
	if !sawManager {
		t.Error("no ClusterRole dossierguard-manager")
	}
}

func allowedExtra(kind, name string, p triple, resourceNames []string) bool {
	for _, e := range extraRules {
		if e.kind == kind && e.name == name && e.group == p.group && e.resource == p.resource &&
			slices.Contains(e.verbs, p.verb) && slices.Equal(sorted(e.resourceNames), sorted(resourceNames)) {
			return true
		}
	}
	return false
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// ---- Pod Security ------------------------------------------------------------

// podSpecs returns every pod template among the objects: Deployments,
// StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and bare Pods.
func podSpecs(t *testing.T, objs []*unstructured.Unstructured) map[string]corev1.PodTemplateSpec {
	t.Helper()
	out := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		key := o.GetKind() + "/" + o.GetName()
		switch o.GetKind() {
		case "Deployment":
			out[key] = convert[appsv1.Deployment](t, o).Spec.Template
		case "StatefulSet":
			out[key] = convert[appsv1.StatefulSet](t, o).Spec.Template
		case "DaemonSet":
			out[key] = convert[appsv1.DaemonSet](t, o).Spec.Template
		case "ReplicaSet":
			out[key] = convert[appsv1.ReplicaSet](t, o).Spec.Template
		case "Job":
			out[key] = convert[batchv1.Job](t, o).Spec.Template
		case "CronJob":
			out[key] = convert[batchv1.CronJob](t, o).Spec.JobTemplate.Spec.Template
		case "Pod":
			p := convert[corev1.Pod](t, o)
			out[key] = corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
		}
	}
	return out
}

// restrictedViolations evaluates a pod against the restricted Pod Security
// Standard, latest version, with the checks kube-apiserver's PodSecurity
// admission uses.
func restrictedViolations(t *testing.T, tmpl corev1.PodTemplateSpec) []string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("pod security evaluator: %v", err)
	}
	var out []string
	for _, r := range evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &tmpl.ObjectMeta, &tmpl.Spec) {
		if !r.Allowed {
			out = append(out, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return out
}

// checkRestricted asserts that every pod spec among the objects passes the
// restricted Pod Security Standard, and that there is at least one.
func checkRestricted(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	specs := podSpecs(t, objs)
	if len(specs) == 0 {
		t.Fatal("no pod specs among the objects")
	}
	for key, tmpl := range specs {
		if v := restrictedViolations(t, tmpl); len(v) > 0 {
			t.Errorf("%s violates the restricted Pod Security Standard:\n  %s", key, strings.Join(v, "\n  "))
		}
	}
}
