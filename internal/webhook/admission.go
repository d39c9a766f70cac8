package webhook

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// The pure checks of admission: which store a pod belongs to, whether its
// audit proxy is exactly the one the webhook injects, and whether anything
// else in the pod could go around the proxy. The webhook and the
// AuditActive control use the same functions, so that what is refused at
// admission is also what is reported on a running pod.

// OwningStore decides which of the namespace's stores a pod belongs to. A
// pod labelled privacy.dossierguard.io/store=<name> belongs to that store,
// and that store's workload selector must select it; a pod any store's
// selector selects belongs to that store, whether labelled or not. A pod
// that no store selects and that carries no label belongs to none (nil, nil).
// Every disagreement is an error that names the field and the stores.
func OwningStore(pod *corev1.Pod, stores []v1alpha1.DossierStore) (*v1alpha1.DossierStore, error) {
	var selecting []*v1alpha1.DossierStore
	for i := range stores {
		s := &stores[i]
		sel, err := metav1.LabelSelectorAsSelector(&s.Spec.Workload.Selector)
		if err != nil {
			return nil, fmt.Errorf("DossierStore %q has an invalid spec.workload.selector (%v); no pod of its namespace is admitted until it is fixed", s.Name, err)
		}
		if !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			selecting = append(selecting, s)
		}
	}
	names := func(list []*v1alpha1.DossierStore) string {
		out := make([]string, 0, len(list))
		for _, s := range list {
			out = append(out, fmt.Sprintf("%q", s.Name))
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	label, labelled := pod.Labels[v1alpha1.LabelStore]
	if labelled {
		var named *v1alpha1.DossierStore
		for i := range stores {
			if stores[i].Name == label {
				named = &stores[i]
			}
		}
		if named == nil {
			return nil, fmt.Errorf("metadata.labels[%s]: DossierStore %q does not exist in namespace %q; a pod of a dossier store must not start without its audit proxy",
				v1alpha1.LabelStore, label, pod.Namespace)
		}
		for _, s := range selecting {
			if s.Name != label {
				return nil, fmt.Errorf("metadata.labels[%s]: the pod is labelled for DossierStore %q but DossierStore %q's spec.workload.selector selects it; the label and the selector must agree",
					v1alpha1.LabelStore, label, s.Name)
			}
		}
		if len(selecting) == 0 {
			return nil, fmt.Errorf("metadata.labels: the pod is labelled for DossierStore %q but that store's spec.workload.selector does not select it, so the store's network isolation would not cover it; the label and the selector must agree",
				label)
		}
		return named, nil
	}
	switch len(selecting) {
	case 0:
		return nil, nil
	case 1:
		return selecting[0], nil
	default:
		return nil, fmt.Errorf("metadata.labels: the workload selectors of DossierStores %s all select the pod; a pod belongs to one store", names(selecting))
	}
}

// allowedCapabilities may be added by the containers of a workload pod: what
// the restricted Pod Security Standard allows. An ephemeral (debug)
// container admitted under break-glass may also trace the application.
var (
	allowedCapabilities          = map[corev1.Capability]bool{"NET_BIND_SERVICE": true}
	allowedEphemeralCapabilities = map[corev1.Capability]bool{"NET_BIND_SERVICE": true, "SYS_PTRACE": true}
)

// reservedVolumes are the volumes the webhook adds; no other container may
// mount them.
func reservedVolumes() map[string]bool {
	return map[string]bool{PolicyVolume: true, SigningVolume: true, PseudonymVolume: true, LegacyKeysVolume: true, LogVolume: true, TLSVolume: true, LogbookTokenVolume: true, KubeVolume: true}
}

// reservedSecrets are the store's Secrets only the proxy may read.
func reservedSecrets(store *v1alpha1.DossierStore) map[string]bool {
	return map[string]bool{resources.AuditSigningName(store): true, resources.PseudonymName(store): true,
		resources.LegacyAuditKeysName(store): true, resources.ProxyTLSName(store): true}
}

// MountsSecret says whether any volume of the pod holds the Secret name, as
// a Secret volume or a projected source.
func MountsSecret(pod *corev1.Pod, name string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
		for _, src := range projectedSources(v) {
			if src.Secret != nil && src.Secret.Name == name {
				return true
			}
		}
	}
	return false
}

// VerifyProxy reports how the pod's audit proxy differs from the one the
// webhook injects for store: exactly one container named audit-proxy, in
// the injected place, equal to the injected container in every field, with
// the injected volumes. A name, an annotation or an image alone is no proof.
// No problems means the pod runs the store's audit proxy.
func VerifyProxy(pod *corev1.Pod, store *v1alpha1.DossierStore, cfg Config) []string {
	want, volumes := ExpectedProxy(store, cfg)
	got, found := findProxy(pod, cfg.NativeSidecar)
	where := "spec.initContainers[0]"
	if !cfg.NativeSidecar {
		where = "spec.containers"
	}
	switch {
	case len(found) == 0:
		return []string{fmt.Sprintf("%s: no audit-proxy container", where)}
	case len(found) > 1:
		return []string{fmt.Sprintf("%s: more than one container named %s; only the webhook adds the audit proxy, once", strings.Join(found, ", "), SidecarName)}
	case got == nil:
		return []string{fmt.Sprintf("%s: a container named %s that the webhook did not inject (the audit proxy belongs in %s); a pod must not carry a container by that name",
			found[0], SidecarName, where)}
	}
	var problems []string
	if !equality.Semantic.DeepEqual(*got, want) {
		problems = append(problems, fmt.Sprintf("%s: the %s container differs from the audit proxy the webhook injects for DossierStore %q (%s); a pod must not carry a container by that name",
			found[0], SidecarName, store.Name, containerDiff(*got, want)))
	}
	return append(problems, volumeDiff(pod.Spec.Volumes, volumes)...)
}

// findProxy lists where the pod has containers named like the proxy, and
// returns the one in the injected place (the first init container as a
// native sidecar, else a container), if any.
func findProxy(pod *corev1.Pod, native bool) (*corev1.Container, []string) {
	var found []string
	var got *corev1.Container
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == SidecarName {
			found = append(found, fmt.Sprintf("spec.initContainers[%d]", i))
			if native && i == 0 {
				got = &pod.Spec.InitContainers[i]
			}
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == SidecarName {
			found = append(found, fmt.Sprintf("spec.containers[%d]", i))
			if !native {
				got = &pod.Spec.Containers[i]
			}
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == SidecarName {
			found = append(found, fmt.Sprintf("spec.ephemeralContainers[%d]", i))
		}
	}
	return got, found
}

// volumeDiff names the injected volumes that are missing from have or differ.
func volumeDiff(have, want []corev1.Volume) []string {
	byName := map[string]*corev1.Volume{}
	for i := range have {
		byName[have[i].Name] = &have[i]
	}
	var problems []string
	for _, v := range want {
		g, ok := byName[v.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("spec.volumes: the audit proxy's volume %s is missing", v.Name))
		case !equality.Semantic.DeepEqual(g.VolumeSource, v.VolumeSource):
			problems = append(problems, fmt.Sprintf("spec.volumes[%s]: differs from the volume the webhook injects for the audit proxy", v.Name))
		}
	}
	return problems
}

// containerDiff names the fields in which got differs from want.
func containerDiff(got, want corev1.Container) string {
	var fields []string
	add := func(name string, same bool) {
		if !same {
			fields = append(fields, name)
		}
	}
	e := equality.Semantic.DeepEqual
	add("image", got.Image == want.Image)
	add("command", e(got.Command, want.Command))
	add("args", e(got.Args, want.Args))
	add("env", e(got.Env, want.Env) && e(got.EnvFrom, want.EnvFrom))
	add("ports", e(got.Ports, want.Ports))
	add("volumeMounts", e(got.VolumeMounts, want.VolumeMounts) && e(got.VolumeDevices, want.VolumeDevices))
	add("securityContext", e(got.SecurityContext, want.SecurityContext))
	add("resources", e(got.Resources, want.Resources))
	add("probes", e(got.ReadinessProbe, want.ReadinessProbe) && e(got.StartupProbe, want.StartupProbe) && e(got.LivenessProbe, want.LivenessProbe))
	add("restartPolicy", e(got.RestartPolicy, want.RestartPolicy))
	if len(fields) == 0 {
		fields = append(fields, "other fields")
	}
	return strings.Join(fields, ", ")
}

// CheckPod reports what in a workload pod of store could go around its
// audit proxy: the host's network, process or IPC namespace, a shared
// process namespace (which exposes the proxy's memory and files), the
// proxy's or its health port declared by another container, host ports,
// host paths, privileged containers or added capabilities beyond the
// restricted Pod Security Standard's, the proxy's volumes mounted by another
// container, or the proxy's Secrets read by any other means. In the
// non-native sidecar mode init containers run before the proxy and are
// refused. The audit-proxy container itself is VerifyProxy's to judge.
func CheckPod(pod *corev1.Pod, store *v1alpha1.DossierStore, cfg Config) []string {
	problems := podLevelProblems(&pod.Spec, cfg)
	r := reserved{proxyPort: resources.ProxyPort(store), secrets: reservedSecrets(store), volumes: reservedVolumes()}
	for _, c := range workloadContainers(&pod.Spec) {
		problems = append(problems, r.containerProblems(c)...)
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].TargetContainerName == SidecarName {
			problems = append(problems, fmt.Sprintf("spec.ephemeralContainers[%d].targetContainerName: the audit proxy's process holds its keys; no container may share its process namespace", i))
		}
	}
	_, injected := ExpectedProxy(store, cfg)
	return append(problems, r.volumeProblems(pod.Spec.Volumes, injected)...)
}

// why is the reason behind most of CheckPod's refusals.
const why = "pods of a dossier store must not go around the audit proxy"

// podLevelProblems: the host's namespaces, a shared process namespace, and
// init containers that would run before a non-native proxy.
func podLevelProblems(s *corev1.PodSpec, cfg Config) []string {
	var problems []string
	for _, p := range []struct {
		set        bool
		field, msg string
	}{
		{s.HostNetwork, "spec.hostNetwork", "on the host's network the application is reachable without it"},
		{s.HostPID, "spec.hostPID", "the host's process namespace exposes the proxy's memory and keys"},
		{s.HostIPC, "spec.hostIPC", "the host's IPC namespace is shared with other pods"},
		{s.ShareProcessNamespace != nil && *s.ShareProcessNamespace, "spec.shareProcessNamespace", "a shared process namespace lets every container read the proxy's memory and keys"},
	} {
		if p.set {
			problems = append(problems, fmt.Sprintf("%s: %s: %s", p.field, why, p.msg))
		}
	}
	if !cfg.NativeSidecar && len(s.InitContainers) > 0 {
		problems = append(problems, "spec.initContainers: init containers run before the audit proxy starts (it is not a native sidecar in this installation) and could serve its port unaudited")
	}
	return problems
}

// workloadContainers are every container of the pod but those named like
// the proxy (VerifyProxy's to judge), with their path and the capabilities
// they may add.
func workloadContainers(s *corev1.PodSpec) []containerView {
	var out []containerView
	for i := range s.InitContainers {
		if c := &s.InitContainers[i]; c.Name != SidecarName {
			out = append(out, viewOf(fmt.Sprintf("spec.initContainers[%d]", i), c))
		}
	}
	for i := range s.Containers {
		if c := &s.Containers[i]; c.Name != SidecarName {
			out = append(out, viewOf(fmt.Sprintf("spec.containers[%d]", i), c))
		}
	}
	for i := range s.EphemeralContainers {
		if e := s.EphemeralContainers[i].EphemeralContainerCommon; e.Name != SidecarName {
			out = append(out, containerView{fmt.Sprintf("spec.ephemeralContainers[%d]", i), allowedEphemeralCapabilities,
				e.Ports, e.Env, e.EnvFrom, e.VolumeMounts, e.VolumeDevices, e.SecurityContext})
		}
	}
	return out
}

// reserved is what belongs to the proxy alone.
type reserved struct {
	proxyPort        int32
	secrets, volumes map[string]bool
}

// containerProblems: the proxy's ports, host ports, privileges, and the
// proxy's volumes or Secrets.
func (r reserved) containerProblems(c containerView) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for j, p := range c.Ports {
		if p.ContainerPort == r.proxyPort || p.ContainerPort == HealthPort {
			bad("%s.ports[%d]: port %d is the audit proxy's; no other container may declare it", c.path, j, p.ContainerPort)
		}
		if p.HostPort != 0 {
			bad("%s.ports[%d].hostPort: %s: a host port is reached from outside the store's network isolation", c.path, j, why)
		}
	}
	problems = append(problems, privilegeProblems(c)...)
	for j, m := range c.VolumeMounts {
		if r.volumes[m.Name] {
			bad("%s.volumeMounts[%d]: volume %s is the audit proxy's; no other container may mount it", c.path, j, m.Name)
		}
	}
	for j, d := range c.VolumeDevices {
		if r.volumes[d.Name] {
			bad("%s.volumeDevices[%d]: volume %s is the audit proxy's", c.path, j, d.Name)
		}
	}
	return append(problems, r.envProblems(c)...)
}

// envProblems: the proxy's Secrets read into the environment.
func (r reserved) envProblems(c containerView) []string {
	var problems []string
	for j, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && r.secrets[e.ValueFrom.SecretKeyRef.Name] {
			problems = append(problems, fmt.Sprintf("%s.env[%d]: Secret %s holds the audit proxy's keys; only the proxy may read it", c.path, j, e.ValueFrom.SecretKeyRef.Name))
		}
	}
	for j, e := range c.EnvFrom {
		if e.SecretRef != nil && r.secrets[e.SecretRef.Name] {
			problems = append(problems, fmt.Sprintf("%s.envFrom[%d]: Secret %s holds the audit proxy's keys; only the proxy may read it", c.path, j, e.SecretRef.Name))
		}
	}
	return problems
}

// privilegeProblems: a privileged container, or capabilities beyond those
// the container may add.
func privilegeProblems(c containerView) []string {
	sc := c.SecurityContext
	if sc == nil {
		return nil
	}
	var problems []string
	if sc.Privileged != nil && *sc.Privileged {
		problems = append(problems, fmt.Sprintf("%s.securityContext.privileged: %s: a privileged container controls the pod's network and the proxy", c.path, why))
	}
	if sc.Capabilities == nil {
		return problems
	}
	for _, capability := range sc.Capabilities.Add {
		if !c.caps[corev1.Capability(strings.TrimPrefix(strings.ToUpper(string(capability)), "CAP_"))] {
			problems = append(problems, fmt.Sprintf("%s.securityContext.capabilities.add: %s may not be added (%s; the restricted Pod Security Standard allows only NET_BIND_SERVICE)", c.path, capability, why))
		}
	}
	return problems
}

// volumeProblems: the proxy's volume names used for other volumes, host
// paths, the proxy's Secrets mounted under another name, and tokens of the
// logbook's audience.
func (r reserved) volumeProblems(volumes, injected []corev1.Volume) []string {
	own := map[string]corev1.VolumeSource{}
	for _, v := range injected {
		own[v.Name] = v.VolumeSource
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for i, v := range volumes {
		path := fmt.Sprintf("spec.volumes[%d]", i)
		if src, ok := own[v.Name]; (ok && !equality.Semantic.DeepEqual(src, v.VolumeSource)) || (!ok && r.volumes[v.Name]) {
			bad("%s: the name %s is reserved for the audit proxy's volume", path, v.Name)
		}
		if _, ok := own[v.Name]; ok || r.volumes[v.Name] {
			continue
		}
		if v.HostPath != nil {
			bad("%s.hostPath: %s: a host path reaches the proxy's keys and log on the node", path, why)
		}
		if v.Secret != nil && r.secrets[v.Secret.SecretName] {
			bad("%s.secret: Secret %s holds the audit proxy's keys; only the proxy may mount it", path, v.Secret.SecretName)
		}
		problems = append(problems, r.projectedProblems(path, v)...)
	}
	return problems
}

// projectedProblems: the proxy's Secrets and tokens of the logbook's
// audience in a projected volume other than the proxy's.
func (r reserved) projectedProblems(path string, v corev1.Volume) []string {
	var problems []string
	for j, src := range projectedSources(v) {
		if src.Secret != nil && r.secrets[src.Secret.Name] {
			problems = append(problems, fmt.Sprintf("%s.projected.sources[%d].secret: Secret %s holds the audit proxy's keys; only the proxy may mount it", path, j, src.Secret.Name))
		}
		if t := src.ServiceAccountToken; t != nil && t.Audience == v1alpha1.LogbookTokenAudience {
			problems = append(problems, fmt.Sprintf("%s.projected.sources[%d].serviceAccountToken: the audience %s is the audit proxy's, whose token the logbook accepts chains with; only the proxy may have one", path, j, t.Audience))
		}
	}
	return problems
}

func projectedSources(v corev1.Volume) []corev1.VolumeProjection {
	if v.Projected == nil {
		return nil
	}
	return v.Projected.Sources
}

// containerView is what CheckPod looks at in a container or an ephemeral
// container: where it is and which capabilities it may add.
type containerView struct {
	path            string
	caps            map[corev1.Capability]bool
	Ports           []corev1.ContainerPort
	Env             []corev1.EnvVar
	EnvFrom         []corev1.EnvFromSource
	VolumeMounts    []corev1.VolumeMount
	VolumeDevices   []corev1.VolumeDevice
	SecurityContext *corev1.SecurityContext
}

func viewOf(path string, c *corev1.Container) containerView {
	return containerView{path, allowedCapabilities, c.Ports, c.Env, c.EnvFrom, c.VolumeMounts, c.VolumeDevices, c.SecurityContext}
}

// HasProxyName reports whether any container of the pod is named like the
// audit proxy; such a pod is judged by VerifyProxy, never trusted by name.
func HasProxyName(pod *corev1.Pod) bool {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == SidecarName {
				return true
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == SidecarName {
			return true
		}
	}
	return false
}
