//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Data-subject rights at the proxy: a granted restriction (afscherming) on
// one dossier refuses it within 10 s while the others are served, and its
// end serves it again. The proxy watches the store's DataSubjectRequests
// with the workload's ServiceAccount.

var _ = Describe("Data-subject rights", Label("subject-rights"), func() {
	It("refuses a restricted dossier within 10 s, still serves the others, and serves it again when the restriction ends", func(ctx SpecContext) {
		pod := appPod(ctx)
		openWindow(ctx, pod, "E2E data-subject rights through the audit proxy", 20*time.Minute)
		c := proxyClient(ctx)
		f := responderForward(appPodName)
		dossiers := fmt.Sprintf("https://127.0.0.1:%d/api/dossiers", f.port)
		ask := func(name, dossier string) reply {
			return get(c, name, dossiers+"/"+dossier+"/decisions", consulent, consulenten)
		}

		// The pod is Ready only once its proxy has read the store's requests
		// (before that every request for a dossier is 503).
		Eventually(func() int { return ask("dsr-before", "D-1001").code }).WithContext(ctx).
			WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Equal(http.StatusOK), "before any restriction, dossier A")

		out, code := cli("D-1001", nil, "pseudonym", "--store", storeNamespace+"/"+storeName)
		Expect(code).To(Equal(0), "dossierguard pseudonym: %s", out)
		pseudonym := strings.TrimSpace(out)
		Expect(pseudonym).To(MatchRegexp(`^[0-9a-f]{64}$`), "dossierguard pseudonym printed %q, want 64 hex digits", pseudonym)

		now := time.Now()
		dsr := fromYAML[v1alpha1.DataSubjectRequest](fmt.Sprintf(`
metadata: {name: e2e-afscherming, namespace: wijkteam, labels: {app.kubernetes.io/part-of: dossierguard-e2e}}
spec:
  storeRef: {name: wijkteam-dossiers}
  type: Restriction
  dossier: %s
  receivedAt: %q
  requester: {relation: Self}
  subject: {ageBand: Adult}
  handler: privacy-officer
  decision: {outcome: Granted, decidedAt: %q}
`, pseudonym, iso(now.Add(-time.Minute)), iso(now)))
		createAll(ctx, dsr)
		decided := time.Now()
		var r reply
		Eventually(func() int {
			r = ask("dsr-restricted", "D-1001")
			return r.code
		}).WithContext(ctx).WithTimeout(10*time.Second).WithPolling(250*time.Millisecond).Should(Equal(http.StatusForbidden),
			"10 s after the restriction of A was recorded the consulent still got A")
		recordFigure("restricted dossier refused after the request was recorded", time.Since(decided))
		Expect(r.body).To(ContainSubstring(`"type":"https://dossierguard.io/problems/restricted"`), "the 403 for the restricted dossier is not of type restricted")
		Expect(ask("dsr-b", "D-1002").code).To(Equal(http.StatusOK), "while A is restricted, dossier B")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dsr), dsr)).To(Succeed())
		GinkgoWriter.Printf("restriction of A recorded; the request is %s\n", dsr.Status.State)

		patch := client.MergeFrom(dsr.DeepCopy())
		dsr.Spec.EndedAt = &metav1.Time{Time: time.Now().Truncate(time.Second)}
		Expect(k8s.Patch(ctx, dsr, patch)).To(Succeed(), "could not end the restriction")
		ended := time.Now()
		Eventually(func() int { return ask("dsr-ended", "D-1001").code }).WithContext(ctx).
			WithTimeout(10*time.Second).WithPolling(250*time.Millisecond).Should(Equal(http.StatusOK),
			"10 s after the restriction of A ended, dossier A")
		recordFigure("restricted dossier served again after the restriction ended", time.Since(ended))
		f.close()

		Eventually(func(g Gomega) {
			found := false
			for _, l := range strings.Split(auditLog(ctx, appPodName, "audit.jsonl"), "\n") {
				if strings.Contains(l, `"data_subject_id":"`+pseudonym+`"`) && strings.Contains(l, `"outcome":"denied"`) && strings.Contains(l, `"http_status":403`) {
					found = true
				}
			}
			g.Expect(found).To(BeTrue(), "no denied event (403) for the restricted dossier's pseudonym in the audit log")
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
		Expect(auditLog(ctx, appPodName, "audit.jsonl")).NotTo(ContainSubstring("D-1001"), "the audit log holds the raw dossier id")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dsr), dsr)).To(Succeed())
		b, err := yaml.Marshal(dsr)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).NotTo(ContainSubstring("D-1001"), "the DataSubjectRequest holds the raw dossier id")
	})
})
