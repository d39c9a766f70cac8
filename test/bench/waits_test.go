package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// samples is a Prometheus text exposition as "name{labels}" to value, the
// lines of the named metrics only.
type samples map[string]float64

// parseSamples reads the samples of the metrics whose names start with one
// of prefixes from a Prometheus text exposition.
func parseSamples(exposition string, prefixes ...string) samples {
	out := samples{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		match := false
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		sep := strings.LastIndexByte(line, ' ')
		if sep < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sep+1:], 64)
		if err != nil {
			continue
		}
		out[line[:sep]] = v
	}
	return out
}

// since is s less earlier, sample by sample.
func (s samples) since(earlier samples) samples {
	out := samples{}
	for k, v := range s {
		out[k] = v - earlier[k]
	}
	return out
}

// by sums the samples of metric (its full name, such as
// "workqueue_adds_total") by the values of the given labels, joined by a
// space (a missing label is "").
func (s samples) by(metric string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		name, rest, ok := strings.Cut(k, "{")
		if name != metric {
			continue
		}
		if !ok {
			rest = ""
		}
		vals := make([]string, len(labels))
		for i, l := range labels {
			vals[i] = label(rest, l)
		}
		out[strings.Join(vals, " ")] += v
	}
	return out
}

// histogramRow is the count, the sum and the mean of a histogram's
// observations under one key.
type histogramRow struct {
	key        string
	count, sum float64
}

func (r histogramRow) mean() float64 {
	if r.count == 0 {
		return 0
	}
	return r.sum / r.count
}

// histogram sums a histogram's _count and _sum by labels, the largest sum
// first, leaving out keys without observations and those skip says to.
func (s samples) histogram(metric string, skip func(key string) bool, labels ...string) []histogramRow {
	counts, sums := s.by(metric+"_count", labels...), s.by(metric+"_sum", labels...)
	var rows []histogramRow
	for k, c := range counts {
		if c <= 0 || (skip != nil && skip(k)) {
			continue
		}
		rows = append(rows, histogramRow{key: k, count: c, sum: sums[k]})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].sum != rows[j].sum {
			return rows[i].sum > rows[j].sum
		}
		return rows[i].key < rows[j].key
	})
	return rows
}

// printHistogram prints rows as a table: per store, the seconds in all and
// the mean in milliseconds.
func printHistogram(title string, rows []histogramRow, n int, max int) {
	fmt.Printf("%s (%d stores):\n", title, n)
	fmt.Printf("  %-44s %10s %10s %10s\n", "", "per store", "seconds", "mean ms")
	for i, r := range rows {
		if i == max {
			break
		}
		fmt.Printf("  %-44s %10.2f %10.1f %10.2f\n", r.key, r.count/float64(n), r.sum, r.mean()*1000)
	}
}

// managerMetrics are the manager's metrics that say where it waits: the
// time its calls to the API server take (client-go), the time items sit in
// its work queues and are worked on, its reconciles and their time, its
// retries.
var managerMetrics = []string{"rest_client_request_duration_seconds", "rest_client_requests_total", "workqueue_", "controller_runtime_reconcile_"}

// apiserverMetrics are the API server's own request durations and counts
// (the latter by response code).
var apiserverMetrics = []string{"apiserver_request_duration_seconds_sum", "apiserver_request_duration_seconds_count", "apiserver_request_total"}

// printWaits prints where the manager's time went while it converged, from
// the differences of its metrics and the API server's over the convergence.
func printWaits(mgr, apiserver samples, n int) {
	printHistogram("manager: calls to the API server by method (client-go rest_client_request_duration_seconds)",
		mgr.histogram("rest_client_request_duration_seconds", nil, "verb"), n, 10)
	codes := mgr.by("rest_client_requests_total", "method", "code")
	keys := sortedKeys(codes, nil)
	fmt.Printf("manager: calls to the API server by method and code, per store (%d stores):\n", n)
	for _, k := range keys {
		if codes[k] > 0 {
			fmt.Printf("  %-44s %10.2f\n", k, codes[k]/float64(n))
		}
	}
	notWatch := func(k string) bool { return strings.HasPrefix(k, "WATCH") || strings.HasPrefix(k, "CONNECT") }
	printHistogram("API server: requests by verb and resource, all clients (apiserver_request_duration_seconds)",
		apiserver.histogram("apiserver_request_duration_seconds", notWatch, "verb", "resource", "subresource"), n, 16)
	refused := apiserver.by("apiserver_request_total", "verb", "resource", "subresource", "code")
	fmt.Printf("API server: requests refused, all clients, by verb, resource and code (409 a conflict, 429 too many requests), per store (%d stores):\n", n)
	for _, k := range sortedKeys(refused, nil) {
		if code := k[strings.LastIndexByte(k, ' ')+1:]; refused[k] > 0 && code != "" && code[0] != '2' && !strings.HasPrefix(k, "WATCH") {
			fmt.Printf("  %-44s %10.2f\n", k, refused[k]/float64(n))
		}
	}
	printHistogram("manager: time in the work queue before a worker took the item (workqueue_queue_duration_seconds)",
		mgr.histogram("workqueue_queue_duration_seconds", nil, "name"), n, 10)
	printHistogram("manager: time a worker spent on an item (workqueue_work_duration_seconds)",
		mgr.histogram("workqueue_work_duration_seconds", nil, "name"), n, 10)
	adds, retries := mgr.by("workqueue_adds_total", "name"), mgr.by("workqueue_retries_total", "name")
	errs := mgr.by("controller_runtime_reconcile_errors_total", "controller")
	fmt.Printf("manager: queue adds, delayed adds (workqueue_retries_total: RequeueAfter, and backoff after an error) and errors per store (%d stores):\n", n)
	fmt.Printf("  %-44s %10s %10s %10s\n", "controller", "adds", "delayed", "errors")
	for _, k := range sortedKeys(adds, nil) {
		fmt.Printf("  %-44s %10.2f %10.2f %10.2f\n", k, adds[k]/float64(n), retries[k]/float64(n), errs[k]/float64(n))
	}
}

// selfCPU is the CPU time, user and system, the benchmark's own process has
// used (all its threads; not its children, the API server and etcd).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// controlPlaneCPU is the CPU time used so far by the benchmark's own child
// processes named kube-apiserver and etcd (envtest's control plane), by
// name.
func controlPlaneCPU(b *testing.B) map[string]time.Duration {
	out := map[string]time.Duration{}
	self := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		stat := string(data)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		name, rest := stat[open+1:end], strings.Fields(stat[end+1:])
		if len(rest) < 2 || rest[1] != self || (name != "kube-apiserver" && name != "etcd") {
			continue
		}
		d, err := parseCPUTime(stat)
		if err != nil {
			b.Fatal(err)
		}
		out[name] += d
	}
	return out
}

// cpuSince is the CPU each process used since before, as "name 1.2 s".
func cpuSince(now, before map[string]time.Duration) string {
	names := make([]string, 0, len(now))
	for k := range now {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f s", k, (now[k]-before[k]).Seconds()))
	}
	return strings.Join(parts, ", ")
}
