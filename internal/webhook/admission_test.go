package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// storeWith creates a store with the given name and workload selector.
func storeWith(t *testing.T, ns, name string, selector map[string]string) {
	t.Helper()
	s := &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.DossierStoreSpec{
			Service: v1alpha1.ServiceNeighbourhoodTeam, Organisation: "Gemeente Voorbeeldstad",
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
			Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: selector},
				ServiceAccountName: "dossier", AppPort: 8080, ProxyPort: 8443},
			Storage: v1alpha1.StorageSpec{StorageClassName: "encrypted", Size: "1Gi"},
			Audit: &v1alpha1.AuditSpec{Identity: &v1alpha1.IdentitySpec{OIDC: &v1alpha1.OIDCSpec{
				IssuerURL: "https://login.voorbeeldstad.nl", Audience: "dossiers"}}},
		},
	}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	// Wait until the webhook's cache has the store.
	time.Sleep(500 * time.Millisecond)
}

func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the pod was admitted; want a refusal naming %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not name %q", err.Error(), w)
		}
	}
}

// A container named audit-proxy is not proof of the audit proxy: the pod
// author chooses names. The webhook decides by what it injected itself.
func TestDecoyAuditProxyIsRefused(t *testing.T) {
	ctx := context.Background()
	namespace(t, "decoy")
	store(t, "decoy")
	labels := map[string]string{"app": "dossier", "privacy.dossierguard.io/store": "dossiers"}
	decoy := corev1.Container{Name: webhook.SidecarName, Image: "busybox:1", Command: []string{"sleep", "infinity"}}

	asContainer := pod("decoy", "as-container", labels)
	asContainer.Spec.Containers = append(asContainer.Spec.Containers, decoy)
	refused(t, env.Client.Create(ctx, asContainer), "spec.containers[1]", "audit-proxy")

	asInit := pod("decoy", "as-init", labels)
	asInit.Spec.InitContainers = []corev1.Container{decoy}
	refused(t, env.Client.Create(ctx, asInit), "spec.initContainers[0]", "audit-proxy")

	asSidecar := pod("decoy", "as-sidecar", labels)
	d := decoy
	d.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	asSidecar.Spec.InitContainers = []corev1.Container{d}
	refused(t, env.Client.Create(ctx, asSidecar), "audit-proxy")

	// The real proxy, copied from an injected pod, with one field changed:
	// its image, an argument, a mount, a volume or an extra command.
	real := pod("decoy", "real", labels)
	if err := env.Client.Create(ctx, real); err != nil {
		t.Fatalf("create a workload pod: %v", err)
	}
	for name, edit := range map[string]func(*corev1.Pod){
		"image":   func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "evil/proxy:1" },
		"args":    func(p *corev1.Pod) { p.Spec.InitContainers[0].Args[2] = "--upstream=http://127.0.0.1:9999" },
		"command": func(p *corev1.Pod) { p.Spec.InitContainers[0].Command = []string{"/bin/sh", "-c", "sleep infinity"} },
		"env": func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Env = []corev1.EnvVar{{Name: "GODEBUG", Value: "x"}}
		},
		"mount": func(p *corev1.Pod) { p.Spec.InitContainers[0].VolumeMounts = p.Spec.InitContainers[0].VolumeMounts[:1] },
		"policy volume": func(p *corev1.Pod) {
			for i := range p.Spec.Volumes {
				if p.Spec.Volumes[i].Name == webhook.PolicyVolume {
					p.Spec.Volumes[i].ConfigMap.Name = "allow-everything"
				}
			}
		},
		"annotation only": func(p *corev1.Pod) {
			p.Spec.InitContainers = p.Spec.InitContainers[1:]
			p.Spec.InitContainers = append(p.Spec.InitContainers, decoy)
		},
	} {
		copied := pod("decoy", "copy-"+strings.ReplaceAll(name, " ", "-"), labels)
		copied.Annotations = real.Annotations
		copied.Spec = *real.Spec.DeepCopy()
		copied.Spec.NodeName = ""
		edit(copied)
		err := env.Client.Create(ctx, copied)
		if err == nil {
			t.Errorf("%s: a pod with an altered audit proxy was admitted", name)
			continue
		}
		if !strings.Contains(err.Error(), "audit-proxy") && !strings.Contains(err.Error(), "audit proxy") {
			t.Errorf("%s: refusal %q does not name the audit proxy", name, err)
		}
	}
}

// The store label and the stores' workload selectors must agree; a pod that
// any store's selector matches is that store's pod.
func TestLabelAndSelectorMustAgree(t *testing.T) {
	ctx := context.Background()
	namespace(t, "two-stores")
	storeWith(t, "two-stores", "store-a", map[string]string{"app": "a"})
	storeWith(t, "two-stores", "store-b", map[string]string{"app": "b"})

	// Labelled for B, selected by A: refused.
	refused(t, env.Client.Create(ctx, pod("two-stores", "b-label-a-selector",
		map[string]string{"app": "a", "privacy.dossierguard.io/store": "store-b"})), `"store-a"`, `"store-b"`)
	// Labelled for A, selected by no store: refused (A's network policy
	// would not cover it).
	refused(t, env.Client.Create(ctx, pod("two-stores", "a-label-no-selector",
		map[string]string{"app": "web", "privacy.dossierguard.io/store": "store-a"})), `"store-a"`, "selector")

	// Selected by A, no label: injected with A's proxy and labelled for A.
	unlabelled := pod("two-stores", "selected-unlabelled", map[string]string{"app": "a"})
	if err := env.Client.Create(ctx, unlabelled); err != nil {
		t.Fatalf("an unlabelled pod that store-a selects was refused: %v", err)
	}
	if n := sidecars(unlabelled); n != 1 {
		t.Fatalf("an unlabelled pod that store-a selects has %d audit proxies; want 1", n)
	}
	if got := unlabelled.Labels["privacy.dossierguard.io/store"]; got != "store-a" {
		t.Errorf("store label %q; want store-a", got)
	}
	for _, v := range unlabelled.Spec.Volumes {
		if v.Name == webhook.SigningVolume && v.Secret.SecretName != "store-a-audit-signing" {
			t.Errorf("signing-key volume from Secret %q; want store-a's", v.Secret.SecretName)
		}
		if v.Name == webhook.PseudonymVolume && v.Secret.SecretName != "store-a-pseudonym" {
			t.Errorf("pseudonym-key volume from Secret %q; want store-a's", v.Secret.SecretName)
		}
	}

	// Selected by two stores: ambiguous, refused.
	storeWith(t, "two-stores", "store-c", map[string]string{"tier": "dossiers"})
	refused(t, env.Client.Create(ctx, pod("two-stores", "two-selectors",
		map[string]string{"app": "a", "tier": "dossiers"})), `"store-a"`, `"store-c"`)

	// A pod that no store selects, relabelled into a store's selector
	// afterwards, would run without a proxy behind the store's network
	// policy: the update is refused.
	web := pod("two-stores", "web", map[string]string{"app": "web"})
	if err := env.Client.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	if sidecars(web) != 0 {
		t.Fatal("a pod no store selects got a proxy")
	}
	web.Labels["app"] = "a"
	refused(t, env.Client.Update(ctx, web), "store-a")

	// The proxy's image of an admitted pod is mutable in the API; changing it
	// is refused too.
	proxy := unlabelled.DeepCopy()
	proxy.Spec.InitContainers[0].Image = "evil/proxy:1"
	refused(t, env.Client.Update(ctx, proxy), "audit-proxy")
}

// Workload pods must not bypass the proxy: host namespaces, the proxy's
// ports, its volumes and Secrets, host paths and privileges are refused.
func TestPodsThatBypassTheProxyAreRefused(t *testing.T) {
	ctx := context.Background()
	namespace(t, "bypass")
	store(t, "bypass")
	labels := map[string]string{"app": "dossier"}
	app := func(p *corev1.Pod) *corev1.Container { return &p.Spec.Containers[0] }
	for name, tc := range map[string]struct {
		edit func(*corev1.Pod)
		want string
	}{
		"hostNetwork":           {func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "spec.hostNetwork"},
		"hostPID":               {func(p *corev1.Pod) { p.Spec.HostPID = true }, "spec.hostPID"},
		"hostIPC":               {func(p *corev1.Pod) { p.Spec.HostIPC = true }, "spec.hostIPC"},
		"shareProcessNamespace": {func(p *corev1.Pod) { p.Spec.ShareProcessNamespace = ptr.To(true) }, "spec.shareProcessNamespace"},
		"proxy port": {func(p *corev1.Pod) {
			app(p).Ports = []corev1.ContainerPort{{ContainerPort: 8443}}
		}, "spec.containers[0].ports[0]"},
		"health port": {func(p *corev1.Pod) {
			app(p).Ports = []corev1.ContainerPort{{ContainerPort: webhook.HealthPort}}
		}, "spec.containers[0].ports[0]"},
		"hostPort": {func(p *corev1.Pod) {
			app(p).Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080}}
		}, "hostPort"},
		"proxy port in an init container": {func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1", Ports: []corev1.ContainerPort{{ContainerPort: 8443}}}}
		}, "spec.initContainers[0].ports[0]"},
		"signing-key volume by name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: webhook.SigningVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			app(p).VolumeMounts = []corev1.VolumeMount{{Name: webhook.SigningVolume, MountPath: "/keys"}}
		}, webhook.SigningVolume},
		"pseudonym volume by name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: webhook.PseudonymVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, webhook.PseudonymVolume},
		"legacy keys volume by name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: webhook.LegacyKeysVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, webhook.LegacyKeysVolume},
		"log volume by name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: webhook.LogVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, webhook.LogVolume},
		"policy volume by name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: webhook.PolicyVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, webhook.PolicyVolume},
		"signing Secret under another name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "dossiers-audit-signing"}}}}
		}, "dossiers-audit-signing"},
		"pseudonym Secret under another name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "dossiers-pseudonym"}}}}
		}, "dossiers-pseudonym"},
		"pseudonym Secret in the environment": {func(p *corev1.Pod) {
			app(p).EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "dossiers-pseudonym"}}}}
		}, "spec.containers[0].envFrom[0]"},
		"legacy audit keys Secret under another name": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "dossiers-audit-keys"}}}}
		}, "dossiers-audit-keys"},
		"audit keys Secret in a projected volume": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "dossiers-audit-keys"}}}}}}}}
		}, "dossiers-audit-keys"},
		"audit keys Secret in the environment": {func(p *corev1.Pod) {
			app(p).Env = []corev1.EnvVar{{Name: "K", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "dossiers-audit-keys"}, Key: "signing.key"}}}}
		}, "spec.containers[0].env[0]"},
		"hostPath": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "node", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/kubelet"}}}}
		}, "hostPath"},
		"privileged": {func(p *corev1.Pod) {
			app(p).SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, "spec.containers[0].securityContext.privileged"},
		"NET_ADMIN": {func(p *corev1.Pod) {
			app(p).SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
		}, "NET_ADMIN"},
	} {
		p := pod("bypass", strings.NewReplacer(" ", "-", "_", "-").Replace(strings.ToLower(name)), labels)
		tc.edit(p)
		err := env.Client.Create(ctx, p)
		if err == nil {
			t.Errorf("%s: admitted; want a refusal naming %s", name, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: refusal %q does not name %s", name, err, tc.want)
		}
	}
	// NET_BIND_SERVICE, as the restricted Pod Security Standard allows, is fine.
	ok := pod("bypass", "bind-service", labels)
	app(ok).SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}}}
	if err := env.Client.Create(ctx, ok); err != nil {
		t.Errorf("a pod adding only NET_BIND_SERVICE was refused: %v", err)
	}
}

// kubectl debug, exec, attach and port-forward into a workload pod reach
// the application behind the proxy: refused, unless break-glass.
func TestDebugExecAttachPortForwardAreRefused(t *testing.T) {
	ctx := context.Background()
	namespace(t, "access")
	store(t, "access")
	p := pod("access", "app", map[string]string{"app": "dossier"})
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	// kubectl debug: an ephemeral container.
	debug := p.DeepCopy()
	debug.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger", Image: "busybox:1", Stdin: true, TTY: true}, TargetContainerName: "app"}}
	refused(t, env.Client.SubResource("ephemeralcontainers").Update(ctx, debug), "break-glass")

	cs := kubernetes.NewForConfigOrDie(env.Config)
	for _, sub := range []string{"exec", "attach", "portforward"} {
		req := cs.CoreV1().RESTClient().Post().Namespace("access").Resource("pods").Name("app").SubResource(sub)
		if sub != "portforward" {
			req = req.Param("container", "app").Param("stdout", "true")
		}
		if sub == "exec" {
			req = req.Param("command", "sh")
		}
		err := req.Do(ctx).Error()
		refused(t, err, "break-glass")
	}

	// The API server's proxy to a pod's or a Service's port reaches the
	// application port directly.
	podProxy := cs.CoreV1().RESTClient().Get().Namespace("access").Resource("pods").Name("app:8080").SubResource("proxy").Suffix("api")
	refused(t, podProxy.Do(ctx).Error(), "proxy")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: "access"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "dossier"}, Ports: []corev1.ServicePort{{Port: 8080}}}}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	svcProxy := cs.CoreV1().RESTClient().Get().Namespace("access").Resource("services").Name("dossiers:8080").SubResource("proxy").Suffix("api")
	refused(t, svcProxy.Do(ctx).Error(), "proxy")

	// A pod outside every store is not guarded.
	namespace(t, "plain")
	other := pod("plain", "web", map[string]string{"app": "web"})
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	err := cs.CoreV1().RESTClient().Post().Namespace("plain").Resource("pods").Name("web").SubResource("exec").
		Param("container", "app").Param("command", "sh").Param("stdout", "true").Do(ctx).Error()
	if err != nil && strings.Contains(err.Error(), "break-glass") {
		t.Errorf("exec into a pod of no store was refused by the webhook: %v", err)
	}
}

// Break-glass: a member of a configured group who gave a justification on
// the pod may debug it; the access is recorded without personal data.
func TestBreakGlassAccessIsRecorded(t *testing.T) {
	ctx := context.Background()
	namespace(t, "glass")
	store(t, "glass")
	p := pod("glass", "app", map[string]string{"app": "dossier"})
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	responderCfg := impersonateConfig("jan.responder@voorbeeldstad.nl", breakGlassGroup, "system:masters")
	outsiderCfg := impersonateConfig("piet@voorbeeldstad.nl", "system:masters")
	responder, _ := client.New(responderCfg, client.Options{Scheme: env.Scheme})
	outsider, _ := client.New(outsiderCfg, client.Options{Scheme: env.Scheme})
	until := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)

	annotate := func(c client.Client, justification, until string) error {
		fresh := &corev1.Pod{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), fresh); err != nil {
			return err
		}
		if fresh.Annotations == nil {
			fresh.Annotations = map[string]string{}
		}
		fresh.Annotations[v1alpha1.AnnotationBreakGlassJustification] = justification
		fresh.Annotations[v1alpha1.AnnotationBreakGlassUntil] = until
		return c.Update(ctx, fresh)
	}
	// A pod created with a window (a template carrying one) is refused:
	// windows are opened on running pods by members of the group.
	withWindow := pod("glass", "templated", map[string]string{"app": "dossier"})
	withWindow.Annotations = map[string]string{v1alpha1.AnnotationBreakGlassJustification: "INC-4711 worker stuck on a migration",
		v1alpha1.AnnotationBreakGlassUntil: until}
	refused(t, env.Client.Create(ctx, withWindow), "break-glass")

	// Only a member of the group may give a justification, and only a clean,
	// bounded one for a short window.
	refused(t, annotate(outsider, "INC-4711 worker stuck on a migration", until), "break-glass")
	refused(t, annotate(responder, "INC-4711 \u202eevil", until), v1alpha1.AnnotationBreakGlassJustification)
	refused(t, annotate(responder, "INC-4711 worker stuck on a migration", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)),
		v1alpha1.AnnotationBreakGlassUntil)
	if err := annotate(responder, "INC-4711 worker stuck on a migration", until); err != nil {
		t.Fatalf("a member of the break-glass group could not give a justification: %v", err)
	}

	exec := func(cfg *rest.Config, container string) error {
		cs := kubernetes.NewForConfigOrDie(cfg)
		return cs.CoreV1().RESTClient().Post().Namespace("glass").Resource("pods").Name("app").SubResource("exec").
			Param("container", container).Param("command", "sh").Param("stdout", "true").Do(ctx).Error()
	}
	// Not a member: refused even with a justification on the pod.
	refused(t, exec(outsiderCfg, "app"), "break-glass")
	// A member: admitted (envtest has no kubelet, so the API server answers
	// that the pod has no node, after admission).
	if err := exec(responderCfg, "app"); err != nil && strings.Contains(err.Error(), "denied the request") {
		t.Fatalf("break-glass exec by a member was refused: %v", err)
	}
	// Never into the proxy, which holds the audit keys.
	refused(t, exec(responderCfg, webhook.SidecarName), "audit-proxy")

	// The access is recorded as an Event on the pod: what, under which
	// group, and a digest of the justification, but not who.
	var note string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && note == "" {
		events := &corev1.EventList{}
		_ = env.Client.List(ctx, events, client.InNamespace("glass"))
		for _, e := range events.Items {
			if e.Reason == v1alpha1.ReasonBreakGlassAccess && e.InvolvedObject.Name == "app" {
				note = e.Message
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if note == "" {
		t.Fatal("no BreakGlassAccess event on the pod")
	}
	for _, want := range []string{"exec", breakGlassGroup} {
		if !strings.Contains(note, want) {
			t.Errorf("event %q does not name %q", note, want)
		}
	}
	for _, never := range []string{"jan.responder", "INC-4711"} {
		if strings.Contains(note, never) {
			t.Errorf("event %q holds %q", note, never)
		}
	}
}

// breakGlassGroup is the group the test webhook accepts for break-glass.
const breakGlassGroup = "dossierguard:break-glass"

// impersonateConfig is the test cluster's admin acting as user in groups.
func impersonateConfig(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}
