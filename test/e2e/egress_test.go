//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/test/e2e/testpki"
)

// The egress story: the demo application (test/e2e/demoapp) sends a
// dossier's referral through the store's egress gateway to a stand-in
// partner (test/e2e/partner) in a namespace of its own, which answers only
// mutual TLS and tells what it received. Two outbound agreements name that
// partner, each on a port of its own: one in force for the whole story, one
// that expires during it.
const (
	nsEgressPartner         = "e2e-egress-partner"
	partnerName             = "partner"
	referralAgreement       = "e2e-egress-referral"
	expiringAgreement       = "e2e-egress-expiring"
	referralPort      int32 = 8443 // the referral agreement's partner port
	expiringPort      int32 = 8444 // the expiring agreement's
	partnerAdmin      int32 = 8081 // the partner's plain-HTTP /received
	// The dossier the referrals are about (the demo app's D-1001, test
	// data), and what its referral discloses.
	referralDossier = "D-1001"
	referralPath    = "/referrals/{dossier}"
	// A request the agreements do not route: the dossier's help request,
	// a category neither agreement shares.
	requestPath = "/hulpvragen/{dossier}"
	// The gateway presents this client certificate to the partner.
	gatewayClientCN = "wijkteam-dossiers-egress"
)

var _ = Describe("Egress gateway", Ordered, ContinueOnFailure, Label("egress"), func() {
	var (
		store                 *v1alpha1.DossierStore
		referral, expiring    *v1alpha1.SharingAgreement
		until                 time.Time // the expiring agreement's validUntil
		app                   *application
		inside, gatewayProbe  *prober // in a workload pod; in a pod the gateway's policy selects
		partnerPod            *corev1.Pod
		gatewayPods           []*corev1.Pod
		gatewayLabels         map[string]string
		referralBase, expBase string
	)

	BeforeAll(func(ctx SpecContext) {
		store = &v1alpha1.DossierStore{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: storeName}, store)).To(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: "wijkteam-db-credentials"}, &corev1.Secret{})).To(Succeed(),
			"the demo application's database (Secret wijkteam/wijkteam-db-credentials, hack/e2e.sh step 4a) must be there: the application reads the referral from it")
		var logbook *corev1.Service
		lb := &corev1.Service{}
		switch err := k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: "dossierguard-logbook"}, lb); {
		case err == nil:
			logbook = lb
		case !apierrors.IsNotFound(err):
			Expect(err).NotTo(HaveOccurred())
		}
		sa := &corev1.ServiceAccount{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: "wijkteam-dossier"}, sa); apierrors.IsNotFound(err) {
			sa.Name, sa.Namespace, sa.Labels = "wijkteam-dossier", storeNamespace, map[string]string{"app.kubernetes.io/part-of": partOf}
			createAll(ctx, sa)
		}

		// The certificates of this run: one authority signs the partner's
		// server certificate and the gateway's client certificate.
		ca, err := testpki.NewCA("dossierguard e2e partner CA")
		Expect(err).NotTo(HaveOccurred())
		host := partnerName + "." + nsEgressPartner + ".svc"
		server, err := ca.Server(partnerName, host, host+".cluster.local")
		Expect(err).NotTo(HaveOccurred())
		clientPair, err := ca.Client(gatewayClientCN)
		Expect(err).NotTo(HaveOccurred())

		createAll(ctx, namespace(nsEgressPartner))
		createAll(ctx,
			secret(nsEgressPartner, "partner-tls", corev1.SecretTypeOpaque, map[string][]byte{
				corev1.TLSCertKey: server.CertPEM, corev1.TLSPrivateKeyKey: server.KeyPEM, "ca.crt": ca.PEM}),
			partnerServerPod(),
			partnerService(),
			secret(storeNamespace, "e2e-egress-partner-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": ca.PEM}),
			secret(storeNamespace, "e2e-egress-client", corev1.SecretTypeTLS, map[string][]byte{
				corev1.TLSCertKey: clientPair.CertPEM, corev1.TLSPrivateKeyKey: clientPair.KeyPEM}),
		)
		// Registered before the agreements, so run after they are gone: the
		// last outbound agreement takes the gateway with it.
		DeferCleanup(func(ctx SpecContext) {
			Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: resources.EgressGatewayName(store)}, &appsv1.Deployment{}))
			}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(BeTrue(),
				"the gateway's Deployment must go with the last outbound agreement")
		})
		until = time.Now().Add(cfg.egressWindow).Truncate(time.Second)
		referral = outboundAgreement(referralAgreement, referralPort, nil)
		expiring = outboundAgreement(expiringAgreement, expiringPort, &until)
		createAll(ctx, referral, expiring)

		// The application, a workload pod to probe from, and a pod the
		// gateway's NetworkPolicy selects (its labels) but its Service
		// does not send to (never Ready).
		gatewayLabels = resources.EgressPodLabels(store)
		probe := probePod(storeNamespace, "e2e-egress-gateway-probe", gatewayLabels, ":8080", false)
		probe.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(9) // nothing listens: never an endpoint
		createAll(ctx, demoAppPod("e2e-egress-app", logbook), workloadPod("e2e-egress-workload", logbook), probe)

		partnerPod = waitReady(ctx, nsEgressPartner, partnerName)
		appPod := waitReady(ctx, storeNamespace, "e2e-egress-app")
		Expect(appPod.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationAuditProxy, "injected"))
		openBreakGlass(ctx, appPod)
		app = &application{prober: prober{name: "application", namespace: storeNamespace, pod: appPod.Name, container: "app",
			config: responderConfig, binary: "/demoapp"}}
		workload := waitReady(ctx, storeNamespace, "e2e-egress-workload")
		openBreakGlass(ctx, workload)
		inside = &prober{name: "workload", namespace: storeNamespace, pod: workload.Name, container: "app",
			config: responderConfig, binary: "/netprobe", ip: workload.Status.PodIP}
		gp := waitRunning(ctx, storeNamespace, "e2e-egress-gateway-probe")
		gatewayProbe = &prober{name: "gateway's policy", namespace: storeNamespace, pod: gp.Name, container: "probe",
			config: restConfig, binary: "/netprobe", ip: gp.Status.PodIP}

		gatewayPods = waitGateway(ctx, store, referral, expiring)
		referralBase, expBase = egressURL(ctx, referral), egressURL(ctx, expiring)
		GinkgoWriter.Printf("%d gateway pods; %s expires at %s (%s from now)\n", len(gatewayPods), expiringAgreement,
			until.Format(time.RFC3339), time.Until(until).Round(time.Second))
	})

	AfterEach(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			collectDiagnostics(ctx, CurrentSpecReport().LeafNodeText)
		}
	})

	It("deploys the store's egress gateway: EgressGated passes and each agreement shows its route", func(ctx SpecContext) {
		Eventually(func(g Gomega) {
			got := &v1alpha1.DossierStore{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(store), got)).To(Succeed())
			g.Expect(got.Status.Compliance).To(ContainElement(And(
				HaveField("Control", v1alpha1.ControlEgressGated),
				HaveField("Result", v1alpha1.ResultPass),
				HaveField("Reason", v1alpha1.ReasonGatewayReady))), "the store's EgressGated control")
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
		Expect(referralBase).To(Equal(resources.EgressRouteURL(store, referral)))
		Expect(expBase).To(Equal(resources.EgressRouteURL(store, expiring)))
		// No agreement policy gives the workload a way around the gateway.
		for _, a := range []*v1alpha1.SharingAgreement{referral, expiring} {
			exists, err := agreementPolicyExists(ctx, a)
			Expect(err).NotTo(HaveOccurred())
			Expect(exists).To(BeFalse(), "an outbound agreement must have no NetworkPolicy of its own (%s)", resources.AgreementPolicyName(a))
		}
	})

	It("sends an allowed referral to the partner over mutual TLS and records it, pseudonymised, in the gateway's hash-chained audit log", func(ctx SpecContext) {
		before := partnerReceived(ctx)
		var ans answer
		Eventually(func(g Gomega) {
			var err error
			ans, err = app.refer(ctx, referralBase, referralPath, referralDossier, "identity", "contact")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ans.Status).To(Equal(201), "the partner's answer through the gateway: %s", ans)
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(2 * time.Second).Should(Succeed())
		Expect(ans.Body).To(ContainSubstring(`"received":true`))

		arrived := newSince(partnerReceived(ctx), before)
		Expect(arrived).To(ContainElement(received{Listener: port(referralPort), Method: "POST", Path: "/referrals",
			Client: gatewayClientCN, Categories: []string{"contact", "identity"}}), "what the partner received: %v", arrived)
		Expect(arrived).To(HaveEach(HaveField("Categories", ConsistOf("contact", "identity"))),
			"every referral that arrived holds the agreement's categories only")

		pseudonym := dossierPseudonym(ctx, store, referralDossier)
		Eventually(func(g Gomega) {
			events := gatewayAudit(ctx, g, store, gatewayPods)
			allowed := eventsOf(events, referralAgreement, "referral", auditlog.OutcomeAllowed)
			g.Expect(allowed).To(ContainElement(HaveField("Status", 0)), "the decision, recorded before the request left")
			g.Expect(allowed).To(ContainElement(HaveField("Status", 201)), "the completion with the partner's status")
			for _, ev := range allowed {
				g.Expect(ev.DataSubject).To(Equal(pseudonym), "the dossier's keyed pseudonym")
				g.Expect(ev.Action).To(Equal(auditlog.ActionExport))
				g.Expect(ev.Categories).To(ConsistOf("identity", "contact"))
				g.Expect(ev.Actor).To(Equal("system:serviceaccount:" + storeNamespace + ":" + store.Spec.Workload.ServiceAccountName))
				g.Expect(ev.Sharing.Partner).To(Equal(referral.Spec.Partner.Name))
				g.Expect(ev.Sharing.LegalBasis).To(Equal(string(v1alpha1.BasisPublicTask)))
				g.Expect(ev.Sharing.NoticeRequired).To(BeTrue(), "a disclosure without consent is flagged for notice to the family")
			}
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
	})

	It("refuses a request that would disclose a category outside the agreement with 403, and nothing arrives", func(ctx SpecContext) {
		// The agreement cannot even declare such a route: the API server
		// refuses it, naming the field and the rule.
		withRoute := &v1alpha1.SharingAgreement{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(referral), withRoute)).To(Succeed())
		withRoute.Spec.OutboundRoutes = append(withRoute.Spec.OutboundRoutes, v1alpha1.OutboundRoute{
			Name: "help-request", Method: "POST", Path: requestPath, Categories: []v1alpha1.DataCategory{v1alpha1.CategoryRequest}})
		err := k8s.Update(ctx, withRoute, client.DryRunAll)
		Expect(err).To(HaveOccurred(), "a route with a category outside spec.categories was accepted")
		Expect(err.Error()).To(ContainSubstring("spec.outboundRoutes: every route category must be one of spec.categories"))

		// So the application's request for it matches no route of the agreement.
		before := partnerReceived(ctx)
		ans, err := app.refer(ctx, referralBase, requestPath, referralDossier, "request")
		Expect(err).NotTo(HaveOccurred())
		Expect(ans.Status).To(Equal(403), "%s", ans)
		p := ans.problem()
		Expect(ans.ContentType).To(HavePrefix("application/problem+json"))
		Expect(p.Type).To(Equal(auditproxy.ProblemNoRoute))
		Expect(p.Detail).To(ContainSubstring(referralAgreement))
		Expect(strings.ToLower(ans.Body)).NotTo(ContainSubstring(strings.ToLower(referralDossier)), "the problem must never name the dossier")
		Consistently(func() []received { return newSince(partnerReceived(ctx), before) }).
			WithContext(ctx).WithTimeout(3*time.Second).WithPolling(time.Second).Should(BeEmpty(), "nothing may arrive at the partner")

		Eventually(func(g Gomega) {
			denied := eventsOf(gatewayAudit(ctx, g, store, gatewayPods), referralAgreement, "", auditlog.OutcomeDenied)
			g.Expect(denied).To(ContainElement(HaveField("Status", 403)), "the refusal is recorded")
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
	})

	It("lets only the gateway reach the partner, on the ports of the agreements in force", func(ctx SpecContext) {
		pip := partnerPod.Status.PodIP
		for _, gp := range gatewayPods {
			inside.expectOpen(hostPort(gp.Status.PodIP, resources.EgressGatewayPort), "the workload reaches its gateway")
		}
		inside.expectRefused(hostPort(pip, referralPort), "the workload has no direct egress to the partner")
		inside.expectRefused(hostPort(pip, expiringPort), "the workload has no direct egress to the partner")
		gatewayProbe.expectOpen(hostPort(pip, referralPort), "the referral agreement is in force")
		gatewayProbe.expectOpen(hostPort(pip, expiringPort), "the expiring agreement is in force until "+until.Format(time.RFC3339))
		gatewayProbe.expectRefused(hostPort(pip, partnerAdmin), "no agreement names the partner's port "+port(partnerAdmin))
	})

	It("refuses the next request after the agreement expires, and nothing more arrives", func(ctx SpecContext) {
		Expect(time.Until(until)).To(BeNumerically(">", 10*time.Second),
			"too late to watch %s expire at %s: raise E2E_EGRESS_WINDOW (now %s)", expiringAgreement, until.Format(time.RFC3339), cfg.egressWindow)
		before := partnerReceived(ctx)

		// The application sends a referral under the expiring agreement
		// again and again until 8 s after validUntil, while a watch from
		// the gateway's policy dials the agreement's partner port.
		type attempt struct {
			start time.Time
			ans   answer
			err   error
		}
		attempts := make(chan attempt, 1024)
		go func() {
			defer GinkgoRecover()
			defer close(attempts)
			for time.Now().Before(until.Add(8 * time.Second)) {
				start := time.Now()
				ans, err := app.refer(ctx, expBase, referralPath, referralDossier, "identity", "contact")
				attempts <- attempt{start, ans, err}
				if ctx.Err() != nil {
					return
				}
				// Every 0.3 s from 10 s before validUntil; every 5 s
				// until then.
				time.Sleep(min(max(300*time.Millisecond, time.Until(until)-10*time.Second), 5*time.Second))
			}
		}()
		latency := measureRefusal(ctx, gatewayProbe, hostPort(partnerPod.Status.PodIP, expiringPort), time.Until(until)+30*time.Second,
			func() time.Time { return until })
		recordFigure("gateway's packets to the partner refused after expiry", latency)
		Expect(latency).To(BeNumerically("<=", refusalBound), "the gateway's new connections to the expired agreement's partner were refused %s after validUntil", latency)

		var allowed, refused []attempt
		for a := range attempts {
			Expect(a.err).NotTo(HaveOccurred())
			GinkgoWriter.Printf("%s referral under %s -> %d\n", a.start.UTC().Format("15:04:05.000"), expiringAgreement, a.ans.Status)
			switch {
			case a.ans.Status == 201:
				Expect(a.start.Before(until)).To(BeTrue(), "a referral sent %s after validUntil was allowed", a.start.Sub(until))
				allowed = append(allowed, a)
			case !a.start.Before(until):
				Expect(a.ans.Status).To(Equal(403), "%s", a.ans)
				p := a.ans.problem()
				Expect(p.Type).To(Equal(auditproxy.ProblemAccessDenied))
				Expect(p.Reason).To(Equal(string(auditproxy.ReasonNoAgreementInForce)))
				Expect(p.Detail).To(ContainSubstring(expiringAgreement + " (expired)"))
				refused = append(refused, a)
			default:
				// Sent just before validUntil, decided just after it.
				Expect(a.ans.Status).To(Equal(403), "%s", a.ans)
			}
		}
		Expect(allowed).NotTo(BeEmpty(), "no referral under %s was allowed before it expired", expiringAgreement)
		Expect(refused).NotTo(BeEmpty(), "no referral was sent after %s expired", expiringAgreement)
		recordFigure("first referral after expiry refused (sent after validUntil)", refused[0].start.Sub(until))
		recordFigure("last referral allowed before expiry (sent before validUntil)", until.Sub(allowed[len(allowed)-1].start))

		// Exactly the allowed ones arrived; nothing after the expiry.
		arrivedLate := func() []received {
			return slices.DeleteFunc(newSince(partnerReceived(ctx), before), func(r received) bool { return r.Listener != port(expiringPort) })
		}
		Consistently(func() int { return len(arrivedLate()) }).WithContext(ctx).WithTimeout(3*time.Second).WithPolling(time.Second).
			Should(Equal(len(allowed)), "the partner must have received exactly the %d referrals allowed before the expiry", len(allowed))

		waitAgreementReason(ctx, expiring, v1alpha1.ReasonExpired)
		gatewayProbe.expectOpen(hostPort(partnerPod.Status.PodIP, referralPort), "the referral agreement is still in force")
		Eventually(func(g Gomega) {
			recorded := 0
			for _, ev := range eventsOf(gatewayAudit(ctx, g, store, gatewayPods), expiringAgreement, "referral", auditlog.OutcomeDenied) {
				recorded += max(ev.Count, 1) // an aggregate of a flood stands for Count refusals
			}
			g.Expect(recorded).To(BeNumerically(">=", len(refused)), "every refusal after the expiry is recorded")
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
	})
})

// outboundAgreement is an Egress agreement of the sample store with the
// stand-in partner, reached on partnerPort, with one referral route.
func outboundAgreement(name string, partnerPort int32, validUntil *time.Time) *v1alpha1.SharingAgreement {
	a := &v1alpha1.SharingAgreement{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: storeNamespace, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
		Spec: v1alpha1.SharingAgreementSpec{
			StoreRef: v1alpha1.StoreReference{Name: storeName},
			Partner: v1alpha1.Partner{
				Type:        v1alpha1.PartnerCareProvider,
				Name:        "E2E zorgaanbieder " + name,
				Namespace:   nsEgressPartner,
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "e2e-egress-partner"}},
				Ports:       []v1alpha1.NetworkPort{{Port: partnerPort}},
				Endpoint:    fmt.Sprintf("https://%s.%s.svc:%d", partnerName, nsEgressPartner, partnerPort),
				TLS: &v1alpha1.PartnerTLS{CABundle: v1alpha1.SecretKeyReference{Name: "e2e-egress-partner-ca", Key: "ca.crt"},
					ClientCertificateSecretName: "e2e-egress-client"},
			},
			Direction:      v1alpha1.DirectionEgress,
			LegalBasis:     v1alpha1.BasisPublicTask,
			LegalReference: "Wmo 2015 art. 2.3.5",
			Categories:     []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryContact},
			Purpose:        "Verwijzing naar een zorgaanbieder (end-to-end check of the egress gateway)",
			OutboundRoutes: []v1alpha1.OutboundRoute{{Name: "referral", Method: "POST", Path: referralPath,
				Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryContact}}},
		},
	}
	if validUntil != nil {
		a.Spec.ValidUntil = &metav1.Time{Time: *validUntil}
	}
	return a
}

func secret(ns, name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
		Type: typ, Data: data}
}

// partnerServerPod runs test/e2e/partner with the run's certificates,
// under the restricted Pod Security Standard.
func partnerServerPod() *corev1.Pod {
	pod := probePod(nsEgressPartner, partnerName, map[string]string{"app.kubernetes.io/name": "e2e-egress-partner"}, "", false)
	c := &pod.Spec.Containers[0]
	c.Name, c.Image = "partner", cfg.partnerImage
	c.Args = []string{"-listen", fmt.Sprintf(":%d,:%d", referralPort, expiringPort), "-admin", port(partnerAdmin),
		"-cert", "/etc/partner/tls.crt", "-key", "/etc/partner/tls.key", "-client-ca", "/etc/partner/ca.crt"}
	c.ReadinessProbe.HTTPGet.Port = intstr.FromInt32(partnerAdmin)
	c.VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/partner", ReadOnly: true}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: "partner-tls", DefaultMode: ptr.To[int32](0o444)}}}}
	return pod
}

// partnerService gives the partner the name its certificate carries, on
// the pods' own ports (the agreements' partner ports are the pods').
func partnerService() *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: partnerName, Namespace: nsEgressPartner, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": "e2e-egress-partner"}},
	}
	for _, p := range []int32{referralPort, expiringPort} {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "https-" + strconv.Itoa(int(p)), Port: p, TargetPort: intstr.FromInt32(p)})
	}
	return svc
}

// egressTokenDir is where the application's pod mounts its projected
// ServiceAccount token of the gateway's audience (demoapp's default).
const egressTokenDir = "/var/run/secrets/dossierguard/egress"

// demoAppPod is a workload pod of the sample store running the demo
// application on its database, with the gateway's token declared in its
// own pod spec, as docs/egress-gateway.md tells an application to.
func demoAppPod(name string, logbook *corev1.Service) *corev1.Pod {
	pod := workloadPod(name, logbook)
	c := &pod.Spec.Containers[0]
	c.Image, c.Args = cfg.demoAppImage, nil
	for _, e := range [][2]string{{"PGHOST", "host"}, {"PGPORT", "port"}, {"PGDATABASE", "dbname"}, {"PGUSER", "user"}, {"PGPASSWORD", "password"}, {"PGSSLMODE", "sslmode"}} {
		c.Env = append(c.Env, corev1.EnvVar{Name: e[0], ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "wijkteam-db-credentials"}, Key: e[1]}}})
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "egress-token", MountPath: egressTokenDir, ReadOnly: true})
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "egress-token", VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](0o444), Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: v1alpha1.EgressGatewayTokenAudience, ExpirationSeconds: ptr.To[int64](3600), Path: "token"}}}}}})
	return pod
}

// waitRunning waits until the pod runs and has an address (whether or not
// it is Ready) and returns it.
func waitRunning(ctx context.Context, namespace, name string) *corev1.Pod {
	GinkgoHelper()
	pod := &corev1.Pod{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod)).To(Succeed())
		g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
		g.Expect(pod.Status.PodIP).NotTo(BeEmpty())
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(), "pod %s/%s does not run", namespace, name)
	return pod
}

// waitGateway waits until the store's gateway Deployment has rolled out
// its replicas with the TLS files of every agreement, and returns their pods.
func waitGateway(ctx context.Context, store *v1alpha1.DossierStore, agreements ...*v1alpha1.SharingAgreement) []*corev1.Pod {
	GinkgoHelper()
	name := resources.EgressGatewayName(store)
	var gateways []*corev1.Pod
	Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: name}, d)).To(Succeed(), "Deployment %s", name)
		g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		g.Expect(d.Status.Replicas).To(Equal(want), "%d gateway pods, no old one left", want)
		g.Expect(d.Status.UpdatedReplicas).To(Equal(want))
		g.Expect(d.Status.AvailableReplicas).To(Equal(want))
		var paths []string
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					for _, it := range s.Secret.Items {
						paths = append(paths, it.Path)
					}
				}
			}
		}
		for _, a := range agreements {
			g.Expect(paths).To(ContainElements(a.Name+"/ca.crt", a.Name+"/tls.crt", a.Name+"/tls.key"), "the gateway's TLS files of %s", a.Name)
		}
		pods := &corev1.PodList{}
		g.Expect(k8s.List(ctx, pods, client.InNamespace(store.Namespace), client.MatchingLabels(resources.EgressPodLabels(store)))).To(Succeed())
		var ready []*corev1.Pod
		for i := range pods.Items {
			p := &pods.Items[i]
			if _, ok := p.Labels["pod-template-hash"]; !ok || p.DeletionTimestamp != nil {
				continue // not the Deployment's (the probe), or going
			}
			g.Expect(p.Status.Conditions).To(ContainElement(And(HaveField("Type", corev1.PodReady), HaveField("Status", corev1.ConditionTrue))))
			ready = append(ready, p)
		}
		g.Expect(ready).To(HaveLen(int(want)), "%d gateway pods", want)
		gateways = ready
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(), "the store's egress gateway did not roll out")
	return gateways
}

// egressURL waits for the agreement's status.egressGatewayURL.
func egressURL(ctx context.Context, a *v1alpha1.SharingAgreement) string {
	GinkgoHelper()
	var url string
	Eventually(func(g Gomega) {
		got := &v1alpha1.SharingAgreement{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), got)).To(Succeed())
		g.Expect(got.Status.EgressGatewayURL).NotTo(BeEmpty())
		url = got.Status.EgressGatewayURL
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(), "agreement %s shows no gateway route", a.Name)
	return url
}

// application runs the demo app's refer command in its container.
type application struct{ prober }

// answer is what demoapp refer prints.
type answer struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

func (a answer) String() string { return fmt.Sprintf("%d %s %s", a.Status, a.ContentType, a.Body) }

// problemBody holds the members of an RFC 9457 problem the story reads.
type problemBody struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	Reason string `json:"reason"`
}

func (a answer) problem() problemBody {
	GinkgoHelper()
	var p problemBody
	Expect(json.Unmarshal([]byte(a.Body), &p)).To(Succeed(), "not a problem body: %s", a.Body)
	return p
}

// refer sends the dossier's referral with the categories to base + path.
func (a *application) refer(ctx context.Context, base, path, dossier string, categories ...string) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := a.exec(ctx, &out, "refer", "-base", base, "-path", path, "-dossier", dossier, "-categories", strings.Join(categories, ",")); err != nil {
		return answer{}, err
	}
	var ans answer
	if err := json.Unmarshal(out.Bytes(), &ans); err != nil {
		return answer{}, fmt.Errorf("demoapp refer printed %q: %w", out.String(), err)
	}
	GinkgoWriter.Printf("%s POST %s%s -> %s\n", time.Now().UTC().Format("15:04:05.000"), base, path, ans)
	return ans, nil
}

// received is what the partner keeps of a request (test/e2e/partner).
type received struct {
	Listener   string   `json:"listener"`
	Method     string   `json:"method"`
	Path       string   `json:"path"`
	Client     string   `json:"client"`
	Categories []string `json:"categories"`
}

// partnerReceived asks the partner what it received, through the API
// server's proxy to its admin port.
func partnerReceived(ctx context.Context) []received {
	GinkgoHelper()
	var got []received
	Eventually(func(g Gomega) {
		raw, err := clientset.CoreV1().Pods(nsEgressPartner).ProxyGet("http", partnerName, strconv.Itoa(int(partnerAdmin)), "received", nil).DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(json.Unmarshal(raw, &got)).To(Succeed())
	}).WithContext(ctx).WithTimeout(30*time.Second).WithPolling(time.Second).Should(Succeed(), "the partner does not tell what it received")
	return got
}

// newSince is what arrived after before (the partner only appends).
func newSince(now, before []received) []received {
	if len(now) < len(before) {
		return now
	}
	return now[len(before):]
}

func port(p int32) string { return ":" + strconv.Itoa(int(p)) }

// dossierPseudonym is the dossier's keyed pseudonym, with the store's key.
func dossierPseudonym(ctx context.Context, store *v1alpha1.DossierStore, dossier string) string {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: resources.PseudonymName(store)}, s)).To(Succeed())
	key, err := resources.ReadPseudonymKey(store, s)
	Expect(err).NotTo(HaveOccurred())
	return auditproxy.DossierPseudonym(key, dossier)
}

// gatewayAudit reads the audit log of every gateway pod (its lines on
// standard output; the Service spreads requests over the replicas, each
// with a chain of its own), checks that none holds the raw dossier id and
// that each hash chain and its checkpoint signatures verify with the
// store's public keys, and returns their events.
func gatewayAudit(ctx context.Context, g Gomega, store *v1alpha1.DossierStore, pods []*corev1.Pod) []auditlog.Event {
	keys := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: resources.AuditSigningName(store)}, keys)).To(Succeed())
	var pubs []ed25519.PublicKey
	for name, data := range keys.Data {
		if strings.HasSuffix(name, ".pub") {
			pub, err := auditlog.DecodePublicKeyPEM(data)
			g.Expect(err).NotTo(HaveOccurred(), "public key %s", name)
			pubs = append(pubs, pub)
		}
	}
	var events []auditlog.Event
	for _, pod := range pods {
		events = append(events, podAudit(ctx, g, pod, pubs)...)
	}
	return events
}

// podAudit verifies the audit chain one gateway pod wrote to its output
// and returns its events.
func podAudit(ctx context.Context, g Gomega, pod *corev1.Pod, pubs []ed25519.PublicKey) []auditlog.Event {
	stream, err := clientset.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: resources.EgressComponent}).Stream(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = stream.Close() }()
	raw, err := io.ReadAll(stream)
	g.Expect(err).NotTo(HaveOccurred())
	var log bytes.Buffer
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(`{"v":1,"type":`)) {
			log.Write(line)
			log.WriteByte('\n')
		}
	}
	g.Expect(strings.ToLower(log.String())).NotTo(ContainSubstring(strings.ToLower(referralDossier)), "the audit log of %s holds the raw dossier id", pod.Name)
	res, err := auditlog.VerifyWithOptions(bytes.NewReader(log.Bytes()), auditlog.VerifyOptions{PublicKeys: pubs, AllowUnsignedTail: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.OK).To(BeTrue(), "the audit log of gateway pod %s: %s", pod.Name, res)
	g.Expect(res.Chain).NotTo(BeNil(), "the chain of %s names its origin", pod.Name)
	GinkgoWriter.Printf("audit log of gateway pod %s: %s\n", pod.Name, res)

	var events []auditlog.Event
	g.Expect(auditlog.ReadEvents(bytes.NewReader(log.Bytes()), func(r *auditlog.Record) error {
		events = append(events, *r.Event)
		return nil
	})).To(Succeed())
	return events
}

// eventsOf are the events under the agreement on the route ("" for none)
// with that outcome.
func eventsOf(events []auditlog.Event, agreement, route string, outcome auditlog.Outcome) []auditlog.Event {
	var out []auditlog.Event
	for _, ev := range events {
		if ev.Sharing != nil && ev.Sharing.Agreement == agreement && ev.Route == route && ev.Outcome == outcome {
			out = append(out, ev)
		}
	}
	return out
}
