//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// A retention Job from the policy's CronJob, against PostgreSQL: it
// destroys the due dossiers, keeps those on legal hold or with an
// extension, prints a proof of destruction without the database's address
// and reports the run, after which the store passes every control.

const (
	retentionPolicy = "wijkteam-bewaartermijn"
	sweepJob        = "e2e-sweep"
)

var _ = Describe("Retention", Label("retention"), func() {
	It("destroys the 30 due dossiers from a Job of the policy's CronJob, keeps the 10 held and the 10 recent, and the store becomes Compliant", func(ctx SpecContext) {
		db, addrs := retentionDatabase(ctx)
		// 30 due, 5 due but on legal hold, 5 due but with a future
		// extension, 10 recent.
		_, err := db.Exec(ctx, `DROP TABLE IF EXISTS dossiers;
			CREATE TABLE dossiers (id bigint PRIMARY KEY, last_contact_at timestamptz NOT NULL, legal_hold boolean NOT NULL DEFAULT false, retain_until date);
			INSERT INTO dossiers SELECT g, now() - interval '6 years', false, NULL FROM generate_series(1, 30) g;
			INSERT INTO dossiers SELECT g, now() - interval '7 years', true, NULL FROM generate_series(31, 35) g;
			INSERT INTO dossiers SELECT g, now() - interval '8 years', false, current_date + 365 FROM generate_series(36, 40) g;
			INSERT INTO dossiers SELECT g, now() - interval '1 year', false, NULL FROM generate_series(41, 50) g;`)
		Expect(err).NotTo(HaveOccurred(), "could not load the test dossiers")

		started := time.Now()
		job := jobFromCronJob(ctx, retentionPolicy+"-retention", sweepJob)
		createAll(ctx, job)
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
			for _, c := range job.Status.Conditions {
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					StopTrying("the retention Job failed: " + tailText(jobLog(ctx), 5)).Now()
				}
			}
			g.Expect(job.Status.Conditions).To(ContainElement(And(
				HaveField("Type", batchv1.JobComplete), HaveField("Status", corev1.ConditionTrue))), "the retention Job did not complete")
		}).WithContext(ctx).WithTimeout(cfg.timeout).WithPolling(time.Second).Should(Succeed())
		log := jobLog(ctx)
		writeArtefact("sweep.log", []byte(log))

		var due, held, recent int
		Expect(db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE id <= 30), count(*) FILTER (WHERE id BETWEEN 31 AND 40),
			count(*) FILTER (WHERE id > 40) FROM dossiers`).Scan(&due, &held, &recent)).To(Succeed())
		Expect(fmt.Sprintf("%d|%d|%d", due, held, recent)).To(Equal("0|10|10"), "after the sweep (due|held|recent)")
		Expect(log).To(ContainSubstring(`"destroyed":30`), "the proof of destruction on the Job's log does not count 30 destroyed: %s", head(log))
		for _, a := range addrs {
			Expect(log).NotTo(ContainSubstring(a), "the Job's log shows the database address")
		}

		p := &v1alpha1.RetentionPolicy{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: retentionPolicy}, p)).To(Succeed())
			g.Expect(p.Status.LastRun).NotTo(BeNil(), "status.lastRun")
			g.Expect(p.Status.LastRun.StartTime.Time).To(BeTemporally(">=", started.Add(-time.Second)), "status.lastRun is of an earlier run")
			r := p.Status.LastRun
			g.Expect(fmt.Sprintf("%d/%d/%s", r.Destroyed, r.Held, r.Result)).To(Equal("30/10/Succeeded"), "status.lastRun destroyed/held/result")
			g.Expect(p.Status.Conditions).To(ContainElement(And(
				HaveField("Type", v1alpha1.ConditionRetentionEnforced), HaveField("Status", metav1.ConditionTrue))), "RetentionEnforced after the run")
		}).WithContext(ctx).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
		GinkgoWriter.Println("the Job destroyed the 30 due dossiers, kept 5 on legal hold and 5 with an extension, and the policy reports it (RetentionEnforced=True)")

		// With retention proven, the wijkteam store passes every control;
		// the other stores fail only RetentionEnforced (no sweep ran for
		// them).
		Eventually(func(g Gomega) {
			s := &v1alpha1.DossierStore{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: storeName}, s)).To(Succeed())
			g.Expect(s.Status.Conditions).To(ContainElement(And(
				HaveField("Type", v1alpha1.ConditionCompliant), HaveField("Status", metav1.ConditionTrue))),
				"%s is not Compliant: %s", storeName, failing(s))
		}).WithContext(ctx).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
		for _, key := range []client.ObjectKey{{Namespace: "cjg", Name: "cjg-dossiers"}, {Namespace: "veilig-thuis", Name: "vt-dossiers"}} {
			s := &v1alpha1.DossierStore{}
			Expect(k8s.Get(ctx, key, s)).To(Succeed())
			Expect(failing(s)).To(Equal(v1alpha1.ConditionRetentionEnforced), "%s: controls not passing, want only RetentionEnforced", key)
		}
		GinkgoWriter.Println("wijkteam-dossiers is Compliant; cjg and veilig-thuis fail only RetentionEnforced (no sweep ran for them)")
	})
})

// retentionDatabase is the database the policy's Secret wijkteam-db-credentials
// names: the demo application's (test/e2e/demodb), or else the throwaway
// PostgreSQL on the pod bridge (E2E_HOST_PG), for which the story writes
// that Secret. It returns the connection and the addresses the Job's log must
// not show.
func retentionDatabase(ctx context.Context) (*pgx.Conn, []string) {
	GinkgoHelper()
	if db, ok := demoDB(ctx); ok {
		s := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: dbSecretName}, s)).To(Succeed())
		return db, []string{string(s.Data["host"]), db.Config().Host}
	}
	if cfg.hostPG == "" {
		Skip("no database the pods can reach: the retention Job needs the demo database or E2E_HOST_PG (the local cluster's pod bridge)")
	}
	host, port, _ := strings.Cut(cfg.hostPG, ":")
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: dbSecretName, Namespace: storeNamespace, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
		StringData: map[string]string{"host": host, "port": port, "dbname": "postgres", "user": "postgres", "password": "unused", "sslmode": "disable"},
	}
	if err := k8s.Create(ctx, s); !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	return hostPG(ctx, "postgres"), []string{host}
}

// jobFromCronJob is `kubectl create job NAME --from=cronjob/CRONJOB`.
func jobFromCronJob(ctx context.Context, cronJob, name string) *batchv1.Job {
	GinkgoHelper()
	cj := &batchv1.CronJob{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: storeNamespace, Name: cronJob}, cj)).To(Succeed(), "CronJob %s of the policy", cronJob)
	labels := map[string]string{"app.kubernetes.io/part-of": partOf}
	for k, v := range cj.Spec.JobTemplate.Labels {
		labels[k] = v
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: storeNamespace, Labels: labels,
			Annotations: map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
				Controller: ptr.To(true)}},
		},
		Spec: cj.Spec.JobTemplate.Spec,
	}
}

// jobLog is the log of the sweep Job's pods.
func jobLog(ctx context.Context) string {
	GinkgoHelper()
	pods := &corev1.PodList{}
	Expect(k8s.List(ctx, pods, client.InNamespace(storeNamespace), client.MatchingLabels{"job-name": sweepJob})).To(Succeed())
	var out strings.Builder
	for _, p := range pods.Items {
		b, err := clientset.CoreV1().Pods(storeNamespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&out, "logs of %s: %v\n", p.Name, err)
			continue
		}
		out.Write(b)
	}
	return out.String()
}

// failing lists the controls of a store that do not pass, separated by spaces.
func failing(s *v1alpha1.DossierStore) string {
	var f []string
	for _, c := range s.Status.Compliance {
		if c.Result != v1alpha1.ResultPass {
			f = append(f, c.Control)
		}
	}
	return strings.Join(f, " ")
}

// tailText is the last n lines of s.
func tailText(s string, n int) string { return string(tail([]byte(s), n)) }
