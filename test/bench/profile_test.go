package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/internal/testenv"
)

// cpuChunk is the length of each CPU profile taken of the manager while it
// converges; the chunks are merged into one profile. The last chunk runs on
// past convergence by up to this much, while the manager is idle.
const cpuChunk = 5 * time.Second

// profileDir is where the manager's profiles go, from BENCH_PROFILE_DIR
// (relative to the repository root), or "" when none are taken.
func profileDir(b *testing.B) string {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return ""
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(testenv.RepoRoot(), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

// cpuProfiler takes CPU profiles of the manager, one cpuChunk after the
// other, from its pprof endpoint, until stopped.
type cpuProfiler struct {
	stop   context.CancelFunc
	done   chan struct{}
	chunks []*profile.Profile
	err    error
}

// startCPUProfile starts profiling the manager's CPU at base (its pprof
// address, "http://host:port").
func startCPUProfile(base string) *cpuProfiler {
	return startChunkedProfile("the manager", func() ([]byte, error) {
		return fetch(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(cpuChunk.Seconds())))
	})
}

// startAPIServerProfile starts profiling kube-apiserver's CPU through its
// own /debug/pprof/profile (profiling is on by default; the benchmark's
// client is an administrator).
func startAPIServerProfile(b *testing.B, env *testenv.Env) *cpuProfiler {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	return startChunkedProfile("kube-apiserver", func() ([]byte, error) {
		data, err := cs.RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(int(cpuChunk.Seconds()))).DoRaw(context.Background())
		if err != nil {
			return nil, fmt.Errorf("read kube-apiserver's profile: %w", err)
		}
		return data, nil
	})
}

// startChunkedProfile takes CPU profiles of who with take, one after the
// other, until stopped.
func startChunkedProfile(who string, take func() ([]byte, error)) *cpuProfiler {
	ctx, stop := context.WithCancel(context.Background())
	p := &cpuProfiler{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			// The chunk under way is taken to its end when stopped.
			data, err := take()
			if err != nil {
				p.err = err
				return
			}
			chunk, err := profile.ParseData(data)
			if err != nil {
				p.err = fmt.Errorf("parse a CPU profile of %s: %w", who, err)
				return
			}
			p.chunks = append(p.chunks, chunk)
		}
	}()
	return p
}

// finish waits for the chunk under way and writes the merged profile to path.
func (p *cpuProfiler) finish(b *testing.B, path string) {
	p.stop()
	<-p.done
	if p.err != nil {
		b.Fatal(p.err)
	}
	merged, err := profile.Merge(p.chunks)
	if err != nil {
		b.Fatalf("merge the CPU profiles: %v", err)
	}
	var buf bytes.Buffer
	if err := merged.Write(&buf); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

// writeHeapProfile writes the manager's heap profile, after a collection,
// to path.
func writeHeapProfile(b *testing.B, base, path string) {
	data, err := fetch(base + "/debug/pprof/heap?gc=1")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
}

func fetch(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("read the manager's profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the manager's profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the manager's profile: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return data, nil
}

// printTop prints the top of a profile as `go tool pprof -top` shows it.
func printTop(b *testing.B, title, path string, args ...string) {
	cmd := exec.Command("go", append(append([]string{"tool", "pprof", "-top", "-nodecount=25"}, args...), path)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("go tool pprof %s: %v\n%s", path, err, out)
	}
	fmt.Printf("%s (%s):\n%s", title, path, out)
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go builds the manager for).
const clockTicks = 100

// cpuTime reads the CPU time a process has used, user and system, from
// /proc/<pid>/stat.
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	d, err := parseCPUTime(string(data))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// parseCPUTime reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may itself hold spaces and parentheses, so the fields are counted from
// the last ')'.
func parseCPUTime(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc stat line without a command name: %q", stat)
	}
	// After the name: field 3 (state) is rest[0], so field k is rest[k-3].
	rest := strings.Fields(stat[end+1:])
	if len(rest) < 13 {
		return 0, fmt.Errorf("/proc stat line with %d fields after the command name, want at least 13", len(rest))
	}
	var ticks int64
	for _, f := range rest[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat CPU time %q: %w", f, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// loadAverage is the machine's load average over one minute, as
// /proc/loadavg has it.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// reconciles reads the manager's reconcile counters
// (controller_runtime_reconcile_total) from its metrics endpoint, by
// controller and result.
func reconciles(b *testing.B, metricsURL string) map[string]float64 {
	data, err := fetch(metricsURL)
	if err != nil {
		b.Fatal(err)
	}
	return parseReconciles(string(data))
}

// parseReconciles sums controller_runtime_reconcile_total of a Prometheus
// text exposition by "controller result".
func parseReconciles(exposition string) map[string]float64 {
	const name = "controller_runtime_reconcile_total{"
	out := map[string]float64{}
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		end := strings.LastIndex(line, "}")
		if end < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil || v == 0 {
			continue
		}
		labels := line[len(name):end]
		out[label(labels, "controller")+" "+label(labels, "result")] += v
	}
	return out
}

// installedMemoryLimit is the Go memory limit the manager gets in an
// installation with the chart's defaults (--go-memory-limit-ratio of
// resources.limits.memory, charts/dossierguard/values.yaml), so that the
// benchmark's manager collects garbage as an installed one does; the
// benchmark passes it as GOMEMLIMIT, since its manager runs in no
// container. BENCH_MEMLIMIT=off gives the manager none (0).
func installedMemoryLimit(b *testing.B) int64 {
	if os.Getenv("BENCH_MEMLIMIT") == "off" {
		return 0
	}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "charts", "dossierguard", "values.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	limit, err := memoryLimitOf(data)
	if err != nil {
		b.Fatal(err)
	}
	return limit
}

// memoryLimitOf reads the manager's Go memory limit from the chart's
// values: manager.goMemoryLimitRatio of resources.limits.memory.
func memoryLimitOf(values []byte) (int64, error) {
	var v struct {
		Manager struct {
			GoMemoryLimitRatio *float64 `json:"goMemoryLimitRatio"`
		} `json:"manager"`
		Resources struct {
			Limits struct {
				Memory string `json:"memory"`
			} `json:"limits"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(values, &v); err != nil {
		return 0, fmt.Errorf("the chart's values: %w", err)
	}
	if v.Manager.GoMemoryLimitRatio == nil || v.Resources.Limits.Memory == "" {
		return 0, fmt.Errorf("the chart's values have no manager.goMemoryLimitRatio or resources.limits.memory")
	}
	q, err := resource.ParseQuantity(v.Resources.Limits.Memory)
	if err != nil {
		return 0, fmt.Errorf("the chart's resources.limits.memory: %w", err)
	}
	return int64(float64(q.Value()) * *v.Manager.GoMemoryLimitRatio), nil
}

// apiserverHandlers shows kube-apiserver's CPU by cumulative time, which
// puts the request handlers (create, patch and apply, update, get, list,
// watch) and what they call (admission, the field manager, encoding,
// storage) at the top.
var apiserverHandlers = []string{"-cum"}
