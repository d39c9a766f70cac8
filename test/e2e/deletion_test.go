//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Deletion and uninstall: deleting the dossierguard resources leaves none
// of what the operator made but the dossier volumes, released from their
// stores; `helm uninstall` leaves nothing of the operator but the CRDs and
// the stores' public checkpoint keys. It removes the installation, so it
// runs alone and last (hack/e2e.sh: -ginkgo.label-filter=deletion, never
// with E2E_KEEP=1).

var sampleNamespaces = []string{"cjg", "wijkteam", "veilig-thuis"}

var _ = Describe("Deletion", Label("deletion"), func() {
	It("leaves only the retained dossier volumes after the samples are deleted, and only the CRDs and the public checkpoint keys after helm uninstall", func(ctx SpecContext) {
		if strings.TrimSpace(GinkgoLabelFilter()) != "deletion" {
			Skip("the deletion story removes the installation: it runs only when picked alone (-ginkgo.label-filter=deletion)")
		}
		appPodObj := &corev1.Pod{}
		appPodObj.Name, appPodObj.Namespace = appPodName, storeNamespace
		deleteAndWait(ctx, appPodObj)
		if cfg.demoApp {
			deleteManifests(ctx, "test/e2e/demodb/demodb.yaml", nil)
		}
		// The dossierguard resources only: deleting the samples' Namespaces
		// would take their volumes too, as Kubernetes does with everything
		// in a namespace.
		for _, ns := range sampleNamespaces {
			for _, o := range []client.Object{&v1alpha1.DossierStore{}, &v1alpha1.AccessRole{}, &v1alpha1.SharingAgreement{},
				&v1alpha1.RetentionPolicy{}, &v1alpha1.DataSubjectRequest{}} {
				Expect(k8s.DeleteAllOf(ctx, o, client.InNamespace(ns))).To(Succeed(), "delete every %T in %s", o, ns)
			}
		}
		Eventually(func(g Gomega) {
			for _, ns := range sampleNamespaces {
				for _, l := range []client.ObjectList{&v1alpha1.DossierStoreList{}, &v1alpha1.AccessRoleList{}, &v1alpha1.SharingAgreementList{},
					&v1alpha1.RetentionPolicyList{}, &v1alpha1.DataSubjectRequestList{}} {
					g.Expect(k8s.List(ctx, l, client.InNamespace(ns))).To(Succeed())
					g.Expect(meta.LenList(l)).To(BeZero(), "%T in %s not deleted", l, ns)
				}
			}
		}).WithContext(ctx).WithTimeout(120*time.Second).WithPolling(time.Second).Should(Succeed(), "the dossierguard resources were not deleted in time")

		// Owned children go through garbage collection
		// (kube-controller-manager).
		managed := client.MatchingLabels{"app.kubernetes.io/managed-by": "dossierguard"}
		Eventually(func(g Gomega) {
			var leftover []string
			for _, ns := range sampleNamespaces {
				for _, l := range []client.ObjectList{&networkingv1.NetworkPolicyList{}, &corev1.SecretList{}, &corev1.ConfigMapList{},
					&rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &batchv1.CronJobList{}, &corev1.ServiceAccountList{}} {
					g.Expect(k8s.List(ctx, l, client.InNamespace(ns), managed)).To(Succeed())
					if n := meta.LenList(l); n > 0 {
						leftover = append(leftover, fmt.Sprintf("%s/%T:%d", ns, l, n))
					}
				}
			}
			g.Expect(leftover).To(BeEmpty(), "dossierguard objects left after deleting the samples")
		}).WithContext(ctx).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())

		retained := 0
		for _, ns := range sampleNamespaces {
			pvcs := &corev1.PersistentVolumeClaimList{}
			Expect(k8s.List(ctx, pvcs, client.InNamespace(ns))).To(Succeed())
			for _, pvc := range pvcs.Items {
				Expect(pvc.Annotations[v1alpha1.AnnotationRetained]).NotTo(BeEmpty(), "%s/%s is not a released dossier volume (annotation %s)", ns, pvc.Name, v1alpha1.AnnotationRetained)
				Expect(pvc.OwnerReferences).To(BeEmpty(), "%s/%s is still owned", ns, pvc.Name)
				retained++
			}
		}
		Expect(retained).To(Equal(3), "dossier volumes retained, want the 3 of the sample stores")

		out, err := exec.CommandContext(ctx, cfg.helm, "uninstall", cfg.release, "-n", cfg.operatorNamespace, "--wait", "--timeout", "120s").CombinedOutput()
		writeArtefact("helm-uninstall.txt", out)
		Expect(err).NotTo(HaveOccurred(), "helm uninstall: %s", out)

		var cluster []string
		for _, l := range []client.ObjectList{&rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{},
			&admissionregistrationv1.MutatingWebhookConfigurationList{}, &admissionregistrationv1.ValidatingWebhookConfigurationList{}} {
			Expect(k8s.List(ctx, l)).To(Succeed())
			Expect(meta.EachListItem(l, func(o runtime.Object) error {
				if n := o.(client.Object).GetName(); strings.Contains(n, "dossierguard") {
					cluster = append(cluster, fmt.Sprintf("%T %s", o, n))
				}
				return nil
			})).To(Succeed())
		}
		Expect(cluster).To(BeEmpty(), "cluster-scoped dossierguard objects left after helm uninstall")

		// But ConfigMap dossierguard-audit-trust: the stores' public
		// checkpoint keys, which outlive the stores and the release
		// (docs/audit-log.md).
		partOfRelease := client.MatchingLabels{"app.kubernetes.io/part-of": "dossierguard"}
		var left []string
		for _, l := range []client.ObjectList{&appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.SecretList{}, &corev1.ConfigMapList{},
			&rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &corev1.ServiceAccountList{}, &policyv1.PodDisruptionBudgetList{}, &networkingv1.NetworkPolicyList{}} {
			Expect(k8s.List(ctx, l, client.InNamespace(cfg.operatorNamespace), partOfRelease)).To(Succeed())
			Expect(meta.EachListItem(l, func(o runtime.Object) error {
				if _, keys := o.(*corev1.ConfigMap); keys && o.(client.Object).GetName() == "dossierguard-audit-trust" {
					return nil
				}
				left = append(left, fmt.Sprintf("%T %s", o, o.(client.Object).GetName()))
				return nil
			})).To(Succeed())
		}
		Expect(left).To(BeEmpty(), "dossierguard objects left in %s after helm uninstall", cfg.operatorNamespace)
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: "dossierguard-audit-trust"}, &corev1.ConfigMap{})).To(Succeed(),
			"ConfigMap %s/dossierguard-audit-trust (the stores' public checkpoint keys) did not outlive the stores and the release", cfg.operatorNamespace)
		GinkgoWriter.Printf("after deleting the samples and uninstalling: no dossierguard object left but the CRDs, the %d retained dossier volumes and the public checkpoint keys\n", retained)
		for _, ns := range sampleNamespaces {
			Expect(k8s.DeleteAllOf(ctx, &corev1.PersistentVolumeClaim{}, client.InNamespace(ns))).To(Succeed())
		}
	})
})
