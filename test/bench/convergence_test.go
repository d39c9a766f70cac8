// Package bench holds benchmarks that need a control plane: convergence of
// many DossierStores under a manager running as its own process, so that its
// peak memory and its API writes can be measured.
package bench

import (
	"bufio"
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
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// BenchmarkConvergence creates BENCH_STORES stores at once (100 by default)
// and reports the time until all are Ready, the manager's peak RSS, and the
// API writes the manager makes in BENCH_QUIET seconds (30 by default) after
// convergence, which should be zero. Run with -benchtime=1x.
func BenchmarkConvergence(b *testing.B) {
	stores := envInt("BENCH_STORES", 100)
	quiet := time.Duration(envInt("BENCH_QUIET", 30)) * time.Second
	for i := 0; i < b.N; i++ {
		runConvergence(b, stores, quiet)
	}
}

func runConvergence(b *testing.B, n int, quiet time.Duration) {
	ctx := context.Background()
	env, err := testenv.Start()
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
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := c.Create(ctx, benchStore(i)); err != nil {
			b.Fatal(err)
		}
	}
	created := time.Since(start)
	for {
		if ready := countReady(b, env); ready == n {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("not all %d stores Ready after 10 minutes", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	converged := time.Since(start)
	b.StopTimer()

	before := scrapeWrites(b, metricsURL)
	time.Sleep(quiet)
	after := scrapeWrites(b, metricsURL)

	b.ReportMetric(float64(n), "stores")
	b.ReportMetric(created.Seconds(), "s-to-create")
	b.ReportMetric(converged.Seconds(), "s-to-all-ready")
	b.ReportMetric(converged.Seconds()/created.Seconds(), "ready/create-ratio")
	b.ReportMetric(float64(peakRSS(b, manager.Process.Pid))/(1<<20), "MiB-peak-rss")
	b.ReportMetric(after-before, "writes-after-convergence")
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

func countReady(b *testing.B, env *testenv.Env) int {
	list := &v1alpha1.DossierStoreList{}
	if err := env.Client.List(context.Background(), list); err != nil {
		b.Fatal(err)
	}
	ready := 0
	for _, s := range list.Items {
		if meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) {
			ready++
		}
	}
	return ready
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
	cmd := exec.Command(bin, "manager", "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr, "--zap-log-level", "error")
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

// scrapeWrites sums the manager's client-go requests that write.
func scrapeWrites(b *testing.B, url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	total := 0.0
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		for _, verb := range []string{`method="POST"`, `method="PUT"`, `method="PATCH"`, `method="DELETE"`} {
			if strings.Contains(line, verb) {
				v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
				if err == nil {
					total += v
				}
			}
		}
	}
	return total
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
