//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Traffic through the audit proxy: a person reaches a store's workload only
// through the proxy, with break-glass for kubectl's ways in, over TLS the
// store's bundle verifies, and every request is in the audit log, which
// verifies and shows an edit.

var _ = Describe("Audit proxy", Ordered, Label("proxy"), func() {
	var pod *corev1.Pod

	BeforeAll(func(ctx SpecContext) {
		pod = appPod(ctx)
	})

	It("refuses kubectl debug and port-forward into a workload pod without break-glass", func(ctx SpecContext) {
		// kubectl debug adds an ephemeral container, which reaches the
		// application behind the proxy.
		debug := &corev1.Pod{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), debug)).To(Succeed())
		debug.Spec.EphemeralContainers = append(debug.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "e2e-debug", Image: cfg.appImage, ImagePullPolicy: corev1.PullNever, Command: []string{"true"},
			},
			TargetContainerName: "app",
		})
		_, err := clientset.CoreV1().Pods(storeNamespace).UpdateEphemeralContainers(ctx, appPodName, debug, metav1UpdateOptions)
		Expect(err).To(HaveOccurred(), "kubectl debug into a workload pod was admitted")
		Expect(err.Error()).To(ContainSubstring("break-glass"), "unexpected refusal of kubectl debug")
		GinkgoWriter.Printf("kubectl debug refused: %v\n", err)

		f, err := startForward(restConfig, appPodName, proxyPort)
		if err == nil {
			f.close()
		}
		Expect(err).To(HaveOccurred(), "kubectl port-forward without break-glass was admitted")
		Expect(err.Error()).To(MatchRegexp(`break-glass|denied the request|Forbidden|forbidden`), "unexpected port-forward failure")
		GinkgoWriter.Printf("kubectl port-forward without break-glass refused: %v\n", err)
	})

	It("serves a consulent's granted categories through the break-glass port-forward over TLS, and refuses the rest", func(ctx SpecContext) {
		openWindow(ctx, pod, "E2E traffic checks through the audit proxy", 20*time.Minute)
		c := proxyClient(ctx)
		f := responderForward(appPodName)
		base := fmt.Sprintf("https://127.0.0.1:%d/api/dossiers/D-1001", f.port)

		// Plain HTTP reaches no application.
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/dossiers/D-1001/decisions", f.port))
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), "plain HTTP to the proxy: want 400, it serves TLS only")

		// kubectl port-forward enters the pod from 127.0.0.1, the address
		// the wijkteam store trusts as its authenticating proxy, so the
		// identity headers are accepted.
		r := get(c, "allowed", base+"/decisions", consulent, consulenten)
		Expect(r.code).To(Equal(http.StatusOK), "a consulent reading decisions: %s", head(r.body))
		Expect(r.tls).NotTo(BeNil())
		GinkgoWriter.Printf("the proxy serves TLS (subject %s), verified with the store's trust bundle; plain HTTP gets 400\n", r.tls.PeerCertificates[0].Subject)
		if cfg.demoApp {
			Expect(r.body).To(ContainSubstring("Wmo-beschikking"), "the decisions did not come from the demo app's database")
		}
		// Route read-dossier also touches "request", which role
		// beschikkingen lacks.
		r = get(c, "denied", base, consulent, consulenten)
		Expect(r.code).To(Equal(http.StatusForbidden), "a consulent reading the request")
		Expect(r.body).To(ContainSubstring(`"request"`), "the 403 problem body does not name the missing category")
		r = get(c, "anonymous", base+"/decisions", "", "")
		Expect(r.code).To(Equal(http.StatusUnauthorized), "a call without identity")
		r = get(c, "forged", base+"/decisions", "stranger", "not-a-group")
		Expect(r.code).To(Equal(http.StatusForbidden), "a user without a role")

		// The port-forward is recorded on the pod, without the person.
		Eventually(func(g Gomega) {
			evs := &corev1.EventList{}
			g.Expect(k8s.List(ctx, evs, client.InNamespace(storeNamespace), client.MatchingFieldsSelector{Selector: fields.AndSelectors(
				fields.OneTermEqualSelector("involvedObject.name", appPodName), fields.OneTermEqualSelector("reason", "BreakGlassAccess"))})).To(Succeed())
			var msgs []string
			for _, e := range evs.Items {
				msgs = append(msgs, e.Message)
			}
			all := strings.Join(msgs, "\n")
			g.Expect(all).To(ContainSubstring("portforward admitted under group "+cfg.breakGlassGroup), "no BreakGlassAccess event for the port-forward")
			g.Expect(all).NotTo(ContainSubstring("e2e-responder"), "the BreakGlassAccess event names the person")
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
	})

	It("writes an audit log that verifies, without the raw dossier id, and fails verification at the line that was edited", func(ctx SpecContext) {
		var log string
		// Completion events are written just after the response.
		Eventually(func(g Gomega) {
			log = auditLog(ctx, appPodName, "audit.jsonl")
			g.Expect(strings.Count(log, `"type":"event"`)).To(BeNumerically(">=", 5), "one event per denial, two per allowed request")
			g.Expect(log).To(MatchRegexp(`"actor":"consulent@voorbeeldstad.nl".*"outcome":"allowed"`), "no allowed event for the consulent")
			g.Expect(log).To(ContainSubstring(`"outcome":"denied"`), "no denied event")
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
		Expect(log).NotTo(ContainSubstring("D-1001"), "the audit log holds the raw dossier id; it must be pseudonymised")

		verify := verifyArgs(ctx)
		out, code := cli("", nil, append(verify, artefact("audit.jsonl"))...)
		writeArtefact("verify.txt", []byte(out))
		Expect(code).To(Equal(0), "audit verify rejected the proxy's log: %s", out)
		GinkgoWriter.Printf("audit verify: %s", out)

		// Edit one event: verification must fail, naming its sequence number.
		lines := strings.SplitAfter(log, "\n")
		seq := ""
		for i, l := range lines {
			if strings.Contains(l, `"actor":"consulent@voorbeeldstad.nl"`) {
				seq = regexp.MustCompile(`"seq":([0-9]+)`).FindStringSubmatch(l)[1]
				lines[i] = strings.Replace(l, consulent, "somebody-else", 1)
				break
			}
		}
		Expect(seq).NotTo(BeEmpty())
		writeArtefact("audit-edited.jsonl", []byte(strings.Join(lines, "")))
		out, code = cli("", nil, append(verify, artefact("audit-edited.jsonl"))...)
		writeArtefact("verify-edited.txt", []byte(out))
		Expect(code).To(Equal(1), "audit verify of an edited log: %s", out)
		Expect(out).To(ContainSubstring("BROKEN at seq "+seq+": edited"), "audit verify did not report the edit at seq %s", seq)
		GinkgoWriter.Printf("after editing seq %s: %s", seq, out)
	})
})
