//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// The network stories: real TCP connections between pods, decided by the
// cluster's network plugin from the NetworkPolicies the operator writes
// (the store's isolation policy, an agreement's policy while it is in
// force). With a plugin that does not enforce NetworkPolicy every story
// fails; docs/e2e.md shows how that was checked.

// Namespaces of the probe pods: a partner of an agreement, a partner whose
// agreement expires, and one that no agreement names.
const (
	nsPartner  = "e2e-net-partner"
	nsExpiring = "e2e-net-expiring"
	nsOther    = "e2e-net-other"
)

// refusalBound is how soon after an agreement ends its partner's new
// connections must be refused (issue #17).
const refusalBound = 2 * time.Second

var _ = Describe("Network", Ordered, ContinueOnFailure, Label("network"), func() {
	var (
		// Probes in the partner's, the expiring partner's and the unrelated
		// namespace, in the store's namespace (not a workload), and inside
		// the workload pod (the break-glass responder's exec).
		partner, expiring, other, neighbour, inside *prober
		workload                                    *corev1.Pod
		manager                                     *corev1.Pod
		logbook                                     *corev1.Service
		otherIP, neighbourIP                        string
	)

	BeforeAll(func(ctx SpecContext) {
		lb := &corev1.Service{}
		switch err := k8s.Get(ctx, client.ObjectKey{Namespace: cfg.operatorNamespace, Name: "dossierguard-logbook"}, lb); {
		case err == nil:
			logbook = lb
		case apierrors.IsNotFound(err):
			logbook = nil
		default:
			Expect(err).NotTo(HaveOccurred())
		}
		sa := &corev1.ServiceAccount{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: "wijkteam-dossier"}, sa); apierrors.IsNotFound(err) {
			sa.Name, sa.Namespace, sa.Labels = "wijkteam-dossier", storeNamespace, map[string]string{"app.kubernetes.io/part-of": partOf}
			createAll(ctx, sa)
		}
		createAll(ctx, namespace(nsPartner), namespace(nsExpiring), namespace(nsOther))
		createAll(ctx,
			probePod(nsPartner, "client", nil, ":8080", false),
			probePod(nsExpiring, "client", nil, ":8080", false),
			probePod(nsOther, "target", nil, fmt.Sprintf(":%d,:%d", probePort, dnsPort), true),
			probePod(storeNamespace, "e2e-net-neighbour", nil, ":8080", false),
			workloadPod("e2e-net-workload", logbook),
		)
		newProber := func(name, ns, pod, container string) *prober {
			p := waitReady(ctx, ns, pod)
			return &prober{name: name, namespace: ns, pod: pod, container: container, config: restConfig, binary: "/netprobe", ip: p.Status.PodIP}
		}
		partner = newProber("partner", nsPartner, "client", "probe")
		expiring = newProber("expiring partner", nsExpiring, "client", "probe")
		other = newProber("unrelated namespace", nsOther, "target", "probe")
		neighbour = newProber("store's namespace", storeNamespace, "e2e-net-neighbour", "probe")
		otherIP, neighbourIP = other.ip, neighbour.ip
		workload = waitReady(ctx, storeNamespace, "e2e-net-workload")
		Expect(workload.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationAuditProxy, "injected"))
		openBreakGlass(ctx, workload)
		inside = &prober{name: "workload", namespace: storeNamespace, pod: workload.Name, container: "app",
			config: responderConfig, binary: "/netprobe", ip: workload.Status.PodIP}

		pods := &corev1.PodList{}
		Expect(k8s.List(ctx, pods, client.InNamespace(cfg.operatorNamespace),
			client.MatchingLabels{"app.kubernetes.io/name": "dossierguard", "app.kubernetes.io/component": "manager"})).To(Succeed())
		for i := range pods.Items {
			if pods.Items[i].Status.PodIP != "" {
				manager = &pods.Items[i]
				break
			}
		}
		Expect(manager).NotTo(BeNil(), "no running operator pod in %s", cfg.operatorNamespace)
	})

	It("admits a partner to the audit proxy while its agreement is in force, and refuses its new connections within 2 s after the agreement is withdrawn", func(ctx SpecContext) {
		a := ingressAgreement("e2e-net-withdrawn", nsPartner, nil)
		createAll(ctx, a)
		waitAgreementPolicy(ctx, a, true)
		proxy := hostPort(workload.Status.PodIP, proxyPort)
		partner.expectOpen(proxy, "the agreement is in force")

		latency := measureRefusal(ctx, partner, proxy, time.Minute, func() time.Time {
			sent := time.Now()
			setSuspended(ctx, a, true)
			return sent
		})
		recordFigure("refused after withdrawal", latency)
		Expect(latency).To(BeNumerically("<=", refusalBound), "the partner's new connections were refused %s after the agreement was withdrawn", latency)
		waitAgreementPolicy(ctx, a, false)
		waitAgreementReason(ctx, a, v1alpha1.ReasonSuspended)

		// The same agreement, resumed: the partner is admitted again, so it
		// was the agreement that closed the door.
		setSuspended(ctx, a, false)
		partner.expectOpen(proxy, "the agreement is resumed")
	})

	It("refuses a partner's new connections within 2 s after its agreement expires", func(ctx SpecContext) {
		until := time.Now().Add(25 * time.Second).Truncate(time.Second)
		a := ingressAgreement("e2e-net-expiring", nsExpiring, &until)
		createAll(ctx, a)
		waitAgreementPolicy(ctx, a, true)
		proxy := hostPort(workload.Status.PodIP, proxyPort)
		expiring.expectOpen(proxy, "the agreement is in force until "+until.Format(time.RFC3339))
		Expect(time.Until(until)).To(BeNumerically(">", 3*time.Second),
			"the partner was admitted too late to watch the agreement expire (at %s)", until.Format(time.RFC3339))

		latency := measureRefusal(ctx, expiring, proxy, time.Until(until)+30*time.Second, func() time.Time { return until })
		recordFigure("refused after expiry", latency)
		Expect(latency).To(BeNumerically("<=", refusalBound), "the partner's new connections were refused %s after the agreement expired", latency)
		waitAgreementReason(ctx, a, v1alpha1.ReasonExpired)
		waitAgreementPolicy(ctx, a, false)
	})

	It("never lets anything outside the pod reach the application port behind the audit proxy", func(ctx SpecContext) {
		a := ingressAgreement("e2e-net-app-port", nsPartner, nil)
		createAll(ctx, a)
		waitAgreementPolicy(ctx, a, true)
		ip := workload.Status.PodIP
		proxy, app, health := hostPort(ip, proxyPort), hostPort(ip, appPort), hostPort(ip, resources.ProxyHealthPort)

		inside.expectOpen(hostPort("127.0.0.1", appPort), "the application listens on its port inside the pod")
		partner.expectOpen(proxy, "the agreement is in force")
		neighbour.expectOpen(proxy, "the store's own namespace reaches the audit proxy")
		for _, p := range []*prober{partner, neighbour, other} {
			p.expectRefused(app, "the application port is reachable only from inside the pod")
			p.expectRefused(health, "the proxy's metrics port is open only to the namespaces the install names")
		}
	})

	It("refuses a pod in an unrelated namespace at the audit proxy", func(ctx SpecContext) {
		a := ingressAgreement("e2e-net-unrelated", nsPartner, nil)
		createAll(ctx, a)
		waitAgreementPolicy(ctx, a, true)
		proxy := hostPort(workload.Status.PodIP, proxyPort)
		partner.expectOpen(proxy, "the agreement is in force")
		neighbour.expectOpen(proxy, "the store's own namespace reaches the audit proxy")
		other.expectRefused(proxy, "no agreement names "+nsOther)
	})

	It("lets the workload reach only DNS and its declared dependencies", func(ctx SpecContext) {
		webhookPort := containerPort(manager, "webhook")
		undeclared := map[string]string{
			hostPort(otherIP, probePort):                "a pod in another namespace",
			hostPort(neighbourIP, probePort):            "a pod in the store's own namespace",
			hostPort(manager.Status.PodIP, webhookPort): "the operator's webhook port",
		}
		dnsTarget := hostPort(otherIP, dnsPort)
		// Every target answers a pod that no policy selects.
		for addr, what := range undeclared {
			partner.expectOpen(addr, what+" answers a pod no policy selects")
		}
		partner.expectOpen(dnsTarget, "the DNS port answers a pod no policy selects")

		inside.expectOpen(dnsTarget, "the isolation policy allows the DNS port")
		for addr, what := range undeclared {
			inside.expectRefused(addr, what+" is not a declared dependency of the workload")
		}
		if logbook != nil {
			// The logbook's pods by address: the Service has no endpoints
			// while the logbook is not Ready (its database may be gone by
			// now), but the pod still listens, and the policy names the pods.
			pods := &corev1.PodList{}
			Expect(k8s.List(ctx, pods, client.InNamespace(cfg.operatorNamespace),
				client.MatchingLabels{"app.kubernetes.io/component": "logbook"})).To(Succeed())
			var reached int
			for _, p := range pods.Items {
				if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
					continue
				}
				addr := hostPort(p.Status.PodIP, resources.DefaultLogbookPort)
				partner.expectOpen(addr, "the logbook pod answers a pod no policy selects")
				inside.expectOpen(addr, "the logbook is where the proxy ships its chain")
				reached++
			}
			Expect(reached).To(BeNumerically(">", 0), "no running logbook pod in %s", cfg.operatorNamespace)
		} else {
			AddReportEntry("logbook", "no logbook installed in "+cfg.operatorNamespace+": its egress rule was not exercised")
		}
		dns := &corev1.Service{}
		switch err := k8s.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-dns"}, dns); {
		case err == nil:
			api := &corev1.Service{}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, api)).To(Succeed())
			Eventually(func(g Gomega) {
				r, err := inside.lookup(hostPort(dns.Spec.ClusterIP, dnsPort), "kubernetes.default.svc.cluster.local")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(r.Answers).To(ContainElement(api.Spec.ClusterIP), "%s", r)
			}).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(), "the workload resolves names at the cluster DNS")
		case apierrors.IsNotFound(err):
			AddReportEntry("cluster DNS", "no Service kube-system/kube-dns: the DNS rule was exercised on "+dnsTarget+" only")
		default:
			Expect(err).NotTo(HaveOccurred())
		}
	})
})

// measureRefusal watches new connections from p to addr while end() ends
// an agreement, and returns how long after the moment end returns the
// refusals began: the start of the first attempt of the unbroken run of
// refused attempts that closes the watch. It fails when the partner was not
// admitted before the end, or was admitted again after the run began.
func measureRefusal(ctx context.Context, p *prober, addr string, duration time.Duration, end func() time.Time) time.Duration {
	GinkgoHelper()
	wctx, cancel := context.WithTimeout(ctx, duration+time.Minute)
	defer cancel()
	const stopAfter = 20
	results, errc := p.watch(wctx, addr, watchOptions{interval: 100 * time.Millisecond, timeout: time.Second,
		duration: duration, stopAfterClosed: stopAfter})
	var seen []result
	// The watch admits the partner before the agreement ends.
	for open := 0; open < 5; {
		select {
		case r, ok := <-results:
			Expect(ok).To(BeTrue(), "the watch ended before it saw 5 open connections: %v", seen)
			seen = append(seen, r)
			if r.Open {
				open++
			}
		case <-time.After(30 * time.Second):
			Fail(fmt.Sprintf("%s -> %s: no 5 open connections within 30 s: %v", p, addr, seen))
		}
	}
	ended := end()
	for r := range results {
		seen = append(seen, r)
	}
	Expect(<-errc).To(Succeed())
	slices.SortFunc(seen, func(a, b result) int { return cmp.Compare(a.Start, b.Start) })
	last := 0 // the last open attempt; there were at least 5
	for i := range seen {
		if seen[i].Open {
			last = i
		}
	}
	refused := seen[last+1:]
	Expect(len(refused)).To(BeNumerically(">=", stopAfter),
		"%s -> %s: new connections were still admitted %s after the agreement ended (%d attempts, the last open one: %s)",
		p, addr, seen[last].started().Sub(ended).Round(time.Millisecond), len(seen), seen[last])
	latency := refused[0].started().Sub(ended)
	GinkgoWriter.Printf("%s -> %s: %d attempts; the last admitted one started %s after the end, the refusals %s after it (%s)\n",
		p, addr, len(seen), seen[last].started().Sub(ended), latency, refused[0])
	// Refusals from before the end would mean something else closed the
	// door (0.5 s allowed for validUntil's whole seconds).
	Expect(latency).To(BeNumerically(">=", -500*time.Millisecond), "%s -> %s was refused from %s, before the agreement ended at %s",
		p, addr, refused[0].started().Format(time.RFC3339Nano), ended.Format(time.RFC3339Nano))
	return latency
}

func setSuspended(ctx context.Context, a *v1alpha1.SharingAgreement, suspended bool) {
	GinkgoHelper()
	patch := client.RawPatch(client.Merge.Type(), fmt.Appendf(nil, `{"spec":{"suspended":%t}}`, suspended))
	Expect(k8s.Patch(ctx, a, patch)).To(Succeed())
}

// waitAgreementPolicy waits until the agreement's NetworkPolicy exists (or
// is gone).
func waitAgreementPolicy(ctx context.Context, a *v1alpha1.SharingAgreement, exists bool) {
	GinkgoHelper()
	Eventually(func() (bool, error) { return agreementPolicyExists(ctx, a) }).WithContext(ctx).
		WithTimeout(cfg.timeout).WithPolling(200*time.Millisecond).Should(Equal(exists),
		"NetworkPolicy %s/%s exists: want %t", a.Namespace, resources.AgreementPolicyName(a), exists)
}

func waitAgreementReason(ctx context.Context, a *v1alpha1.SharingAgreement, reason string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		got := &v1alpha1.SharingAgreement{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), got)).To(Succeed())
		g.Expect(got.Status.Conditions).To(ContainElement(And(
			HaveField("Type", v1alpha1.ConditionAgreementInForce), HaveField("Reason", reason))))
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed(),
		"agreement %s must report %s", a.Name, reason)
}

func containerPort(pod *corev1.Pod, name string) int32 {
	GinkgoHelper()
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
	}
	Fail(fmt.Sprintf("pod %s has no port named %s", pod.Name, name))
	return 0
}

// recordFigure reports a measured figure and keeps it in figures.txt.
func recordFigure(what string, d time.Duration) {
	line := fmt.Sprintf("%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), what, d.Round(time.Millisecond))
	AddReportEntry(what, d.Round(time.Millisecond).String())
	GinkgoWriter.Print(line)
	f, err := os.OpenFile(filepath.Join(cfg.artefacts, "figures.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	_, err = f.WriteString(line)
	Expect(err).NotTo(HaveOccurred())
}
