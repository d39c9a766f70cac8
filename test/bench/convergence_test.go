// Package bench holds benchmarks that need a control plane: convergence of
// many DossierStores under a manager running as its own process, so that its
// peak memory and its API writes can be measured.
package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// BenchmarkConvergence creates BENCH_STORES stores at once (100 by default),
// each with an access role, a sharing agreement and a retention policy, and
// reports the time until all of them are Ready, the manager's peak RSS, and
// the writes the API server receives in BENCH_QUIET seconds (30 by default)
// after convergence, which should be zero. The OpenReports Report CRD is
// installed, so the manager keeps a Report of every resource, and converged
// includes every Report saying what its resource's status says. The
// baseline is the time the API server takes to accept the objects. Run
// with -benchtime=1x.
func BenchmarkConvergence(b *testing.B) {
	stores := envInt("BENCH_STORES", 100)
	quiet := time.Duration(envInt("BENCH_QUIET", 30)) * time.Second
	for i := 0; i < b.N; i++ {
		runConvergence(b, stores, quiet)
	}
}

func runConvergence(b *testing.B, n int, quiet time.Duration) {
	ctx := context.Background()
	env, err := testenv.StartWithReportCRDs()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()

	manager, metricsURL := startManager(b, env)
	defer func() { _ = manager.Process.Kill(); _ = manager.Wait() }()
	waitHTTP(b, metricsURL)

	c := env.Client
	if err := c.Create(ctx, &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "encrypted"},
		Provisioner: "ebs.csi.aws.com", Parameters: map[string]string{"encrypted": "true"},
	}); err != nil {
		b.Fatal(err)
	}
	// "bench" holds the stores; "dossierguard-system" is the operator's
	// namespace, where the stores keep their public checkpoint keys.
	for _, ns := range []string{"bench", "dossierguard-system"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}

	initial := apiserverWrites(b, env)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		for _, obj := range benchSet(i) {
			if err := c.Create(ctx, obj); err != nil {
				b.Fatal(err)
			}
		}
	}
	created := time.Since(start)
	for {
		if ready := countReady(b, env); ready == 4*n && storesSettled(b, env) == n && reportsInStep(b, env) == 4*n {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("not all %d stores Ready after 10 minutes", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	converged := time.Since(start)
	b.StopTimer()

	before := apiserverWrites(b, env)
	// The writes made to converge, less the benchmark's own creates.
	toConverge := sumWrites(initial, before) - float64(4*n)
	time.Sleep(quiet)
	after := apiserverWrites(b, env)
	writes := 0.0
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			b.Logf("write after convergence: %s x%.0f", k, d)
			// kube-apiserver renews its own identity lease every 10 s; the
			// manager runs without leader election here.
			if !strings.HasSuffix(k, " leases") {
				writes += d
			}
		}
	}

	b.ReportMetric(float64(n), "stores")
	b.ReportMetric(float64(4*n), "objects")
	b.ReportMetric(created.Seconds(), "s-to-create")
	b.ReportMetric(converged.Seconds(), "s-to-all-ready")
	b.ReportMetric(converged.Seconds()/created.Seconds(), "ready/create-ratio")
	b.ReportMetric(float64(peakRSS(b, manager.Process.Pid))/(1<<20), "MiB-peak-rss")
	b.ReportMetric(toConverge/float64(n), "writes-per-store-to-converge")
	b.ReportMetric(writes, "writes-after-convergence")
	if writes > 0 {
		b.Errorf("the manager made %.0f writes after convergence; want none when nothing changes", writes)
	}
}

func benchStore(i int) *v1alpha1.DossierStore {
	return &v1alpha1.DossierStore{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("store-%04d", i), Namespace: "bench"},
		Spec: v1alpha1.DossierStoreSpec{
			Service:        v1alpha1.ServiceNeighbourhoodTeam,
			Organisation:   "Gemeente Voorbeeldstad",
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryContact},
			Workload: v1alpha1.WorkloadSpec{
				Selector:           metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", i)}},
				ServiceAccountName: "app", AppPort: 8080,
			},
			Storage: v1alpha1.StorageSpec{StorageClassName: "encrypted", Size: "1Gi"},
		},
	}
}

// benchSet is a store with a role, an agreement in force and a retention policy.
func benchSet(i int) []client.Object {
	store := benchStore(i)
	ref := v1alpha1.StoreReference{Name: store.Name}
	name := func(kind string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: fmt.Sprintf("%s-%04d", kind, i), Namespace: store.Namespace}
	}
	return []client.Object{
		store,
		&v1alpha1.AccessRole{ObjectMeta: name("role"), Spec: v1alpha1.AccessRoleSpec{
			StoreRef: ref, Subjects: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "coaches"}},
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}, Actions: []v1alpha1.Action{v1alpha1.ActionRead}, Purpose: "bench"}},
		&v1alpha1.SharingAgreement{ObjectMeta: name("share"), Spec: v1alpha1.SharingAgreementSpec{
			StoreRef: ref, Partner: v1alpha1.Partner{Type: v1alpha1.PartnerReferralIndex, Name: "Verwijsindex", CIDRs: []string{"192.0.2.0/28"}},
			LegalBasis: v1alpha1.BasisLegalObligation, LegalReference: "Jeugdwet art. 7.1.4.1",
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}, Purpose: "bench"}},
		&v1alpha1.RetentionPolicy{ObjectMeta: name("retention"), Spec: v1alpha1.RetentionPolicySpec{
			StoreRef: ref, Database: v1alpha1.DatabaseSpec{CredentialsSecretName: "db"}, Schedule: "0 3 * * *",
			Rules: []v1alpha1.RetentionRule{{Name: "dossiers", Table: "dossiers", Period: "P5Y",
				Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockLastContact, Column: "last_contact_at"}}}}},
	}
}

// countReady counts the objects of every kind whose Ready condition is True.
func countReady(b *testing.B, env *testenv.Env) int {
	ctx := context.Background()
	ready := 0
	for _, list := range []client.ObjectList{&v1alpha1.DossierStoreList{}, &v1alpha1.AccessRoleList{}, &v1alpha1.SharingAgreementList{}, &v1alpha1.RetentionPolicyList{}} {
		if err := env.Client.List(ctx, list); err != nil {
			b.Fatal(err)
		}
		items, _ := meta.ExtractList(list)
		for _, item := range items {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(item)
			if err != nil {
				b.Fatal(err)
			}
			conds, _, _ := unstructured.NestedSlice(u, "status", "conditions")
			for _, c := range conds {
				m := c.(map[string]any)
				if m["type"] == v1alpha1.ConditionReady && m["status"] == "True" {
					ready++
				}
			}
		}
	}
	return ready
}

// storesSettled counts the stores whose status reflects their referrers:
// the agreement in force, the role rendered, the retention policy seen.
func storesSettled(b *testing.B, env *testenv.Env) int {
	list := &v1alpha1.DossierStoreList{}
	if err := env.Client.List(context.Background(), list); err != nil {
		b.Fatal(err)
	}
	settled := 0
	for _, s := range list.Items {
		if s.Status.Agreements == nil || s.Status.Agreements.InForce != 1 {
			continue
		}
		ok := 0
		for _, c := range s.Status.Compliance {
			if (c.Control == "AccessControlDefined" && c.Result == v1alpha1.ResultPass) ||
				(c.Control == "RetentionEnforced" && c.Reason == "AwaitingFirstRun") {
				ok++
			}
		}
		if ok == 2 {
			settled++
		}
	}
	return settled
}

// reportsInStep counts the resources whose OpenReports Report has the
// results of their status.compliance.
func reportsInStep(b *testing.B, env *testenv.Env) int {
	ctx := context.Background()
	reports := &openreportsv1alpha1.ReportList{}
	if err := env.Client.List(ctx, reports); err != nil {
		b.Fatal(err)
	}
	byScope := map[types.UID]openreportsv1alpha1.Report{}
	for _, r := range reports.Items {
		if r.Scope != nil {
			byScope[r.Scope.UID] = r
		}
	}
	inStep := 0
	for _, list := range []client.ObjectList{&v1alpha1.DossierStoreList{}, &v1alpha1.AccessRoleList{}, &v1alpha1.SharingAgreementList{}, &v1alpha1.RetentionPolicyList{}} {
		if err := env.Client.List(ctx, list); err != nil {
			b.Fatal(err)
		}
		items, _ := meta.ExtractList(list)
		for _, item := range items {
			o := item.(client.Object)
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(item)
			if err != nil {
				b.Fatal(err)
			}
			rows, _, _ := unstructured.NestedSlice(u, "status", "compliance")
			r, ok := byScope[o.GetUID()]
			if !ok || len(r.Results) != len(rows) || len(rows) == 0 {
				continue
			}
			same := true
			for i, row := range rows {
				m := row.(map[string]any)
				if r.Results[i].Policy != m["control"] || r.Results[i].Description != m["message"] ||
					string(r.Results[i].Result) != strings.ToLower(fmt.Sprint(m["result"])) && m["result"] != "Unknown" {
					same = false
				}
			}
			if same {
				inStep++
			}
		}
	}
	return inStep
}

// apiserverWrites reads the API server's own request counters of every
// verb that changes something, by verb and resource.
func apiserverWrites(b *testing.B, env *testenv.Env) map[string]float64 {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	data, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels := line[len("apiserver_request_total{"):strings.LastIndex(line, "}")]
		verb, resource, sub := label(labels, "verb"), label(labels, "resource"), label(labels, "subresource")
		switch verb {
		case "GET", "LIST", "WATCH", "WATCHLIST", "CONNECT":
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			continue
		}
		if sub != "" {
			resource += "/" + sub
		}
		out[verb+" "+resource] += v
	}
	return out
}

// sumWrites adds up the writes made between two readings, but for the
// leases that kube-apiserver renews on its own.
func sumWrites(from, to map[string]float64) float64 {
	sum := 0.0
	for k, v := range to {
		if d := v - from[k]; d > 0 && !strings.HasSuffix(k, " leases") {
			sum += d
		}
	}
	return sum
}

func label(labels, name string) string {
	i := strings.Index(labels, name+"=\"")
	if i < 0 {
		return ""
	}
	rest := labels[i+len(name)+2:]
	return rest[:strings.Index(rest, "\"")]
}

// startManager builds the dossierguard binary and runs its manager against
// the control plane.
func startManager(b *testing.B, env *testenv.Env) (*exec.Cmd, string) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "dossierguard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dossierguard")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		b.Fatal(err)
	}
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		b.Fatal(err)
	}
	metricsAddr, probeAddr := freeAddr(b), freeAddr(b)
	cmd := exec.Command(bin, "manager", "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr, "--zap-log-level", "error", "--enable-webhook=false")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kcPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, "http://" + metricsAddr + "/metrics"
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func waitHTTP(b *testing.B, url string) {
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("manager metrics at %s did not come up", url)
}

// peakRSS reads the high-water mark of a process's resident memory.
func peakRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
