//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The install every story builds on: the operator that hack/e2e.sh
// installed with Helm, rolled out with two replicas, a leader and its
// webhooks' certificates; the samples applied and Ready; the logbook
// holding every store's public checkpoint key; the demo application's
// database on the store's volume. It runs before every other story
// (SpecPriority) and in the order written (Ordered); when one of its specs
// fails the suite stops there (AbortSuite), since no story can mean
// anything on an install that is not there. hack/e2e.sh and make e2e-suite
// add -ginkgo.focus '^dossierguard end to end Install ' to E2E_FOCUS, so that it runs whatever
// else is picked; on an install that is already there (E2E_KEEP=1) it
// changes nothing.

const (
	operatorDeployment = "dossierguard-manager"
	operatorReplicas   = 2
	leaderLease        = "dossierguard.privacy.dossierguard.io"
	injectorWebhook    = "dossierguard-sidecar-injector"
	podGuardWebhook    = "dossierguard-pod-guard"
	webhookTLSSecret   = "dossierguard-webhook-tls"
	trustConfigMap     = "dossierguard-audit-trust"
	logbookDeployment  = "dossierguard-logbook"
	// trustKeysAnnotation on the logbook's pod template names the checkpoint
	// keys it was started with, so that it is restarted once per set of keys.
	trustKeysAnnotation = "e2e.dossierguard.io/trust-keys"
	// installPriority puts the install before every story (all have 0).
	installPriority = 100
)

var _ = Describe("Install", Ordered, Label("install"), SpecPriority(installPriority), func() {
	AfterEach(func() {
		if r := CurrentSpecReport(); r.Failed() {
			AbortSuite(fmt.Sprintf("the install is not what the stories build on, so none of them runs: %s (%s)", r.Failure.Message, r.Failure.Location))
		}
	})

	It("rolls out the operator: Deployment dossierguard-manager Available, with two ready replicas", func(ctx SpecContext) {
		d := &appsv1.Deployment{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: operatorDeployment}, d)).To(Succeed())
			g.Expect(ptr.Deref(d.Spec.Replicas, 1)).To(BeEquivalentTo(operatorReplicas), "deploy/%s: spec.replicas (the chart's default)", operatorDeployment)
			g.Expect(d.Status.ObservedGeneration).To(BeNumerically(">=", d.Generation), "deploy/%s: the rollout is not observed yet", operatorDeployment)
			g.Expect(d.Status.UpdatedReplicas).To(BeEquivalentTo(operatorReplicas), "deploy/%s: updated replicas", operatorDeployment)
			g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(operatorReplicas), "deploy/%s: ready replicas", operatorDeployment)
			g.Expect(d.Status.Replicas).To(BeEquivalentTo(operatorReplicas), "deploy/%s: old pods still terminating", operatorDeployment)
			g.Expect(d.Status.Conditions).To(ContainElement(And(
				HaveField("Type", appsv1.DeploymentAvailable), HaveField("Status", corev1.ConditionTrue))), "deploy/%s is not Available", operatorDeployment)
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
		writeArtefact("operator.txt", describeOperator(ctx, d))
		GinkgoWriter.Printf("deploy/%s Available, %d of %d replicas ready\n", operatorDeployment, d.Status.ReadyReplicas, operatorReplicas)
	})

	It("elects a leader: Lease dossierguard.privacy.dossierguard.io held by one of the operator's pods", func(ctx SpecContext) {
		lease := &coordinationv1.Lease{}
		var holder string
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: leaderLease}, lease)).To(Succeed())
			holder = ptr.Deref(lease.Spec.HolderIdentity, "")
			g.Expect(holder).NotTo(BeEmpty(), "no leader: Lease %s/%s has no holder", cfg.operatorNamespace, leaderLease)
			// controller-runtime's identity is the pod's host name, _, a UUID.
			pods, err := operatorPods(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods).To(ContainElement(HaveField("ObjectMeta.Name", strings.SplitN(holder, "_", 2)[0])),
				"the leader %q is not one of the operator's pods", holder)
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
		GinkgoWriter.Printf("leader: %s\n", holder)
	})

	It("has the webhooks' caBundles filled by the operator, trusting the serving certificate in Secret dossierguard-webhook-tls", func(ctx SpecContext) {
		// Until the operator fills them the API server cannot call the
		// webhooks, and pods in the stores' namespaces are refused
		// (failurePolicy Fail).
		Eventually(func(g Gomega) {
			secret := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: webhookTLSSecret}, secret)).To(Succeed(),
				"Secret %s/%s", cfg.operatorNamespace, webhookTLSSecret)
			mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: injectorWebhook}, mutating)).To(Succeed())
			validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: podGuardWebhook}, validating)).To(Succeed())
			var configs []webhookClient
			for _, w := range mutating.Webhooks {
				configs = append(configs, webhookClient{"mutatingwebhookconfiguration/" + injectorWebhook + " " + w.Name, w.ClientConfig})
			}
			for _, w := range validating.Webhooks {
				configs = append(configs, webhookClient{"validatingwebhookconfiguration/" + podGuardWebhook + " " + w.Name, w.ClientConfig})
			}
			g.Expect(mutating.Webhooks).NotTo(BeEmpty(), "%s has no webhook", injectorWebhook)
			g.Expect(validating.Webhooks).NotTo(BeEmpty(), "%s has no webhook", podGuardWebhook)
			for _, c := range configs {
				g.Expect(c.config.CABundle).NotTo(BeEmpty(), "%s has no caBundle", c.name)
				g.Expect(trusts(c.config, secret.Data[corev1.TLSCertKey])).To(Succeed(), "%s", c.name)
			}
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
	})

	It("applies StorageClass encrypted-ssd and config/samples, and every DossierStore, AccessRole, SharingAgreement and DataSubjectRequest becomes Ready, every store's encryption Attested", Label("samples"), func(ctx SpecContext) {
		kubectl(ctx, "apply", "-f", repoFile("test/e2e/storageclass.yaml"))
		kubectl(ctx, "apply", "-k", repoFile("config/samples"))
		// An agreement outside its window is Ready with reason NotYetValid
		// or Expired, so Ready covers those too.
		Eventually(func(g Gomega) {
			for _, l := range []client.ObjectList{&v1alpha1.DossierStoreList{}, &v1alpha1.AccessRoleList{},
				&v1alpha1.SharingAgreementList{}, &v1alpha1.DataSubjectRequestList{}} {
				g.Expect(k8s.List(ctx, l)).To(Succeed())
				g.Expect(meta.LenList(l)).To(BeNumerically(">", 0), "no %T: are the samples applied?", l)
				g.Expect(meta.EachListItem(l, func(o runtime.Object) error {
					obj := o.(client.Object)
					c := meta.FindStatusCondition(conditionsOf(o), v1alpha1.ConditionReady)
					g.Expect(c).NotTo(BeNil(), "%T %s/%s has no Ready condition", o, obj.GetNamespace(), obj.GetName())
					g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%T %s/%s is not Ready: %s %s", o, obj.GetNamespace(), obj.GetName(), c.Reason, c.Message)
					return nil
				})).To(Succeed())
			}
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
		writeArtefact("privacy.txt", kubectl(ctx, "get", "privacy", "-A", "-o", "wide"))
		reasons := readyReasons(ctx)
		writeArtefact("ready-reasons.txt", reasons)
		GinkgoWriter.Printf("%s", reasons)
		stores := &v1alpha1.DossierStoreList{}
		Expect(k8s.List(ctx, stores)).To(Succeed())
		for _, s := range stores.Items {
			Expect(s.Status.Encryption).To(Equal("Attested"), "DossierStore %s/%s: encryption, want Attested (StorageClass %s)", s.Namespace, s.Name, attestedClass)
		}
	})

	It("keeps every store's public checkpoint key in ConfigMap dossierguard-audit-trust, and the logbook, restarted once they are there, rolls out", func(ctx SpecContext) {
		if !cfg.logbook {
			Skip("the release runs no logbook (E2E_LOGBOOK=1: the local cluster's pod bridge)")
		}
		stores := &v1alpha1.DossierStoreList{}
		Expect(k8s.List(ctx, stores)).To(Succeed())
		var want []string
		for _, s := range stores.Items {
			want = append(want, s.Namespace+"/"+s.Name)
		}
		sort.Strings(want)
		// The operator keeps each store's public checkpoint keys there; the
		// logbook reads them (--trust-key-dir) when it starts and when the
		// kubelet refreshes the volume. It is restarted once they are all
		// there, so that it holds them before any proxy signs a checkpoint.
		var keys []string
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: trustConfigMap}, cm)).To(Succeed())
			keys = keys[:0]
			for k := range cm.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			g.Expect(trustKeyStores(keys)).To(ContainElements(want), "the stores whose keys ConfigMap %s/%s keeps (%v)", cfg.operatorNamespace, trustConfigMap, keys)
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
		sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
		version := hex.EncodeToString(sum[:8])
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: logbookDeployment}, d)).To(Succeed())
		if d.Spec.Template.Annotations[trustKeysAnnotation] != version {
			// What kubectl rollout restart does, with the keys' names.
			patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, trustKeysAnnotation, version)
			Expect(k8s.Patch(ctx, d, client.RawPatch(types.StrategicMergePatchType, []byte(patch)))).To(Succeed(), "restart deploy/%s", logbookDeployment)
			GinkgoWriter.Printf("restarted deploy/%s for the checkpoint keys %v\n", logbookDeployment, keys)
		}
		rolledOut(ctx, cfg.operatorNamespace, logbookDeployment)
		GinkgoWriter.Printf("logbook rolled out with the checkpoint keys of the %d stores\n", len(want))
	})

	It("runs the demo application's database on the store's own volume, reached by its DNS name and declared as the store's dependency", Label("storage"), func(ctx SpecContext) {
		if !cfg.demoApp {
			Skip("no demo database in this run (E2E_DEMO_APP=1: the local cluster without E2E_APP_IMAGE)")
		}
		// The database's name and a random password; kept when it is there
		// already (an install E2E_KEEP=1 left), since the database on the
		// volume has that password.
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: dbSecretName, Namespace: storeNamespace, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
			StringData: map[string]string{"host": demoDBHost, "port": "5432", "dbname": "postgres", "user": "postgres",
				"password": randomPassword(), "sslmode": "disable"},
		}
		if err := k8s.Create(ctx, secret); !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred(), "create Secret %s/%s", storeNamespace, dbSecretName)
		}
		// The workload may reach its database: a declared dependency, which
		// the store's isolation policy admits (on 5432, to these pods only).
		store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: storeNamespace, Name: storeName}}
		Expect(k8s.Patch(ctx, store, client.RawPatch(types.MergePatchType, []byte(
			`{"spec":{"workload":{"dependencies":[{"name":"database","podSelector":{"matchLabels":{"app.kubernetes.io/name":"`+demoDBName+`"}},"ports":[{"port":5432}]}]}}}`)))).
			To(Succeed(), "declare the database as the store's dependency")
		for _, u := range decodeManifests("test/e2e/demodb/demodb.yaml", nil) {
			Expect(k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(partOf), client.ForceOwnership)).
				To(Succeed(), "apply %s %s", u.GetKind(), u.GetName())
		}
		// The first start runs initdb on the empty volume: the claim must
		// bind (WaitForFirstConsumer) and the provisioner make the volume.
		rolledOut(ctx, storeNamespace, demoDBName)
		pvc := &corev1.PersistentVolumeClaim{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: storeClaim}, pvc)).To(Succeed())
		GinkgoWriter.Printf("deploy/%s rolled out on claim %s (%s)\n", demoDBName, storeClaim, pvc.Status.Phase)
	})
})

// kubectl runs the cluster's kubectl (E2E_KUBECTL) with KUBECONFIG and
// returns its standard output; its failure fails the spec with its output.
func kubectl(ctx context.Context, args ...string) []byte {
	GinkgoHelper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, cfg.kubectl, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	GinkgoWriter.Printf("kubectl %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	Expect(err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), stderr.String())
	return stdout.Bytes()
}

// operatorPods are the pods of the operator's Deployment.
func operatorPods(ctx context.Context) ([]corev1.Pod, error) {
	d := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: operatorDeployment}, d); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(cfg.operatorNamespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// describeOperator is the operator's Deployment, its pods and the leader's
// Lease, for operator.txt.
func describeOperator(ctx context.Context, d *appsv1.Deployment) []byte {
	GinkgoHelper()
	var out bytes.Buffer
	fmt.Fprintf(&out, "deploy/%s replicas=%d updated=%d ready=%d available=%d image=%s\n", d.Name, d.Status.Replicas,
		d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Spec.Template.Spec.Containers[0].Image)
	pods, err := operatorPods(ctx)
	Expect(err).NotTo(HaveOccurred())
	for i := range pods {
		describePod(&out, &pods[i])
	}
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: leaderLease}, lease); err == nil {
		fmt.Fprintf(&out, "lease/%s holder=%s\n", leaderLease, ptr.Deref(lease.Spec.HolderIdentity, ""))
	}
	return out.Bytes()
}

// webhookClient is one webhook's client configuration, by a name for messages.
type webhookClient struct {
	name   string
	config admissionregistrationv1.WebhookClientConfig
}

// trusts checks what the API server checks when it calls the webhook: the
// serving certificate is valid for the webhook Service's name under the
// caBundle.
func trusts(c admissionregistrationv1.WebhookClientConfig, servingPEM []byte) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.CABundle) {
		return fmt.Errorf("caBundle holds no PEM certificate")
	}
	block, _ := pem.Decode(servingPEM)
	if block == nil {
		return fmt.Errorf("secret %s has no PEM certificate in %s", webhookTLSSecret, corev1.TLSCertKey)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("secret %s: %w", webhookTLSSecret, err)
	}
	if c.Service == nil {
		return fmt.Errorf("the webhook calls no Service")
	}
	name := c.Service.Name + "." + c.Service.Namespace + ".svc"
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
		return fmt.Errorf("the serving certificate in Secret %s is not trusted for %s by the caBundle: %w", webhookTLSSecret, name, err)
	}
	return nil
}

// trustKeyStores are the stores (namespace/name) whose public checkpoint
// keys the trust ConfigMap's keys name (NAMESPACE_STORE_KEYID.pem,
// resources.TrustKeyName).
func trustKeyStores(keys []string) []string {
	seen := map[string]bool{}
	var stores []string
	for _, k := range keys {
		parts := strings.Split(strings.TrimSuffix(k, ".pem"), "_")
		if !strings.HasSuffix(k, ".pem") || len(parts) != 3 {
			continue
		}
		if s := parts[0] + "/" + parts[1]; !seen[s] {
			seen[s] = true
			stores = append(stores, s)
		}
	}
	sort.Strings(stores)
	return stores
}

// readyReasons is the Ready condition and reason of every sample resource,
// for ready-reasons.txt.
func readyReasons(ctx context.Context) []byte {
	GinkgoHelper()
	var out bytes.Buffer
	w := tabwriter.NewWriter(&out, 0, 8, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "KIND\tNAMESPACE\tNAME\tREADY\tREASON") // into a bytes.Buffer
	for _, k := range []struct {
		kind string
		list client.ObjectList
	}{{"DossierStore", &v1alpha1.DossierStoreList{}}, {"AccessRole", &v1alpha1.AccessRoleList{}},
		{"SharingAgreement", &v1alpha1.SharingAgreementList{}}, {"RetentionPolicy", &v1alpha1.RetentionPolicyList{}},
		{"DataSubjectRequest", &v1alpha1.DataSubjectRequestList{}}} {
		Expect(k8s.List(ctx, k.list)).To(Succeed())
		Expect(meta.EachListItem(k.list, func(o runtime.Object) error {
			obj := o.(client.Object)
			status, reason := "<none>", "<none>"
			if c := meta.FindStatusCondition(conditionsOf(o), v1alpha1.ConditionReady); c != nil {
				status, reason = string(c.Status), c.Reason
			}
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.kind, obj.GetNamespace(), obj.GetName(), status, reason)
			return nil
		})).To(Succeed())
	}
	Expect(w.Flush()).To(Succeed())
	return out.Bytes()
}

// randomPassword is 24 random bytes in hex.
func randomPassword() string {
	GinkgoHelper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	Expect(err).NotTo(HaveOccurred())
	return hex.EncodeToString(b)
}
