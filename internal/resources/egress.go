package resources

import (
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// The egress gateway's ports: the application's requests on
// EgressGatewayPort (plain HTTP inside the namespace), the probes on
// EgressHealthPort.
const (
	EgressGatewayPort = 8080
	EgressHealthPort  = 8081
	// EgressComponent is the component label of the gateway's objects and
	// pods.
	EgressComponent = "egress-gateway"
)

// Where the gateway's container finds its files.
const (
	egressPolicyDir    = "/etc/dossierguard/egress"
	egressTLSDir       = "/etc/dossierguard/partners"
	egressSigningDir   = "/etc/dossierguard/signing"
	egressPseudonymDir = "/etc/dossierguard/pseudonym"
	egressLogDir       = "/var/log/dossierguard"
	egressLogbookDir   = "/var/run/secrets/dossierguard/logbook"
	egressLogbookToken = 3600
)

// EgressGatewayName is the gateway's Deployment, Service, ServiceAccount,
// Role, RoleBinding and NetworkPolicy of a store.
func EgressGatewayName(store *v1alpha1.DossierStore) string { return EgressGatewayNameOf(store.Name) }

// EgressGatewayNameOf is EgressGatewayName by the store's name.
func EgressGatewayNameOf(storeName string) string { return storeName + "-egress" }

// EgressPolicyName is the ConfigMap with the store's egress document.
func EgressPolicyName(store *v1alpha1.DossierStore) string { return store.Name + "-egress-policy" }

// EgressAccessPolicyName is the NetworkPolicy that lets the store's
// workload reach its gateway.
func EgressAccessPolicyName(store *v1alpha1.DossierStore) string { return store.Name + "-to-egress" }

// EgressTokenReviewName is the cluster-wide binding that lets a store's
// gateway review its callers' tokens; unique per namespace and store.
func EgressTokenReviewName(store *v1alpha1.DossierStore) string {
	return "dossierguard-egress-" + store.Namespace + "-" + store.Name
}

// EgressRouteURL is the base URL through which the application sends to
// the agreement's partner: the gateway's Service, the agreement's name as
// the first path segment.
func EgressRouteURL(store *v1alpha1.DossierStore, a *v1alpha1.SharingAgreement) string {
	return fmt.Sprintf("http://%s.%s.svc/%s/", EgressGatewayName(store), store.Namespace, a.Name)
}

// Outbound says whether the agreement sends through the gateway: it has a
// partner endpoint and outbound routes and is not being deleted. Whether
// it is in force is decided by the gateway per request.
func Outbound(a *v1alpha1.SharingAgreement) bool {
	return a.DeletionTimestamp.IsZero() && a.Spec.Partner.Endpoint != "" && len(a.Spec.OutboundRoutes) > 0
}

// EgressPodLabels are the labels of the gateway's pods, and its selector.
// They do not carry v1alpha1.LabelStore: that label marks the workload's
// pods, which the webhook admits only with the audit proxy.
func EgressPodLabels(store *v1alpha1.DossierStore) map[string]string {
	return map[string]string{
		LabelManagedBy:              ManagedByValue,
		LabelPartOf:                 ManagedByValue,
		LabelComponent:              EgressComponent,
		v1alpha1.LabelEgressGateway: store.Name,
	}
}

// EgressOptions are how the operator is installed, as far as the gateway
// is concerned: the same image, logbook and log volume bound as the audit
// proxies get.
type EgressOptions struct {
	// Replicas is how many gateway pods run (DefaultEgressReplicas when 0).
	// Each has its own audit chain, named after its pod.
	Replicas     int32
	Image        string
	LogbookURL   string
	LogSizeLimit resource.Quantity
	// LogMaxBytes is the gateway's --audit-log-max-bytes; 0 for no bound.
	LogMaxBytes int64
}

// DefaultEgressReplicas is how many pods a store's gateway runs when the
// installation does not say (--egress-gateway-replicas): two, so that a
// drain or a rollout never leaves the application without its way out.
const DefaultEgressReplicas = 2

// EgressReplicas is the number of gateway pods opts asks for.
func (o EgressOptions) EgressReplicas() int32 {
	if o.Replicas < 1 {
		return DefaultEgressReplicas
	}
	return o.Replicas
}

// EgressConfigMap holds the store's canonical egress document, with its
// hash as an annotation.
func EgressConfigMap(store *v1alpha1.DossierStore, document []byte, hash string) *corev1ac.ConfigMapApplyConfiguration {
	return corev1ac.ConfigMap(EgressPolicyName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithAnnotations(map[string]string{v1alpha1.AnnotationPolicyHash: hash}).
		WithOwnerReferences(StoreOwner(store)).
		WithData(map[string]string{accesspolicy.EgressConfigMapKey: string(document)})
}

// EgressServiceAccount is the gateway's own identity; its API token is
// mounted (it reviews tokens and reads pods and requests).
func EgressServiceAccount(store *v1alpha1.DossierStore) *corev1ac.ServiceAccountApplyConfiguration {
	return corev1ac.ServiceAccount(EgressGatewayName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store))
}

// EgressRole is what the gateway reads in its namespace: the pod a
// caller's token is bound to, the store, and the DataSubjectRequests it
// enforces.
func EgressRole(store *v1alpha1.DossierStore) *rbacv1ac.RoleApplyConfiguration {
	return rbacv1ac.Role(EgressGatewayName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store)).
		WithRules(
			rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("pods").WithVerbs("get"),
			rbacv1ac.PolicyRule().WithAPIGroups(v1alpha1.GroupVersion.Group).WithResources("dossierstores").
				WithResourceNames(store.Name).WithVerbs("get"),
			rbacv1ac.PolicyRule().WithAPIGroups(v1alpha1.GroupVersion.Group).WithResources("datasubjectrequests").
				WithVerbs("get", "list", "watch"))
}

// EgressRoleBinding grants EgressRole to the gateway's ServiceAccount.
func EgressRoleBinding(store *v1alpha1.DossierStore) *rbacv1ac.RoleBindingApplyConfiguration {
	return rbacv1ac.RoleBinding(EgressGatewayName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(EgressGatewayName(store))).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(EgressGatewayName(store)).WithNamespace(store.Namespace))
}

// EgressTokenReviewBinding binds the gateway's ServiceAccount to the
// installation's ClusterRole that may only create TokenReviews. It is
// cluster-scoped, so it cannot be owned by the store: the store's
// finalizer removes it.
func EgressTokenReviewBinding(store *v1alpha1.DossierStore, clusterRole string) *rbacv1ac.ClusterRoleBindingApplyConfiguration {
	return rbacv1ac.ClusterRoleBinding(EgressTokenReviewName(store)).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithLabels(map[string]string{v1alpha1.LabelStoreNamespace: store.Namespace}).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(clusterRole)).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(EgressGatewayName(store)).WithNamespace(store.Namespace))
}

// EgressService is the name the application sends to,
// <store>-egress.<namespace>.svc, port 80 to the gateway's port.
func EgressService(store *v1alpha1.DossierStore) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(EgressGatewayName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(corev1ac.ServiceSpec().
			WithSelector(EgressPodLabels(store)).
			WithPorts(corev1ac.ServicePort().WithName("http").WithProtocol(corev1.ProtocolTCP).
				WithPort(80).WithTargetPort(intstr.FromString("http"))))
}

// EgressDeployment runs `dossierguard egress-gateway` for the store under
// the restricted Pod Security Standard, with the store's policy, keys and
// audit log as the audit proxy gets them, and the TLS Secrets of the
// outbound agreements under --tls-dir/<agreement>/. A Secret that is
// missing is optional here, so that the one agreement's requests are
// refused (503) rather than the whole gateway kept from starting.
func EgressDeployment(store *v1alpha1.DossierStore, agreements []v1alpha1.SharingAgreement, opts EgressOptions) *appsv1ac.DeploymentApplyConfiguration {
	args := []string{
		"egress-gateway",
		"--store=" + store.Namespace + "/" + store.Name,
		"--listen=:" + strconv.Itoa(EgressGatewayPort),
		"--health-listen=:" + strconv.Itoa(EgressHealthPort),
		"--policy=" + egressPolicyDir + "/" + accesspolicy.EgressConfigMapKey,
		"--tls-dir=" + egressTLSDir,
		"--audit-log=" + egressLogDir + "/egress-audit.jsonl",
		"--signing-key-dir=" + egressSigningDir,
		"--pseudonym-key=" + egressPseudonymDir + "/" + PseudonymKey,
	}
	if opts.LogMaxBytes > 0 {
		args = append(args, "--audit-log-max-bytes="+strconv.FormatInt(opts.LogMaxBytes, 10))
	}
	if a := store.Spec.Audit; a != nil && a.ConsentURL != "" {
		args = append(args, "--consent-url="+a.ConsentURL, "--consent-cache-ttl="+a.ConsentCacheBound().String())
	}
	mounts := []*corev1ac.VolumeMountApplyConfiguration{
		corev1ac.VolumeMount().WithName("policy").WithMountPath(egressPolicyDir).WithReadOnly(true),
		corev1ac.VolumeMount().WithName("partners").WithMountPath(egressTLSDir).WithReadOnly(true),
		corev1ac.VolumeMount().WithName("signing").WithMountPath(egressSigningDir).WithReadOnly(true),
		corev1ac.VolumeMount().WithName("pseudonym").WithMountPath(egressPseudonymDir).WithReadOnly(true),
		corev1ac.VolumeMount().WithName("audit-log").WithMountPath(egressLogDir),
	}
	logDir := corev1ac.EmptyDirVolumeSource()
	if !opts.LogSizeLimit.IsZero() {
		logDir.WithSizeLimit(opts.LogSizeLimit)
	}
	volumes := []*corev1ac.VolumeApplyConfiguration{
		corev1ac.Volume().WithName("policy").WithConfigMap(corev1ac.ConfigMapVolumeSource().
			WithName(EgressPolicyName(store)).WithDefaultMode(0o444)),
		corev1ac.Volume().WithName("partners").WithProjected(partnerTLSProjection(agreements)),
		corev1ac.Volume().WithName("signing").WithSecret(corev1ac.SecretVolumeSource().
			WithSecretName(AuditSigningName(store)).WithDefaultMode(0o444)),
		corev1ac.Volume().WithName("pseudonym").WithSecret(corev1ac.SecretVolumeSource().
			WithSecretName(PseudonymName(store)).WithDefaultMode(0o444)),
		corev1ac.Volume().WithName("audit-log").WithEmptyDir(logDir),
	}
	var env []*corev1ac.EnvVarApplyConfiguration
	env = append(env, corev1ac.EnvVar().WithName("POD_NAME").WithValueFrom(corev1ac.EnvVarSource().
		WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath("metadata.name"))))
	if opts.LogbookURL != "" {
		args = append(args, "--logbook-url="+opts.LogbookURL, "--logbook-token-file="+egressLogbookDir+"/token")
		mounts = append(mounts, corev1ac.VolumeMount().WithName("logbook-token").WithMountPath(egressLogbookDir).WithReadOnly(true))
		volumes = append(volumes, corev1ac.Volume().WithName("logbook-token").WithProjected(corev1ac.ProjectedVolumeSource().
			WithDefaultMode(0o444).
			WithSources(corev1ac.VolumeProjection().WithServiceAccountToken(corev1ac.ServiceAccountTokenProjection().
				WithAudience(v1alpha1.LogbookTokenAudience).WithExpirationSeconds(egressLogbookToken).WithPath("token")))))
	}
	probe := func(path string) *corev1ac.ProbeApplyConfiguration {
		return corev1ac.Probe().WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("health"))).
			WithPeriodSeconds(5)
	}
	container := corev1ac.Container().
		WithName(EgressComponent).
		WithImage(opts.Image).
		WithImagePullPolicy(corev1.PullIfNotPresent).
		WithArgs(args...).
		WithEnv(env...).
		WithPorts(
			corev1ac.ContainerPort().WithName("http").WithContainerPort(EgressGatewayPort).WithProtocol(corev1.ProtocolTCP),
			corev1ac.ContainerPort().WithName("health").WithContainerPort(EgressHealthPort).WithProtocol(corev1.ProtocolTCP)).
		WithReadinessProbe(probe("/readyz")).
		WithLivenessProbe(probe("/healthz")).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}).
			WithLimits(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")})).
		WithSecurityContext(corev1ac.SecurityContext().
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithRunAsNonRoot(true).
			WithRunAsUser(65532).WithRunAsGroup(65532).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithVolumeMounts(mounts...)
	return appsv1ac.Deployment(EgressGatewayName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(opts.EgressReplicas()).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(EgressPodLabels(store))).
			WithStrategy(appsv1ac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(EgressPodLabels(store)).
				WithSpec(corev1ac.PodSpec().
					WithServiceAccountName(EgressGatewayName(store)).
					WithAutomountServiceAccountToken(true).
					WithEnableServiceLinks(false).
					WithSecurityContext(corev1ac.PodSecurityContext().
						WithRunAsNonRoot(true).
						WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
					WithTopologySpreadConstraints(corev1ac.TopologySpreadConstraint().
						WithMaxSkew(1).WithTopologyKey(corev1.LabelHostname).
						WithWhenUnsatisfiable(corev1.ScheduleAnyway).
						WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(EgressPodLabels(store)))).
					WithContainers(container).
					WithVolumes(volumes...))))
}

// EgressPodDisruptionBudget lets a drain or an eviction take at most one of
// the gateway's pods at a time, so that the others keep serving; nil for a
// single replica, which a budget would only keep from being drained. A pod
// that is not ready may always be evicted (it serves nothing), so that a
// failing gateway never blocks a node's maintenance.
func EgressPodDisruptionBudget(store *v1alpha1.DossierStore, opts EgressOptions) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	if opts.EgressReplicas() < 2 {
		return nil
	}
	return policyv1ac.PodDisruptionBudget(EgressGatewayName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(intstr.FromInt32(1)).
			WithUnhealthyPodEvictionPolicy(policyv1.AlwaysAllow).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(EgressPodLabels(store))))
}

// partnerTLSProjection puts each outbound agreement's CA bundle (as
// ca.crt) and client certificate (tls.crt, tls.key) under <agreement>/.
func partnerTLSProjection(agreements []v1alpha1.SharingAgreement) *corev1ac.ProjectedVolumeSourceApplyConfiguration {
	sorted := append([]v1alpha1.SharingAgreement(nil), agreements...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var sources []*corev1ac.VolumeProjectionApplyConfiguration
	for _, a := range sorted {
		t := a.Spec.Partner.TLS
		if t == nil {
			continue
		}
		key := t.CABundle.Key
		if key == "" {
			key = "ca.crt"
		}
		sources = append(sources, corev1ac.VolumeProjection().WithSecret(corev1ac.SecretProjection().
			WithName(t.CABundle.Name).WithOptional(true).
			WithItems(corev1ac.KeyToPath().WithKey(key).WithPath(a.Name+"/ca.crt"))))
		if t.ClientCertificateSecretName != "" {
			sources = append(sources, corev1ac.VolumeProjection().WithSecret(corev1ac.SecretProjection().
				WithName(t.ClientCertificateSecretName).WithOptional(true).
				WithItems(
					corev1ac.KeyToPath().WithKey(corev1.TLSCertKey).WithPath(a.Name+"/"+corev1.TLSCertKey),
					corev1ac.KeyToPath().WithKey(corev1.TLSPrivateKeyKey).WithPath(a.Name+"/"+corev1.TLSPrivateKeyKey))))
		}
	}
	// The TLS files are world-readable inside a volume only the gateway
	// mounts (it runs as 65532 without an fsGroup), as the proxy's keys.
	return corev1ac.ProjectedVolumeSource().WithDefaultMode(0o444).WithSources(sources...)
}

// EgressGatewayPolicy is the NetworkPolicy around the gateway's pods:
// ingress only from the store's workload pods to the gateway's port, and to
// the probe and metrics port EgressHealthPort from the namespaces that may
// scrape the audit proxies' metrics (extras.ProxyMetricsNamespaces; none
// when empty); egress only to DNS, the logbook extras names, the API
// server's endpoints (for TokenReviews and the store's requests), the
// store's declared dependencies when a consent source is configured (it is
// one of them), and the partners of the outbound agreements in force, by
// the same peers and ports as their agreement policies. An agreement whose partner names no
// peer adds nothing: an egress rule without peers would admit everyone.
func EgressGatewayPolicy(store *v1alpha1.DossierStore, inForce []v1alpha1.SharingAgreement, extras IsolationExtras, apiServer []APIEndpoint) *networkingv1ac.NetworkPolicyApplyConfiguration {
	egress := []*networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration{
		networkingv1ac.NetworkPolicyEgressRule().WithPorts(
			port(corev1.ProtocolUDP, DNSPort), port(corev1.ProtocolTCP, DNSPort)),
	}
	if lb := extras.Logbook; lb != nil {
		egress = append(egress, networkingv1ac.NetworkPolicyEgressRule().
			WithTo(namespacePeer(lb.Namespace).WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(lb.PodLabels))).
			WithPorts(port(corev1.ProtocolTCP, lb.Port)))
	}
	for _, ep := range apiServer {
		egress = append(egress, apiServerRule(ep))
	}
	if a := store.Spec.Audit; a != nil && a.ConsentURL != "" {
		for _, dep := range store.Spec.Workload.Dependencies {
			egress = append(egress, dependencyRule(store, dep))
		}
	}
	sorted := append([]v1alpha1.SharingAgreement(nil), inForce...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, a := range sorted {
		peers := partnerPeers(a.Spec.Partner)
		if len(peers) == 0 {
			continue
		}
		rule := networkingv1ac.NetworkPolicyEgressRule().WithTo(peers...)
		if len(a.Spec.Partner.Ports) > 0 {
			rule.WithPorts(Ports(a.Spec.Partner.Ports)...)
		}
		egress = append(egress, rule)
	}
	ingress := []*networkingv1ac.NetworkPolicyIngressRuleApplyConfiguration{
		networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(networkingv1ac.NetworkPolicyPeer().WithPodSelector(LabelSelector(&store.Spec.Workload.Selector))).
			WithPorts(port(corev1.ProtocolTCP, EgressGatewayPort)),
	}
	if len(extras.ProxyMetricsNamespaces) > 0 {
		ingress = append(ingress, networkingv1ac.NetworkPolicyIngressRule().
			WithFrom(networkingv1ac.NetworkPolicyPeer().WithNamespaceSelector(
				metav1ac.LabelSelector().WithMatchLabels(extras.ProxyMetricsNamespaces))).
			WithPorts(port(corev1.ProtocolTCP, EgressHealthPort)))
	}
	return networkingv1ac.NetworkPolicy(EgressGatewayName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(EgressPodLabels(store))).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(ingress...).
			WithEgress(egress...))
}

// EgressAccessPolicy lets the store's workload pods reach the gateway's
// pods on the gateway's port; it adds to the isolation policy.
func EgressAccessPolicy(store *v1alpha1.DossierStore) *networkingv1ac.NetworkPolicyApplyConfiguration {
	return networkingv1ac.NetworkPolicy(EgressAccessPolicyName(store), store.Namespace).
		WithLabels(StoreLabels(store, EgressComponent)).
		WithOwnerReferences(StoreOwner(store)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(LabelSelector(&store.Spec.Workload.Selector)).
			WithPolicyTypes(networkingv1.PolicyTypeEgress).
			WithEgress(networkingv1ac.NetworkPolicyEgressRule().
				WithTo(networkingv1ac.NetworkPolicyPeer().WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(EgressPodLabels(store)))).
				WithPorts(port(corev1.ProtocolTCP, EgressGatewayPort))))
}
