//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The logbook outlives a pod: a Deployment's pod serves requests, is
// deleted, and its successor serves more; the logbook must hold an event of
// every request served, in the chain of the pod that served it, and every
// chain of the store must verify, the deleted pod's ending with the
// checkpoint its proxy signed on SIGTERM.

const (
	logbookDeploy  = "e2e-wijkteam-deploy"
	requestsPerPod = 10
)

var _ = Describe("Logbook", Label("logbook"), func() {
	It("keeps the chain of a deleted pod and of its successor, every request served recorded and every chain verified", func(ctx SpecContext) {
		if !cfg.logbook {
			Skip("the release runs no logbook (E2E_LOGBOOK=1 and E2E_HOST_PG: the local cluster's pod bridge)")
		}
		_ = appPod(ctx) // the bare pod's chain is the third
		replace := map[string]string{"APP_IMAGE": cfg.appImage}
		for _, u := range decodeManifests("test/e2e/wijkteam-deployment.yaml", replace) {
			Expect(k8s.Create(ctx, u)).To(Succeed(), "create %s %s", u.GetKind(), u.GetName())
		}
		DeferCleanup(deleteManifests, "test/e2e/wijkteam-deployment.yaml", replace)

		first := logbookRound(ctx, 1, "")
		deleteAndWait(ctx, first)
		second := logbookRound(ctx, 2, first.Name)
		Expect(second.Name).NotTo(Equal(first.Name), "the Deployment did not start a new pod after %s was deleted", first.Name)
		served := 2 * requestsPerPod
		GinkgoWriter.Printf("served %d requests through pod %s (deleted) and pod %s (its successor)\n", served, first.Name, second.Name)

		db := hostPG(ctx, "logbook")
		// Events are shipped just after the response.
		var perPod map[string]int
		Eventually(func(g Gomega) {
			var recorded int
			g.Expect(db.QueryRow(ctx, `SELECT count(DISTINCT line::jsonb->>'actor') FROM dossierguard_logbook.logbook_records
				WHERE store = 'wijkteam/wijkteam-dossiers' AND type = 'event' AND line::jsonb->>'actor' LIKE 'e2e-lb-%'`).Scan(&recorded)).To(Succeed())
			g.Expect(recorded).To(Equal(served), "requests served, and the logbook's events of them")
			rows, err := db.Query(ctx, `SELECT c.pod, count(DISTINCT r.line::jsonb->>'actor') FROM dossierguard_logbook.logbook_records r
				JOIN dossierguard_logbook.logbook_chains c USING (chain_id)
				WHERE r.type = 'event' AND r.line::jsonb->>'actor' LIKE 'e2e-lb-%' GROUP BY c.pod`)
			g.Expect(err).NotTo(HaveOccurred())
			perPod = map[string]int{}
			for rows.Next() {
				var pod string
				var n int
				g.Expect(rows.Scan(&pod, &n)).To(Succeed())
				perPod[pod] = n
			}
			g.Expect(rows.Err()).NotTo(HaveOccurred())
			g.Expect(perPod).To(HaveKeyWithValue(first.Name, requestsPerPod), "requests recorded per pod")
			g.Expect(perPod).To(HaveKeyWithValue(second.Name, requestsPerPod), "requests recorded per pod")
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())

		host, port, _ := strings.Cut(cfg.hostPG, ":")
		out, code := cli("", []string{"PGHOST=" + host, "PGPORT=" + port, "PGDATABASE=logbook", "PGUSER=postgres", "PGSSLMODE=disable"},
			"audit", "verify", "--logbook", "--store", storeNamespace+"/"+storeName)
		writeArtefact("verify-logbook.txt", []byte(out))
		GinkgoWriter.Printf("per pod %v; audit verify --logbook:\n%s", perPod, out)
		Expect(code).To(Equal(0), "audit verify --logbook: %s", out)
		chains := regexp.MustCompile(`(?m)^chain `).FindAllString(out, -1)
		ok := regexp.MustCompile(`(?m)^chain .*\): OK: `).FindAllString(out, -1)
		Expect(len(chains)).To(BeNumerically(">=", 3), "chains of the store in the logbook (the bare pod's and the Deployment's two): %s", out)
		Expect(ok).To(HaveLen(len(chains)), "every chain OK: %s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines[len(lines)-1]).To(Equal(fmt.Sprintf("%d chains of store %s/%s, 0 broken", len(chains), storeNamespace, storeName)))
		for _, p := range []string{first.Name, second.Name} {
			Expect(out).To(ContainSubstring("(pod "+p+", started "), "the logbook holds no chain of pod %s", p)
		}
		// The deleted pod's proxy signed its chain's end on SIGTERM.
		for _, l := range lines {
			if strings.Contains(l, "(pod "+first.Name+", started ") {
				Expect(l).NotTo(ContainSubstring("not yet signed"), "the deleted pod's chain ends unsigned")
			}
		}
	})
})

// logbookRound sends requestsPerPod requests, each with an actor of its own
// (e2e-lb-ROUND-N), through the proxy of the Deployment's running pod that
// is not named gone, and returns that pod.
func logbookRound(ctx context.Context, round int, gone string) *corev1.Pod {
	GinkgoHelper()
	rolledOut(ctx, storeNamespace, logbookDeploy)
	var pod *corev1.Pod
	Eventually(func(g Gomega) {
		pods := &corev1.PodList{}
		g.Expect(k8s.List(ctx, pods, client.InNamespace(storeNamespace), client.MatchingLabels{"app.kubernetes.io/instance": logbookDeploy})).To(Succeed())
		pod = nil
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Name != gone && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				pod = p
			}
		}
		g.Expect(pod).NotTo(BeNil(), "deploy/%s has no running pod", logbookDeploy)
	}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
	waitReady(ctx, storeNamespace, pod.Name)
	openWindow(ctx, pod, "E2E logbook checks through the audit proxy", 10*time.Minute)
	c := proxyClient(ctx)
	f, err := startForward(responderConfig, pod.Name, proxyPort)
	Expect(err).NotTo(HaveOccurred(), "no port-forward to pod %s", pod.Name)
	defer f.close()
	for i := 1; i <= requestsPerPod; i++ {
		actor := fmt.Sprintf("e2e-lb-%d-%d@voorbeeldstad.nl", round, i)
		r := get(c, fmt.Sprintf("logbook-%d-%d", round, i), fmt.Sprintf("https://127.0.0.1:%d/api/dossiers/D-1001/decisions", f.port), actor, consulenten)
		Expect(r.code).To(Equal(http.StatusOK), "request %d of round %d through pod %s: %s", i, round, pod.Name, head(r.body))
	}
	return pod
}
