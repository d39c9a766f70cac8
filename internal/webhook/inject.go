// Package webhook holds the mutating admission webhook that injects the
// audit proxy into the pods of a DossierStore's workload, and the serving
// certificates the operator manages for it.
package webhook

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// Names of what the injector adds to a pod.
const (
	SidecarName     = "audit-proxy"
	PolicyVolume    = "dossierguard-policy"
	SigningVolume   = "dossierguard-audit-signing"
	PseudonymVolume = "dossierguard-pseudonym"
	LogVolume       = "dossierguard-audit-log"
	TLSVolume       = "dossierguard-proxy-tls"
	PolicyDir       = "/etc/dossierguard/policy"
	SigningDir      = "/etc/dossierguard/signing"
	PseudonymDir    = "/etc/dossierguard/pseudonym"
	LogDir          = "/var/log/dossierguard"
	TLSDir          = "/etc/dossierguard/tls"
	HealthPort      = resources.ProxyHealthPort
	// LegacyKeysVolume is the name of the one key volume of proxies
	// injected before the keys were split; it stays reserved.
	LegacyKeysVolume = "dossierguard-audit-keys"
	// LogbookTokenVolume holds the proxy's projected ServiceAccount token
	// for the logbook (audience v1alpha1.LogbookTokenAudience), in
	// LogbookTokenDir/LogbookTokenFile.
	LogbookTokenVolume = "dossierguard-logbook-token"
	LogbookTokenDir    = "/var/run/secrets/dossierguard/logbook"
	LogbookTokenFile   = "token"
	// KubeVolume holds the proxy's service account token and the cluster's
	// CA, for its watch of the store's DataSubjectRequests; it is mounted
	// into the proxy alone, whether or not the pod automounts a token.
	KubeVolume = "dossierguard-proxy-kube"
	KubeDir    = "/var/run/dossierguard/kube"
	// KubeTokenSeconds is the lifetime of the projected token; the kubelet
	// renews it before it expires and the proxy reads it again.
	KubeTokenSeconds = 3607
)

// Config is how the operator is installed.
type Config struct {
	// Image of the audit proxy (the operator's image).
	Image string
	// NativeSidecar runs the proxy as an init container with restartPolicy
	// Always (Kubernetes 1.29 and later), so it starts before the app and
	// stops after it.
	NativeSidecar bool
	// BreakGlassGroups may reach a workload pod directly (exec, attach,
	// port-forward, debug) once one of them has given a justification on
	// the pod; empty disables break-glass.
	BreakGlassGroups []string
	// BreakGlassMaxWindow bounds how far ahead the break-glass window may
	// close; DefaultBreakGlassMaxWindow when zero.
	BreakGlassMaxWindow time.Duration
	// LogbookURL, when set, points the proxy at the logbook: its log opens
	// a chain naming the store and the pod, and every event must be
	// acknowledged by the logbook before the request goes on.
	LogbookURL string
	// LogSizeLimit is the sizeLimit of the proxy's log emptyDir; zero
	// means none. The proxy is told to stop at LogMaxBytes of it, so that
	// it refuses with 503 before the kubelet would evict the pod.
	LogSizeLimit resource.Quantity
}

// DefaultLogSizeLimit is the size limit of the proxy's log volume: about a
// million events of an ordinary pod's lifetime, with the logbook holding
// them for good.
var DefaultLogSizeLimit = resource.MustParse("1Gi")

// LogMaxBytes is the proxy's --audit-log-max-bytes for a log volume of
// limit: one sixteenth below it, room for the final checkpoint and for the
// kubelet, which measures the volume only now and then.
func LogMaxBytes(limit resource.Quantity) int64 {
	n := limit.Value()
	return n - n/16
}

// DefaultBreakGlassMaxWindow is the longest break-glass window.
const DefaultBreakGlassMaxWindow = time.Hour

// Inject adds the audit proxy to pod for store and labels the pod for the
// store. A pod that already has a container named audit-proxy is left alone
// and Inject reports false: VerifyProxy then decides whether it is the
// injected one.
func Inject(pod *corev1.Pod, store *v1alpha1.DossierStore, cfg Config) bool {
	if HasProxyName(pod) {
		return false
	}
	sidecar, volumes := ExpectedProxy(store, cfg)
	if cfg.NativeSidecar {
		pod.Spec.InitContainers = append([]corev1.Container{sidecar}, pod.Spec.InitContainers...)
	} else {
		pod.Spec.Containers = append(pod.Spec.Containers, sidecar)
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, volumes...)
	// The proxy's projected token needs a ServiceAccount; name the one the
	// API server would default to, as its ServiceAccount admission does.
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	// For people reading the pod; never proof of the proxy (VerifyProxy is).
	pod.Annotations[v1alpha1.AnnotationAuditProxy] = "injected"
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[v1alpha1.LabelStore] = store.Name
	return true
}

// ExpectedProxy is the audit-proxy container and the volumes the webhook
// injects for store, with every field the API server would default set, so
// that an admitted pod's proxy can be compared with it field by field.
func ExpectedProxy(store *v1alpha1.DossierStore, cfg Config) (corev1.Container, []corev1.Volume) {
	sidecar := sidecarContainer(store, cfg)
	if cfg.NativeSidecar {
		sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		// The kubelet starts the next containers only once the proxy
		// answers, so no other container can take its port first.
		sidecar.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/healthz", Port: intstr.FromInt32(HealthPort), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds: 1, FailureThreshold: 60, TimeoutSeconds: 1, SuccessThreshold: 1}
	}
	volumes := []corev1.Volume{
		{Name: PolicyVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: resources.AccessPolicyName(store)}, DefaultMode: ptr.To[int32](0o444)}}},
		// World-readable files in a volume mounted into the proxy alone: the
		// proxy runs as UID 65532 and the workload's pod need not set an
		// fsGroup (which would change the ownership of all its volumes).
		// CheckPod refuses any other container or volume that would read
		// them. The signing keys are re-read by the proxy when the kubelet
		// updates the volume (a rotation); the pseudonym key never changes.
		{Name: SigningVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: resources.AuditSigningName(store), DefaultMode: ptr.To[int32](0o444)}}},
		{Name: PseudonymVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: resources.PseudonymName(store), DefaultMode: ptr.To[int32](0o444)}}},
		{Name: LogVolume, VolumeSource: corev1.VolumeSource{EmptyDir: logVolume(cfg)}},
		{Name: KubeVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](KubeTokenSeconds)}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			},
			DefaultMode: ptr.To[int32](0o444)}}},
	}
	if cfg.LogbookURL != "" {
		volumes = append(volumes, logbookTokenVolume())
	}
	if ProxyTLS(store) {
		volumes = append(volumes, corev1.Volume{Name: TLSVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: resources.ProxyTLSName(store), DefaultMode: ptr.To[int32](0o444)}}})
	}
	return sidecar, volumes
}

// logbookTokenExpiry is how long the proxy's logbook token is valid; the
// kubelet renews it before (at 80%), in place.
const logbookTokenExpiry = 3600

// logbookTokenVolume is the projected ServiceAccount token the proxy
// presents to the logbook: of the logbook's audience only (useless against
// the Kubernetes API), bound to the pod, world-readable in a volume mounted
// into the proxy alone (as the keys; CheckPod refuses any other mount).
func logbookTokenVolume() corev1.Volume {
	return corev1.Volume{Name: LogbookTokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o444),
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: v1alpha1.LogbookTokenAudience, ExpirationSeconds: ptr.To[int64](logbookTokenExpiry), Path: LogbookTokenFile}}},
	}}}
}

// logVolume is the proxy's log emptyDir, with its size limit if any.
func logVolume(cfg Config) *corev1.EmptyDirVolumeSource {
	if cfg.LogSizeLimit.IsZero() {
		return &corev1.EmptyDirVolumeSource{}
	}
	limit := cfg.LogSizeLimit.DeepCopy()
	return &corev1.EmptyDirVolumeSource{SizeLimit: &limit}
}

// HasSidecar says whether the pod runs exactly the audit proxy the webhook
// injects for store.
func HasSidecar(pod *corev1.Pod, store *v1alpha1.DossierStore, cfg Config) bool {
	return len(VerifyProxy(pod, store, cfg)) == 0
}

func sidecarContainer(store *v1alpha1.DossierStore, cfg Config) corev1.Container {
	w := store.Spec.Workload
	proxyPort := resources.ProxyPort(store)
	args := []string{
		"audit-proxy",
		"--listen=:" + strconv.Itoa(int(proxyPort)),
		fmt.Sprintf("--upstream=http://127.0.0.1:%d", w.AppPort),
		"--health-listen=:" + strconv.Itoa(HealthPort),
		"--policy=" + PolicyDir + "/" + accesspolicy.ConfigMapKey,
		"--audit-log=" + LogDir + "/audit.jsonl",
		"--signing-key-dir=" + SigningDir,
		"--pseudonym-key=" + PseudonymDir + "/" + resources.PseudonymKey,
		"--subject-requests=" + store.Namespace + "/" + store.Name,
		"--kube-token-dir=" + KubeDir,
	}
	if !cfg.LogSizeLimit.IsZero() {
		args = append(args, "--audit-log-max-bytes="+strconv.FormatInt(LogMaxBytes(cfg.LogSizeLimit), 10))
	}
	mounts := []corev1.VolumeMount{
		{Name: PolicyVolume, MountPath: PolicyDir, ReadOnly: true},
		{Name: SigningVolume, MountPath: SigningDir, ReadOnly: true},
		{Name: PseudonymVolume, MountPath: PseudonymDir, ReadOnly: true},
		{Name: LogVolume, MountPath: LogDir},
		{Name: KubeVolume, MountPath: KubeDir, ReadOnly: true},
	}
	if ProxyTLS(store) {
		args = append(args, "--tls-cert-file="+TLSDir+"/"+corev1.TLSCertKey, "--tls-key-file="+TLSDir+"/"+corev1.TLSPrivateKeyKey)
		mounts = append(mounts, corev1.VolumeMount{Name: TLSVolume, MountPath: TLSDir, ReadOnly: true})
	} else {
		args = append(args, "--plain-http")
	}
	args = append(args, identityArgs(store.Spec.Audit)...)
	var env []corev1.EnvVar
	if cfg.LogbookURL != "" {
		args = append(args, "--store="+store.Namespace+"/"+store.Name, "--logbook-url="+cfg.LogbookURL,
			"--logbook-token-file="+LogbookTokenDir+"/"+LogbookTokenFile)
		mounts = append(mounts, corev1.VolumeMount{Name: LogbookTokenVolume, MountPath: LogbookTokenDir, ReadOnly: true})
		// APIVersion as the API server defaults it, so the pod it stores
		// still equals what was injected (VerifyProxy compares the two).
		env = append(env, corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}})
	}
	return corev1.Container{
		Env:             env,
		Name:            SidecarName,
		Image:           cfg.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            args,
		Ports: []corev1.ContainerPort{
			{Name: "audit-proxy", ContainerPort: proxyPort, Protocol: corev1.ProtocolTCP},
			{Name: "proxy-health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/readyz", Port: intstr.FromInt32(HealthPort), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds: 5, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To[int64](65532),
			RunAsGroup:               ptr.To[int64](65532),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		VolumeMounts: mounts,
	}
}

// ProxyTLS says whether the store's proxy serves TLS: unless the store
// opts out with spec.workload.proxyTLS.mode Disabled.
func ProxyTLS(store *v1alpha1.DossierStore) bool {
	t := store.Spec.Workload.ProxyTLS
	return t == nil || t.Mode != v1alpha1.ProxyTLSDisabled
}

func identityArgs(a *v1alpha1.AuditSpec) []string {
	if a == nil {
		return nil
	}
	var args []string
	if a.AssignmentURL != "" {
		args = append(args, "--assignment-url="+a.AssignmentURL)
	}
	if a.ConsentURL != "" {
		args = append(args, "--consent-url="+a.ConsentURL, "--consent-cache-ttl="+a.ConsentCacheBound().String())
	}
	if a.Identity == nil {
		return args
	}
	if o := a.Identity.OIDC; o != nil {
		args = append(args, "--oidc-issuer="+o.IssuerURL, "--oidc-audience="+o.Audience)
		if o.UsernameClaim != "" {
			args = append(args, "--oidc-username-claim="+o.UsernameClaim)
		}
		if o.GroupsClaim != "" {
			args = append(args, "--oidc-groups-claim="+o.GroupsClaim)
		}
	}
	if p := a.Identity.TrustedProxy; p != nil {
		args = append(args, "--trusted-proxy-cidrs="+strings.Join(p.CIDRs, ","))
		if p.UserHeader != "" {
			args = append(args, "--user-header="+p.UserHeader)
		}
		if p.GroupsHeader != "" {
			args = append(args, "--groups-header="+p.GroupsHeader)
		}
	}
	return args
}
