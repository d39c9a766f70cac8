//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// partOf marks everything the suite creates, for its clean-up and for
// reading diagnostics.
const partOf = "dossierguard-e2e"

// The probe's ports: it answers HTTP on probePort everywhere, and the
// target in the unrelated namespace also on dnsPort (TCP), the port every
// store's isolation policy lets the workload reach for name resolution.
const (
	probePort int32 = 8080
	dnsPort   int32 = resources.DNSPort
	// The store workload's ports: the audit proxy's and the application's
	// (config/samples: appPort 8080, the default proxy port 8443).
	proxyPort int32 = 8443
	appPort   int32 = 8080
)

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}}}
}

// probePod is a netprobe server pod under the restricted Pod Security
// Standard. lowPorts lets it bind ports below 1024 (the DNS port) as a
// non-root user, with the namespaced sysctl Kubernetes counts as safe.
func probePod(namespace, name string, labels map[string]string, listen string, lowPorts bool) *corev1.Pod {
	l := map[string]string{"app.kubernetes.io/part-of": partOf}
	for k, v := range labels {
		l[k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: l},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				RunAsGroup:     ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "probe",
				Image:           cfg.probeImage,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            []string{"serve", "-listen", listen},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(probePort)}},
					PeriodSeconds: 2,
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if lowPorts {
		pod.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}
	}
	return pod
}

// workloadPod is a pod of the sample store's workload (its selector, its
// ServiceAccount and the store label, like test/e2e/wijkteam-app.yaml), with
// netprobe as the application on the store's appPort. The webhook injects the
// audit proxy; the store's isolation policy selects it.
func workloadPod(name string, logbook *corev1.Service) *corev1.Pod {
	pod := probePod(storeNamespace, name, map[string]string{
		"app.kubernetes.io/name": "wijkteam-dossier",
		v1alpha1.LabelStore:      storeName,
	}, fmt.Sprintf(":%d", appPort), false)
	pod.Spec.ServiceAccountName = "wijkteam-dossier"
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5) // the proxy signs its chain's end on SIGTERM
	pod.Spec.Containers[0].Name = "app"
	if logbook != nil {
		// The proxy ships its chain to the logbook's Service by name; the
		// local cluster may run no DNS server (hack/e2e.sh does the same).
		pod.Spec.HostAliases = []corev1.HostAlias{{IP: logbook.Spec.ClusterIP,
			Hostnames: []string{fmt.Sprintf("%s.%s.svc", logbook.Name, logbook.Namespace)}}}
	}
	return pod
}

// createAll creates objects that must not exist yet and removes them when
// the surrounding container ends, waiting for namespaces to go.
func createAll(ctx context.Context, objs ...client.Object) {
	GinkgoHelper()
	for _, o := range objs {
		Expect(k8s.Create(ctx, o)).To(Succeed(), "create %T %s", o, client.ObjectKeyFromObject(o))
		DeferCleanup(deleteAndWait, o)
	}
}

// deleteAndWait deletes an object and waits until it is gone.
func deleteAndWait(ctx SpecContext, o client.Object) {
	err := k8s.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if apierrors.IsNotFound(err) {
		return
	}
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(o), o))
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(BeTrue(), "%s is not gone", client.ObjectKeyFromObject(o))
}

// waitReady waits until the pod is Ready and returns it.
func waitReady(ctx context.Context, namespace, name string) *corev1.Pod {
	GinkgoHelper()
	pod := &corev1.Pod{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod)).To(Succeed())
		g.Expect(pod.Status.PodIP).NotTo(BeEmpty())
		g.Expect(pod.Status.Conditions).To(ContainElement(And(
			HaveField("Type", corev1.PodReady), HaveField("Status", corev1.ConditionTrue))), "pod %s/%s is not Ready", namespace, name)
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
	return pod
}

// openBreakGlass lets the responder exec into a store's pod: a member of
// the break-glass group sets the justification and the window.
func openBreakGlass(ctx context.Context, pod *corev1.Pod) {
	GinkgoHelper()
	patch := client.MergeFrom(pod.DeepCopy())
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[v1alpha1.AnnotationBreakGlassJustification] = "E2E network checks from inside the workload pod"
	pod.Annotations[v1alpha1.AnnotationBreakGlassUntil] = time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	Expect(responder.Patch(ctx, pod, patch)).To(Succeed(), "the break-glass responder could not open a window on %s", pod.Name)
}

// ingressAgreement admits a partner namespace to the store's audit proxy,
// until validUntil when set.
func ingressAgreement(name, partnerNamespace string, validUntil *time.Time) *v1alpha1.SharingAgreement {
	a := &v1alpha1.SharingAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: storeNamespace, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
		Spec: v1alpha1.SharingAgreementSpec{
			StoreRef: v1alpha1.StoreReference{Name: storeName},
			Partner: v1alpha1.Partner{
				Type:      v1alpha1.PartnerSchool,
				Name:      "E2E network partner " + name,
				Namespace: partnerNamespace,
				Subjects:  []v1alpha1.PartnerSubject{{Kind: v1alpha1.PartnerSubjectGroup, Name: name}},
			},
			Direction:  v1alpha1.DirectionIngress,
			LegalBasis: v1alpha1.BasisConsent,
			Consent:    &v1alpha1.Consent{Reference: "E2E-NET-" + name},
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryRequest},
			Purpose:    "End-to-end check of the network boundary",
		},
	}
	if validUntil != nil {
		a.Spec.ValidUntil = &metav1.Time{Time: *validUntil}
	}
	return a
}

// agreementPolicyExists says whether the agreement's NetworkPolicy is there.
func agreementPolicyExists(ctx context.Context, a *v1alpha1.SharingAgreement) (bool, error) {
	np := &networkingv1.NetworkPolicy{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: resources.AgreementPolicyName(a)}, np)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
