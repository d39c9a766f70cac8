//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The demo application's database on the wijkteam store's own claim, as the
// install (install_test.go) started it, and found by its name through the
// cluster's DNS.

const (
	attestedClass = "encrypted-ssd"
	storeClaim    = storeName + "-dossiers"
	// demoDBHost is the database's name in Secret wijkteam-db-credentials.
	demoDBHost = demoDBName + "." + storeNamespace + ".svc.cluster.local"
)

var _ = Describe("Demo database", Label("storage", "dns"), func() {
	BeforeEach(func() {
		if !cfg.demoApp {
			Skip("no demo database in this run (E2E_DEMO_APP=1: the local cluster without E2E_APP_IMAGE)")
		}
	})

	It("runs on the store's own claim, Bound on the attested class to a volume the provisioner made, with the database's files on it", func(ctx SpecContext) {
		rolledOut(ctx, storeNamespace, demoDBName)
		pvc := &corev1.PersistentVolumeClaim{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: storeClaim}, pvc)).To(Succeed())
		Expect(pvc.Status.Phase).To(Equal(corev1.ClaimBound), "claim %s", storeClaim)
		Expect(ptr.Deref(pvc.Spec.StorageClassName, "")).To(Equal(attestedClass), "claim %s's class", storeClaim)
		Expect(pvc.Spec.VolumeName).NotTo(BeEmpty())
		pv := &corev1.PersistentVolume{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv)).To(Succeed())
		Expect(pv.Spec.StorageClassName).To(Equal(attestedClass), "volume %s's class", pv.Name)
		Expect(pv.Annotations).To(HaveKeyWithValue("pv.kubernetes.io/provisioned-by", "rancher.io/local-path"))
		Expect(pv.Spec.HostPath).NotTo(BeNil(), "volume %s has no host path", pv.Name)
		// The local cluster's node is this machine.
		version, err := os.ReadFile(filepath.Join(pv.Spec.HostPath.Path, "pgdata", "PG_VERSION"))
		Expect(err).NotTo(HaveOccurred(), "the database's files are not on the store's volume")
		Expect(strings.TrimSpace(string(version))).NotTo(BeEmpty())
		store := &v1alpha1.DossierStore{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: storeName}, store)).To(Succeed())
		Expect(store.Status.Encryption).To(Equal("Attested"), "the store's encryption after its claim bound")
		GinkgoWriter.Printf("claim %s Bound on %s (Attested) to %s (%s); PostgreSQL %s runs on it\n",
			storeClaim, attestedClass, pv.Name, pv.Spec.HostPath.Path, strings.TrimSpace(string(version)))
		// This machine reaches it with the password (and only with it:
		// scram-sha-256, test/e2e/demodb).
		db, ok := demoDB(ctx)
		Expect(ok).To(BeTrue())
		var one int
		Expect(db.QueryRow(ctx, "SELECT 1").Scan(&one)).To(Succeed())
	})

	It("is found by its full and its short name through the cluster's DNS, and a name outside the cluster is not", func(ctx SpecContext) {
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: demoDBName}, svc)).To(Succeed())
		out, ok := resolveInPod(ctx, "e2e-dns-full", demoDBHost)
		Expect(ok).To(BeTrue(), "looking up %s in a pod: %s", demoDBHost, out)
		Expect(out).To(Equal(svc.Spec.ClusterIP), "in a pod %s resolved to this, want the Service's address", demoDBHost)
		out, ok = resolveInPod(ctx, "e2e-dns-short", demoDBName)
		Expect(ok).To(BeTrue(), "looking up %s in a pod: %s", demoDBName, out)
		Expect(out).To(Equal(svc.Spec.ClusterIP), "in a pod of %s the short name %s (search domains)", storeNamespace, demoDBName)
		out, ok = resolveInPod(ctx, "e2e-dns-outside", "dossierguard.example.")
		Expect(ok).To(BeFalse(), "dossierguard.example. resolved in a pod (%s): the cluster's DNS must not forward", out)
		GinkgoWriter.Printf("in a pod: %s and %s -> %s; dossierguard.example. does not resolve (%s)\n", demoDBHost, demoDBName, svc.Spec.ClusterIP, out)
	})
})

// resolveInPod looks name up in a pod of the store's namespace (the echo
// server's -resolve: Go's resolver with the pod's resolv.conf and search
// domains) and returns what it printed, its addresses or its error, and
// whether the lookup succeeded.
func resolveInPod(ctx context.Context, pod, name string) (string, bool) {
	GinkgoHelper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: storeNamespace, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "resolve", Image: "local/echo:dev", ImagePullPolicy: corev1.PullNever,
				Command: []string{"/echo", "-resolve", name, "-timeout", "5s"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	createAll(ctx, p)
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		g.Expect(p.Status.Phase).To(BeElementOf(corev1.PodSucceeded, corev1.PodFailed))
	}).WithContext(ctx).WithTimeout(60*time.Second).WithPolling(time.Second).Should(Succeed(), "pod %s did not finish", pod)
	b, err := clientset.CoreV1().Pods(storeNamespace).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred())
	writeArtefact("dns-"+pod+".log", b)
	return strings.TrimSpace(string(b)), p.Status.Phase == corev1.PodSucceeded
}

// conditionsOf is the status conditions of a dossierguard object.
func conditionsOf(o runtime.Object) []metav1.Condition {
	switch v := o.(type) {
	case *v1alpha1.DossierStore:
		return v.Status.Conditions
	case *v1alpha1.AccessRole:
		return v.Status.Conditions
	case *v1alpha1.SharingAgreement:
		return v.Status.Conditions
	case *v1alpha1.DataSubjectRequest:
		return v.Status.Conditions
	case *v1alpha1.RetentionPolicy:
		return v.Status.Conditions
	}
	panic(fmt.Sprintf("conditionsOf: %T", o))
}
