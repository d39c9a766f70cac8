//go:build e2e

package e2e

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The webhook on real pods: it fails closed for a store that does not
// exist, injects exactly one audit proxy into a workload pod, which then
// becomes Ready, and refuses a pod that brings its own "audit-proxy".

var _ = Describe("Webhook", Label("webhook"), func() {
	It("refuses a pod labelled for a DossierStore that does not exist", func(ctx SpecContext) {
		pod := plainPod("e2e-no-store", map[string]string{v1alpha1.LabelStore: "does-not-exist"}, "app")
		err := k8s.Create(ctx, pod)
		if err == nil {
			DeferCleanup(deleteAndWait, pod)
		}
		Expect(err).To(HaveOccurred(), "a pod labelled for a missing DossierStore was admitted")
		Expect(err.Error()).To(ContainSubstring("does not exist"), "unexpected refusal for a missing store")
		GinkgoWriter.Printf("pod for a missing store refused: %v\n", err)
	})

	It("injects exactly one audit proxy into a workload pod, as a native sidecar, and the pod becomes Ready", func(ctx SpecContext) {
		pod := appPod(ctx)
		init, main := containerNames(pod)
		n := 0
		for _, c := range append(append([]string{}, init...), main...) {
			if c == auditProxy {
				n++
			}
		}
		Expect(n).To(Equal(1), "pod %s has %d audit-proxy containers, want 1 (init containers %v, containers %v)", appPodName, n, init, main)
		Expect(pod.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationAuditProxy, "injected"))
		where := "container"
		for _, c := range pod.Spec.InitContainers {
			if c.Name == auditProxy && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				where = "native sidecar (init container, restartPolicy Always)"
			}
		}
		GinkgoWriter.Printf("audit-proxy injected once, as a %s\n", where)
		shown := pod.DeepCopy()
		shown.ManagedFields = nil
		b, err := yaml.Marshal(shown)
		Expect(err).NotTo(HaveOccurred())
		writeArtefact("wijkteam-app.yaml", b)
		var ready []string
		for _, s := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
			ready = append(ready, s.Name+"="+map[bool]string{true: "true", false: "false"}[s.Ready])
		}
		GinkgoWriter.Printf("pod Ready: %s\n", strings.Join(ready, " "))
		_ = auditLog(ctx, appPodName, "audit.jsonl")
	})

	It("refuses a workload pod that brings its own container named audit-proxy", func(ctx SpecContext) {
		pod := plainPod("e2e-decoy", map[string]string{"app.kubernetes.io/name": "wijkteam-dossier"}, "app", auditProxy)
		pod.Spec.ServiceAccountName = workloadSA
		err := k8s.Create(ctx, pod)
		if err == nil {
			DeferCleanup(deleteAndWait, pod)
		}
		Expect(err).To(HaveOccurred(), "a workload pod with a decoy audit-proxy container was admitted")
		Expect(err.Error()).To(ContainSubstring(auditProxy), "unexpected refusal of the decoy pod")
		GinkgoWriter.Printf("decoy audit-proxy container refused: %v\n", err)
	})
})

// plainPod is a pod of the store's namespace running the app image in each
// named container.
func plainPod(name string, labels map[string]string, containers ...string) *corev1.Pod {
	l := map[string]string{"app.kubernetes.io/part-of": partOf}
	for k, v := range labels {
		l[k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: storeNamespace, Labels: l},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
		},
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: cfg.appImage, ImagePullPolicy: corev1.PullNever})
	}
	return pod
}
