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
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// BenchmarkConvergence creates BENCH_STORES stores at once (100 by default),
// each with an access role, a sharing agreement and a retention policy, and
// reports the time until all of them are Ready and settled, the manager's
// peak RSS (and, sampled, how much of it was anonymous memory and how much
// the executable's file-backed pages), the writes the API server received to converge (by verb and
// resource, and per store), and the writes it receives in BENCH_QUIET
// seconds (30 by default) after convergence, which must be zero. The
// OpenReports Report CRD is installed, so the manager keeps a Report of every
// resource, and converged includes every Report saying what its resource's
// status says. Convergence is watched through informers, so the benchmark
// itself puts no load on the API server while it waits, and checked
// incrementally (convergence), so that it costs the shared cores little;
// it prints its own CPU time, the control plane's, and where the manager
// waited (printWaits). The floor, in the
// same run, is a plain concurrent client writing the same final objects,
// children, statuses, Reports and Events once each. It also prints the
// manager's CPU time to converge (user and system, from /proc/<pid>/stat),
// per store, and the machine's load average. With BENCH_PROFILE_DIR set
// (relative to the repository root, say bin/test-artefacts/bench), the
// manager runs with its pprof endpoint: a CPU profile over the convergence
// and a heap profile at the end are written there and the top of each is
// printed, and the manager reports its collections (GODEBUG=gctrace=1):
// the highest live heap and goal are printed (MB-peak-heap-live,
// MB-peak-heap-goal). BENCH_WORKERS sets the manager's --max-concurrent-reconciles
// (its default otherwise). Run with -benchtime=1x.
func BenchmarkConvergence(b *testing.B) {
	stores := envInt("BENCH_STORES", 100)
	quiet := time.Duration(envInt("BENCH_QUIET", 30)) * time.Second
	for i := 0; i < b.N; i++ {
		runConvergence(b, stores, quiet)
	}
}

func runConvergence(b *testing.B, n int, quiet time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := testenv.StartWithReportCRDs()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()

	profiles := profileDir(b)
	manager, metricsURL, pprofURL, gc := startManager(b, env, profiles != "")
	defer func() { _ = manager.Process.Kill(); _ = manager.Wait() }()
	waitHTTP(b, metricsURL)
	rssKinds := sampleRSS(manager.Process.Pid, 200*time.Millisecond)

	c := env.Client
	if err := c.Create(ctx, &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "encrypted"},
		Provisioner: "ebs.csi.aws.com", Parameters: map[string]string{"encrypted": "true"},
	}); err != nil {
		b.Fatal(err)
	}
	// "bench" holds the stores; "dossierguard-system" is the operator's
	// namespace, where the stores keep their public checkpoint keys;
	// "floor" receives the plain client's copies.
	for _, ns := range []string{"bench", "dossierguard-system", floorNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	ctrllog.SetLogger(logr.Discard()) // the benchmark's informers log nothing worth reading
	tracker := newConvergence(4 * n)
	startWatch(ctx, b, env, tracker)

	initial := apiserverWrites(b, env)
	loadBefore, cpuBefore := loadAverage(), cpuTime(b, manager.Process.Pid)
	selfBefore, planeBefore := selfCPU(b), controlPlaneCPU(b)
	mgrBefore, apiBefore := scrape(b, metricsURL, managerMetrics), apiserverSamples(b, env)
	var cpuProfile, apiProfile *cpuProfiler
	if profiles != "" {
		cpuProfile, apiProfile = startCPUProfile(pprofURL), startAPIServerProfile(b, env)
	}
	b.ResetTimer()
	start := time.Now()
	tracker.restart()
	// As many creates in flight as the floor has writes: a store with its
	// role, agreement and policy, one after the other, per job.
	creator := unlimitedClient(b, env)
	creates := make([]func() error, n)
	for i := range creates {
		creates[i] = func() error {
			for _, obj := range benchSet(i) {
				if err := creator.Create(ctx, obj); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if err := concurrently(floorWorkers, creates); err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	select {
	case <-tracker.allDone():
	case <-time.After(15 * time.Minute):
		ready, settled, inStep, _ := tracker.counts()
		b.Fatalf("not all %d stores Ready and settled after 15 minutes: %d of %d objects Ready, %d stores settled, %d Reports in step",
			n, ready, 4*n, settled, inStep)
	}
	toConverge := time.Since(start)
	b.StopTimer()
	cpuToConverge, loadAfter := cpuTime(b, manager.Process.Pid)-cpuBefore, loadAverage()
	selfToConverge, planeAfter := selfCPU(b)-selfBefore, controlPlaneCPU(b)
	mgrWaits, apiWaits := scrape(b, metricsURL, managerMetrics).since(mgrBefore), apiserverSamples(b, env).since(apiBefore)
	reconciled := reconciles(b, metricsURL)
	cpuPath := filepath.Join(profiles, fmt.Sprintf("manager-cpu-%d.pprof", n))
	apiPath := filepath.Join(profiles, fmt.Sprintf("apiserver-cpu-%d.pprof", n))
	if cpuProfile != nil {
		cpuProfile.finish(b, cpuPath)
		apiProfile.finish(b, apiPath)
	}

	before := apiserverWrites(b, env)
	// The writes made to converge, less the benchmark's own creates.
	byKind := writesBetween(initial, before)
	for _, k := range []string{"POST dossierstores", "POST accessroles", "POST sharingagreements", "POST retentionpolicies"} {
		byKind[k] -= float64(n)
	}
	time.Sleep(quiet)
	after := apiserverWrites(b, env)
	writes := 0.0
	for k, d := range writesBetween(before, after) {
		b.Logf("write after convergence: %s x%.0f", k, d)
		writes += d
	}
	rss := float64(peakRSS(b, manager.Process.Pid)) / (1 << 20)
	anonPeak, filePeak := rssKinds.finish()
	heapPath := filepath.Join(profiles, fmt.Sprintf("manager-heap-%d.pprof", n))
	if profiles != "" {
		writeHeapProfile(b, pprofURL, heapPath)
	}
	// The manager is done; stop it so that it does not reconcile the
	// floor's copies.
	_ = manager.Process.Kill()
	_ = manager.Wait()

	selfBeforeFloor, planeBeforeFloor := selfCPU(b), controlPlaneCPU(b)
	if profiles != "" {
		apiProfile = startAPIServerProfile(b, env)
	}
	floorTime, floorKinds := runFloor(ctx, b, env, n)
	selfFloor, planeFloor := selfCPU(b)-selfBeforeFloor, controlPlaneCPU(b)
	apiFloorPath := filepath.Join(profiles, fmt.Sprintf("apiserver-floor-cpu-%d.pprof", n))
	if profiles != "" {
		apiProfile.finish(b, apiFloorPath)
	}

	operatorWrites, floorWrites := total(byKind), total(floorKinds)
	// Printed, not logged: a benchmark's log is cut after a few lines.
	fmt.Printf("writes to converge per store, by verb and resource (%d stores; the floor without the 4 creates of each store's resources):\n", n)
	fmt.Printf("  %-40s %9s %9s\n", "verb resource", "operator", "floor")
	for _, k := range sortedKeys(byKind, floorKinds) {
		fmt.Printf("  %-40s %9.2f %9.2f\n", k, byKind[k]/float64(n), floorKinds[k]/float64(n))
	}
	fmt.Printf("  %-40s %9.2f %9.2f\n", "all", operatorWrites/float64(n), floorWrites/float64(n))
	fmt.Printf("time: operator %.1f s to all Ready and settled (creating took %.1f s); floor %.1f s; operator/floor %.2f\n",
		toConverge.Seconds(), created.Seconds(), floorTime.Seconds(), toConverge.Seconds()/floorTime.Seconds())
	fmt.Printf("manager: %.1f s of CPU to converge (user and system), %.1f ms per store; peak RSS %.0f MiB; load average %s at the start, %s at convergence\n",
		cpuToConverge.Seconds(), cpuToConverge.Seconds()*1000/float64(n), rss, loadBefore, loadAfter)
	fmt.Printf("manager: peak resident memory by kind, sampled every 200 ms: anonymous (heap, stacks, runtime) %.0f MiB, file-backed (the executable's pages) %.0f MiB\n",
		float64(anonPeak)/(1<<20), float64(filePeak)/(1<<20))
	if gc != nil {
		live, goal := gc.peaks()
		fmt.Printf("manager: Go heap by its collections (GODEBUG=gctrace=1), to convergence and the heap profile: at most %d MB live after a collection, the goal at most %d MB\n", live, goal)
		b.ReportMetric(float64(live), "MB-peak-heap-live")
		b.ReportMetric(float64(goal), "MB-peak-heap-goal")
	}
	fmt.Printf("benchmark process (creates, informers, convergence check): %.1f s of CPU to converge, %.1f s in the floor's run\n",
		selfToConverge.Seconds(), selfFloor.Seconds())
	fmt.Printf("control plane CPU to converge: %s; in the floor's run: %s\n", cpuSince(planeAfter, planeBefore), cpuSince(planeFloor, planeBeforeFloor))
	fmt.Printf("objects converged (Ready, settled, Report in step), seconds after the first create, by kind:\n%s", tracker.timeline())
	printWaits(mgrWaits, apiWaits, n)
	fmt.Printf("reconciles to converge per store, by controller and result (%d stores):\n", n)
	for _, k := range sortedKeys(reconciled, nil) {
		fmt.Printf("  %-40s %9.2f\n", k, reconciled[k]/float64(n))
	}
	if limit := installedMemoryLimit(b); limit > 0 {
		fmt.Printf("manager: GOMEMLIMIT %.0f MiB, as the chart's defaults give an installation (BENCH_MEMLIMIT=off for none)\n", float64(limit)/(1<<20))
	} else {
		fmt.Println("manager: no GOMEMLIMIT (BENCH_MEMLIMIT=off)")
	}
	if profiles != "" {
		printTop(b, "manager CPU while converging", cpuPath)
		printTop(b, "manager heap in use after convergence", heapPath, "-sample_index=inuse_space")
		printTop(b, "kube-apiserver CPU while the manager converged, by request handler", apiPath, apiserverHandlers...)
		printTop(b, "kube-apiserver CPU in the floor's run, by request handler", apiFloorPath, apiserverHandlers...)
	}

	b.ReportMetric(float64(n), "stores")
	b.ReportMetric(float64(4*n), "objects")
	b.ReportMetric(created.Seconds(), "s-to-create")
	b.ReportMetric(toConverge.Seconds(), "s-to-all-ready")
	b.ReportMetric(floorTime.Seconds(), "s-floor")
	b.ReportMetric(toConverge.Seconds()/floorTime.Seconds(), "operator/floor-time")
	b.ReportMetric(operatorWrites/floorWrites, "operator/floor-writes")
	b.ReportMetric(rss, "MiB-peak-rss")
	b.ReportMetric(float64(anonPeak)/(1<<20), "MiB-peak-rss-anon")
	b.ReportMetric(float64(filePeak)/(1<<20), "MiB-peak-rss-file")
	b.ReportMetric(cpuToConverge.Seconds()*1000/float64(n), "manager-cpu-ms-per-store")
	b.ReportMetric(selfToConverge.Seconds(), "bench-cpu-s-to-converge")
	b.ReportMetric(operatorWrites/float64(n), "writes-per-store-to-converge")
	b.ReportMetric(floorWrites/float64(n), "floor-writes-per-store")
	b.ReportMetric(writes, "writes-after-convergence")
	if writes > 0 {
		b.Errorf("the manager made %.0f writes after convergence; want none when nothing changes", writes)
	}
}

// startWatch starts informers on the kinds whose state says convergence,
// in the benchmark's namespace, and feeds their changes to the tracker.
func startWatch(ctx context.Context, b *testing.B, env *testenv.Env, tracker *convergence) {
	watch, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{"bench": {}},
		DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range []client.Object{&v1alpha1.DossierStore{}, &v1alpha1.AccessRole{}, &v1alpha1.SharingAgreement{}, &v1alpha1.RetentionPolicy{}, &openreportsv1alpha1.Report{}} {
		inf, err := watch.GetInformer(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inf.AddEventHandler(tracker.handler()); err != nil {
			b.Fatal(err)
		}
	}
	go func() { _ = watch.Start(ctx) }()
	if !watch.WaitForCacheSync(ctx) {
		b.Fatal("the benchmark's informers did not sync")
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

// apiserverMetricsText reads the API server's /metrics.
func apiserverMetricsText(b *testing.B, env *testenv.Env) string {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	data, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}

// apiserverSamples are the API server's request durations.
func apiserverSamples(b *testing.B, env *testenv.Env) samples {
	return parseSamples(apiserverMetricsText(b, env), apiserverMetrics...)
}

// scrape reads the samples of the named metrics from a metrics endpoint.
func scrape(b *testing.B, url string, prefixes []string) samples {
	data, err := fetch(url)
	if err != nil {
		b.Fatal(err)
	}
	return parseSamples(string(data), prefixes...)
}

// apiserverWrites reads the API server's own request counters of every
// verb that changes something, by verb and resource.
func apiserverWrites(b *testing.B, env *testenv.Env) map[string]float64 {
	data := apiserverMetricsText(b, env)
	out := map[string]float64{}
	for _, line := range strings.Split(data, "\n") {
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

// writesBetween is the writes made between two readings, by verb and
// resource, but for the leases that kube-apiserver renews on its own (the
// manager runs without leader election here).
func writesBetween(from, to map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range to {
		if d := v - from[k]; d > 0 && !strings.HasSuffix(k, " leases") {
			out[k] = d
		}
	}
	return out
}

func total(m map[string]float64) float64 {
	sum := 0.0
	for _, v := range m {
		sum += v
	}
	return sum
}

// sortedKeys are the keys of both maps, the most written first.
func sortedKeys(a, b map[string]float64) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]float64{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if a[keys[i]] != a[keys[j]] {
			return a[keys[i]] > a[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
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
// the control plane; with profile, its pprof endpoint is on too. It returns
// the process, the metrics URL and the pprof base URL ("" without profile).
func startManager(b *testing.B, env *testenv.Env, profile bool) (*exec.Cmd, string, string, *gcTrace) {
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
	args := []string{"manager", "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr, "--zap-log-level", "error", "--enable-webhook=false"}
	if w := os.Getenv("BENCH_WORKERS"); w != "" {
		args = append(args, "--max-concurrent-reconciles", w)
	}
	pprofURL := ""
	if profile {
		pprofAddr := freeAddr(b)
		args = append(args, "--pprof-bind-address", pprofAddr)
		pprofURL = "http://" + pprofAddr
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kcPath)
	if limit := installedMemoryLimit(b); limit > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMEMLIMIT=%d", limit))
	}
	cmd.Stderr = os.Stderr
	// With the profiles, the runtime reports each collection on stderr:
	// the live heap and the goal, which the RSS does not separate.
	var trace *gcTrace
	if profile {
		trace = &gcTrace{out: os.Stderr}
		cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1")
		cmd.Stderr = trace
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, "http://" + metricsAddr + "/metrics", pprofURL, trace
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
