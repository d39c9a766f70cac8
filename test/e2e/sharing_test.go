//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Sharing with a partner: consent per dossier at the store's consent source
// (the demo application), withdrawn there; a window that closes on a
// kept-alive connection; and an agreement whose short window opens and
// closes its NetworkPolicy on time.

var _ = Describe("Sharing", Label("sharing"), func() {
	It("serves a partner the dossiers whose families consent, refuses one whose consent is withdrawn, and closes a window on a kept-alive connection", func(ctx SpecContext) {
		if !cfg.demoApp {
			Skip("needs the demo application as the store's consent source (E2E_DEMO_APP=1: the local cluster without E2E_APP_IMAGE)")
		}
		pod := appPod(ctx)
		db, ok := demoDB(ctx)
		Expect(ok).To(BeTrue(), "the demo application runs without its database %s", demoDBName)
		// The families of D-1001 (A) and D-1002 (B) signed the school's
		// consent form.
		_, err := db.Exec(ctx, `DELETE FROM consents WHERE agreement = 'e2e-school';
			INSERT INTO consents (dossier, agreement) VALUES ('D-1001', 'e2e-school'), ('D-1002', 'e2e-school')`)
		Expect(err).NotTo(HaveOccurred(), "could not record the consents at the demo app")

		// The window agreement must reach the proxy (the kubelet refreshes
		// ConfigMap volumes within about a minute) before it closes.
		closes := time.Now().Add(cfg.window).Truncate(time.Second)
		perDossier := fromYAML[v1alpha1.SharingAgreement](`
metadata: {name: e2e-school, namespace: wijkteam, labels: {app.kubernetes.io/part-of: dossierguard-e2e}}
spec:
  storeRef: {name: wijkteam-dossiers}
  partner: {type: School, name: E2E school, namespace: e2e-school, subjects: [{kind: Group, name: e2e-school}]}
  direction: Ingress
  legalBasis: Consent
  consent: {mode: PerDossier}
  categories: [identity, contact, request]
  purpose: End-to-end check of consent per dossier
`)
		window := fromYAML[v1alpha1.SharingAgreement](fmt.Sprintf(`
metadata: {name: e2e-school-window, namespace: wijkteam, labels: {app.kubernetes.io/part-of: dossierguard-e2e}}
spec:
  storeRef: {name: wijkteam-dossiers}
  partner: {type: School, name: "E2E school, window", namespace: e2e-school, subjects: [{kind: Group, name: e2e-school-window}]}
  direction: Ingress
  legalBasis: Consent
  consent: {reference: E2E-TOE-2}
  categories: [identity, contact, request]
  purpose: End-to-end check of a window closing on a kept-alive connection
  validUntil: %q
`, iso(closes)))
		createAll(ctx, perDossier, window)
		for _, a := range []*v1alpha1.SharingAgreement{perDossier, window} {
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
				g.Expect(a.Status.ProxyEnforced).To(BeTrue(), "agreement %s does not report proxyEnforced=true: %+v", a.Name, a.Status)
			}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
		}

		openWindow(ctx, pod, "E2E sharing checks through the audit proxy", 20*time.Minute)
		c := proxyClient(ctx)
		f := responderForward(appPodName)
		dossiers := fmt.Sprintf("https://127.0.0.1:%d/api/dossiers", f.port)
		const school, lvs = "e2e-school", "lvs@e2e-school.example"

		// Until the proxy has loaded the new policy the school is no partner.
		t0 := time.Now()
		Eventually(func() int {
			return get(c, "partner-a", dossiers+"/D-1001", lvs, school).code
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(2*time.Second).Should(Equal(http.StatusOK),
			"the school reading dossier A with consent")
		recordFigure("proxy enforced the new agreements after they were Ready", time.Since(t0))
		Expect(get(c, "partner-b", dossiers+"/D-1002", lvs, school).code).To(Equal(http.StatusOK), "the school reading dossier B with consent")
		Expect(get(c, "partner-decisions", dossiers+"/D-1001/decisions", lvs, school).code).To(Equal(http.StatusForbidden),
			"the school reading decisions (bsn, decisions: beyond the agreement)")

		// A's family withdraws consent at the case-management system; the
		// store's consent cache holds an answer 5 s at most
		// (spec.audit.consentCacheTTL).
		_, err = db.Exec(ctx, `UPDATE consents SET withdrawn_at = now() WHERE dossier = 'D-1001'`)
		Expect(err).NotTo(HaveOccurred(), "could not withdraw the consent")
		withdrawn := time.Now()
		var r reply
		Eventually(func() int {
			r = get(c, "partner-a-withdrawn", dossiers+"/D-1001", lvs, school)
			return r.code
		}).WithContext(ctx).WithTimeout(6*time.Second).WithPolling(250*time.Millisecond).Should(Equal(http.StatusForbidden),
			"after A's consent was withdrawn and the cache bound (5 s) passed, the school still got A")
		recordFigure("partner refused after the consent was withdrawn at the source", time.Since(withdrawn))
		Expect(r.body).To(ContainSubstring("withdrawn"), "the 403 does not say consent was withdrawn")
		Expect(get(c, "partner-b-after", dossiers+"/D-1002", lvs, school).code).To(Equal(http.StatusOK), "after A's withdrawal, B")

		// The window: one kept-alive connection, a request 10 s before the
		// window closes and one 1 s after it.
		Expect(get(c, "window-open", dossiers+"/D-1002", lvs, "e2e-school-window").code).To(Equal(http.StatusOK),
			"the windowed partner before its window closed")
		Expect(time.Until(closes)).To(BeNumerically(">", 12*time.Second),
			"the window agreement reached the proxy too late to test it (raise E2E_WINDOW_SECONDS, now %s)", cfg.window)
		kc := proxyClient(ctx)
		var first, second int
		var reused bool
		Eventually(func() bool { return time.Until(closes) <= 10*time.Second }).WithContext(ctx).
			WithTimeout(cfg.window).WithPolling(100 * time.Millisecond).Should(BeTrue())
		first, _ = keptAlive(ctx, kc, dossiers+"/D-1002", lvs, "e2e-school-window")
		Eventually(func() bool { return time.Now().After(closes.Add(time.Second)) }).WithContext(ctx).
			WithTimeout(15 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())
		second, reused = keptAlive(ctx, kc, dossiers+"/D-1002", lvs, "e2e-school-window")
		outcome := fmt.Sprintf("first=%d second=%d reused=%t", first, second, reused)
		GinkgoWriter.Printf("window closed during a kept-alive connection: %s\n", outcome)
		Expect(outcome).To(Equal("first=200 second=403 reused=true"), "the window closing on a kept-alive connection")
		f.close()

		Eventually(func(g Gomega) {
			log := auditLog(ctx, appPodName, "audit.jsonl")
			g.Expect(log).To(ContainSubstring(`"agreement":"e2e-school","partner":"E2E school","legal_basis":"Consent","consent_mode":"PerDossier","consent":"given","purpose":"End-to-end check of consent per dossier"`),
				"no allowed event naming agreement, partner, basis, consent mode and outcome, and purpose")
			g.Expect(log).To(MatchRegexp(`"outcome":"allowed".*"agreement":"e2e-school","partner":"E2E school"`))
			g.Expect(log).To(MatchRegexp(`"outcome":"denied".*"agreement":"e2e-school",.*"consent":"withdrawn"`), "no denied event with consent withdrawn")
			g.Expect(log).To(MatchRegexp(`"outcome":"denied".*"agreement":"e2e-school-window",.*"consent":"not-checked"`), "no denied event for the closed window")
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
		log := auditLog(ctx, appPodName, "audit.jsonl")
		Expect(log).NotTo(MatchRegexp(`D-100[12]`), "the audit log holds a raw dossier id")
		out, code := cli("", nil, append(verifyArgs(ctx), artefact("audit.jsonl"))...)
		writeArtefact("verify-sharing.txt", []byte(out))
		Expect(code).To(Equal(0), "audit verify rejected the log with partner events: %s", out)
	})
})

var _ = Describe("A short-window SharingAgreement", Label("sharing", "window"), func() {
	It("has its NetworkPolicy within 2 s after the window opens and none within 2 s after it closes, then reports Expired", func(ctx SpecContext) {
		opens := time.Now().Add(8 * time.Second).Truncate(time.Second)
		closes := opens.Add(10 * time.Second)
		a := fromYAML[v1alpha1.SharingAgreement](fmt.Sprintf(`
metadata: {name: e2e-short-window, namespace: wijkteam, labels: {app.kubernetes.io/part-of: dossierguard-e2e}}
spec:
  storeRef: {name: wijkteam-dossiers}
  partner: {type: School, name: E2E school, namespace: e2e-school, subjects: [{kind: Group, name: e2e-school}]}
  direction: Ingress
  legalBasis: Consent
  consent: {reference: E2E-TOE-1}
  categories: [request]
  purpose: End-to-end check of a short window
  validFrom: %q
  validUntil: %q
`, iso(opens), iso(closes)))
		createAll(ctx, a)
		exists := func() (bool, error) { return agreementPolicyExists(ctx, a) }
		Expect(exists()).To(BeFalse(), "the NetworkPolicy exists before the window opened")
		Eventually(exists).WithContext(ctx).WithTimeout(time.Until(closes)).WithPolling(200*time.Millisecond).Should(BeTrue(),
			"the agreement's NetworkPolicy never appeared")
		appeared := time.Since(opens)
		Eventually(exists).WithContext(ctx).WithTimeout(time.Until(closes)+10*time.Second).WithPolling(200*time.Millisecond).Should(BeFalse(),
			"the agreement's NetworkPolicy did not disappear after the window closed")
		vanished := time.Since(closes)
		recordFigure("short window: NetworkPolicy after the window opened", appeared)
		recordFigure("short window: NetworkPolicy gone after the window closed", vanished)
		Expect(appeared).To(And(BeNumerically(">=", -500*time.Millisecond), BeNumerically("<=", 2*time.Second)),
			"the NetworkPolicy appeared %s after the window opened, want within 2 s", appeared)
		Expect(vanished).To(And(BeNumerically(">=", -500*time.Millisecond), BeNumerically("<=", 2*time.Second)),
			"the NetworkPolicy disappeared %s after the window closed, want within 2 s", vanished)
		waitAgreementReason(ctx, a, v1alpha1.ReasonExpired)
	})
})

// keptAlive sends one GET on the client's kept-alive connection and says
// whether it reused the connection of the request before.
func keptAlive(ctx context.Context, c *http.Client, url, user, groups string) (int, bool) {
	GinkgoHelper()
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("X-Forwarded-User", user)
	req.Header.Set("X-Forwarded-Groups", groups)
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred())
	_ = drain(resp)
	return resp.StatusCode, reused
}
