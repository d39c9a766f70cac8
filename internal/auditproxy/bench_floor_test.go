package auditproxy

import (
	"context"
	"crypto"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/benchutil"
)

// floorSizes are the sizes of one BenchmarkProxyFloor run; -short gives the
// smoke run of make bench-proxy (a few seconds).
type floorSizes struct {
	rounds       int           // concurrency-1 rounds, one request to each target
	phase        time.Duration // one closed-loop phase at concurrency 64
	phases       int           // phases per target, interleaved
	fsyncSamples int
}

func floorSizesFor() floorSizes {
	if testing.Short() {
		return floorSizes{rounds: 150, phase: 300 * time.Millisecond, phases: 1, fsyncSamples: 100}
	}
	return floorSizes{rounds: 1000, phase: 1500 * time.Millisecond, phases: 2, fsyncSamples: benchFsyncSamples}
}

// floorTarget is one way to reach the application: the bare reverse proxy or
// the audit proxy with one kind of identity and one way of writing its log.
type floorTarget struct {
	name string
	srv  *httptest.Server
	set  func(*http.Request) // adds the identity
	// commits are the durable writes of its audit log; nil for the bare
	// proxy. Reported for the targets with stats.
	commits *commitSamples
	stats   bool
	// trace is the timeline of its requests at concurrency 1; nil for the
	// bare proxy.
	trace *timeline
}

// floorCPUProfile, when set, is where BenchmarkProxyFloor writes a CPU
// profile of the first concurrency-64 phase of each target, one file per
// upstream service time and target (the path with "-0ms-header" and the
// like before its extension; pprof's -diff_base with the bare target's
// shows what the audit proxy adds): go test -run '^$' -bench BenchmarkProxyFloor -benchtime=1x
// ./internal/auditproxy/ -floor-cpuprofile=/tmp/floor.pprof
var floorCPUProfile = flag.String("floor-cpuprofile", "", "write a CPU profile of BenchmarkProxyFloor's first concurrency-64 phase of each target to this file, with -<upstream>-<target> before its extension (pprof -diff_base bare's to see the audit proxy's own)")

// BenchmarkProxyFloor measures, in one run, the audit proxy against a bare
// httputil.ReverseProxy in front of the same application: the floor of one
// HTTP hop. For an upstream service time of 0 and 2 ms it reports, at
// concurrency 1 and 64, the p50 and p99 the audit proxy adds over the bare
// proxy with header identity and with JWT identity (the same ES256 token on
// every request), JWT over header at p50, throughput at concurrency 64 as a
// share of the bare proxy's, and the p50 of fsync on the directory of the
// audit log, measured in the same run. The header and JWT proxies write
// their logs as the proxy does (preallocated segments, fdatasync); a
// fourth target, "append", is header identity with the log appended and
// fsynced (Preallocate 0), the way of writing it before segments. For the
// header and append targets it reports their logs' own commits: events per
// commit, commits per request (concurrency 1) and per second (64), their
// syncs' p50 and the share of the phase spent in them, and the stages of
// their requests at concurrency 1 (bench_timeline_test.go). The probe also
// times fdatasync three ways (benchutil.SyncMode), each in a burst of syncs
// in a row before the requests, and, between the requests at concurrency
// 1, one sync per round (append+fsync and zeros+fdatasync in turn): a
// sync at the pace of the logs', which on a virtual disk takes longer than
// one in a burst (c1-probe-…-p50-µs). At concurrency 64 it reports the
// process's allocations and CPU time per request for every target
// (c64-…-allocs/req, c64-…-B/req, c64-…-cpu-µs/req: client, application
// and proxy; the audit proxy's own are the difference to the bare
// target's), and the bare target's CPU per request over each target's
// (c64-…-cpu-bound-share-%), the throughput share where CPU is the bound,
// which a loaded machine does not change as it changes req/s. Requests to the targets
// are interleaved (concurrency 1) or alternate in phases (concurrency 64),
// so they see the same load. Nothing is asserted on time; the figures are
// printed as metrics and as a table. Run with -benchtime=1x; -short is the
// smoke run. See docs/benchmarks-auditproxy.md.
func BenchmarkProxyFloor(b *testing.B) {
	for _, service := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run(fmt.Sprintf("upstream=%dms", service.Milliseconds()), func(b *testing.B) { benchFloor(b, service) })
	}
}

func benchFloor(b *testing.B, service time.Duration) {
	sz := floorSizesFor()
	dir := b.TempDir()
	body := make([]byte, benchResponseBytes)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if service > 0 {
			time.Sleep(service)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer app.Close()
	upstream, _ := url.Parse(app.URL)

	bareProxy := httputil.NewSingleHostReverseProxy(upstream)
	bareProxy.Transport = NewUpstreamTransport() // the audit proxy's pool, so that only the audit work differs
	bare := httptest.NewServer(bareProxy)
	defer bare.Close()

	header, closeHeader := floorAuditProxy(b, dir, "header", "header", upstream, auditlog.DefaultPreallocate)
	defer closeHeader()
	jwt, closeJWT := floorAuditProxy(b, dir, "jwt", "jwt", upstream, auditlog.DefaultPreallocate)
	defer closeJWT()
	appending, closeAppending := floorAuditProxy(b, dir, "append", "header", upstream, 0)
	defer closeAppending()
	header.stats, appending.stats = true, true
	targets := []floorTarget{{name: "bare", srv: bare, set: func(*http.Request) {}}, header, jwt, appending}

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256}}
	get := func(t floorTarget, traced bool) (time.Duration, error) {
		req, _ := http.NewRequest("GET", t.srv.URL+"/api/dossiers/D-9", nil)
		t.set(req)
		if t.trace != nil {
			t.trace.begin(traced)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		d := time.Since(t0)
		if t.trace != nil {
			t.trace.end()
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: status %d", t.name, resp.StatusCode)
		}
		return d, nil
	}
	for range 50 { // warm up connections, code paths and the token cache
		for _, t := range targets {
			if _, err := get(t, false); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.ResetTimer()
	probe := map[benchutil.SyncMode][]time.Duration{}
	for _, mode := range []benchutil.SyncMode{benchutil.AppendFsync, benchutil.AppendFdatasync, benchutil.ZeroedFdatasync, benchutil.FallocatedFdatasync} {
		probe[mode] = benchutil.SyncLatencies(b, dir, sz.fsyncSamples, mode)
	}

	// The probes of the rounds: one sync between the requests of every
	// round, append+fsync and zeros+fdatasync in turn, timed at the pace
	// and under the load of the logs' syncs (the probe above runs its syncs
	// in a row, alone).
	paced := []benchutil.SyncMode{benchutil.AppendFsync, benchutil.ZeroedFdatasync}
	pacedDir := b.TempDir()
	pacedProbes := make([]*benchutil.SyncProbe, len(paced))
	for i, mode := range paced {
		pacedProbes[i] = benchutil.NewSyncProbe(b, pacedDir, sz.rounds/len(paced)+1, mode)
		defer pacedProbes[i].Close()
	}
	pacedLat := make([][]time.Duration, len(paced))

	resetCommits(targets)
	c1 := make([][]time.Duration, len(targets))
	for round := range sz.rounds {
		// Each round starts at another target, so that none always follows
		// the same one (whose background fsync it would meet), and has the
		// probe's sync in another place.
		for k := range targets {
			i := (round + k) % len(targets)
			d, err := get(targets[i], true)
			if err != nil {
				b.Fatal(err)
			}
			c1[i] = append(c1[i], d)
			// The probe's place moves on every len(targets) rounds, so
			// that it follows each target, and comes just before each,
			// equally often.
			if k == (round/len(targets))%len(targets) {
				m := round % len(paced)
				pacedLat[m] = append(pacedLat[m], pacedProbes[m].Sample(b))
			}
		}
	}

	c1Commits := resetCommits(targets)
	c64 := make([][]time.Duration, len(targets))
	n := make([]int64, len(targets))
	elapsed := make([]time.Duration, len(targets))
	costs := make([]phaseCost, len(targets))
	for phase := range sz.phases {
		for i, t := range targets {
			stop := func() {}
			if phase == 0 && *floorCPUProfile != "" {
				stop = startCPUProfile(b, *floorCPUProfile, service, t.name)
			}
			before := readCost(b)
			lat, d := benchutil.ClosedLoop(b, benchConcurrency, sz.phase, func() (time.Duration, error) { return get(t, false) })
			costs[i] = costs[i].add(readCost(b).since(before))
			stop()
			c64[i], n[i], elapsed[i] = append(c64[i], lat...), n[i]+int64(len(lat)), elapsed[i]+d
		}
	}
	b.StopTimer()
	c64Commits := resetCommits(targets)

	fsync := probe[benchutil.AppendFsync]
	fsyncP50 := benchutil.Percentile(fsync, 50)
	b.ReportMetric(benchutil.Micros(fsyncP50), "fsync-p50-µs")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(fsync, 99)), "fsync-p99-µs")
	var table strings.Builder
	fmt.Fprintf(&table, "upstream %v; probe p50 (p99) µs: append+fsync %.0f (%.0f)", service,
		benchutil.Micros(fsyncP50), benchutil.Micros(benchutil.Percentile(fsync, 99)))
	for _, mode := range []benchutil.SyncMode{benchutil.AppendFdatasync, benchutil.ZeroedFdatasync, benchutil.FallocatedFdatasync} {
		p50 := benchutil.Percentile(probe[mode], 50)
		b.ReportMetric(benchutil.Micros(p50), "probe-"+mode.String()+"-p50-µs")
		fmt.Fprintf(&table, ", %s %.0f (%.0f)", mode, benchutil.Micros(p50), benchutil.Micros(benchutil.Percentile(probe[mode], 99)))
	}
	table.WriteString("; between the c1 requests:")
	for i, mode := range paced {
		p50 := benchutil.Percentile(pacedLat[i], 50)
		b.ReportMetric(benchutil.Micros(p50), "c1-probe-"+mode.String()+"-p50-µs")
		fmt.Fprintf(&table, " %s %.0f", mode, benchutil.Micros(p50))
	}
	table.WriteString("\n")
	rate := func(i int) float64 { return float64(n[i]) / elapsed[i].Seconds() }
	// The commits of the logs with stats, by concurrency and target.
	logs := map[string][]commitSummary{"c1": make([]commitSummary, len(targets)), "c64": make([]commitSummary, len(targets))}
	for i, t := range targets {
		if !t.stats {
			continue
		}
		one := summarise(c1Commits[i], 0)
		logs["c1"][i] = one
		b.ReportMetric(one.eventsPerCommit, "c1-"+t.name+"-events-per-commit")
		b.ReportMetric(float64(one.commits)/float64(sz.rounds), "c1-"+t.name+"-commits-per-request")
		b.ReportMetric(benchutil.Micros(one.syncP50), "c1-"+t.name+"-log-sync-p50-µs")
		many := summarise(c64Commits[i], elapsed[i])
		logs["c64"][i] = many
		b.ReportMetric(many.eventsPerCommit, "c64-"+t.name+"-events-per-commit")
		b.ReportMetric(many.perSecond, "c64-"+t.name+"-commits/s")
		b.ReportMetric(benchutil.Micros(many.syncP50), "c64-"+t.name+"-log-sync-p50-µs")
		b.ReportMetric(many.busy, "c64-"+t.name+"-log-sync-busy-%")
	}
	// One line per target and concurrency, so that the table fits the ten
	// lines a benchmark's log is cut to.
	fmt.Fprintf(&table, "%-7s %-4s %7s %7s %9s %9s %7s %7s %9s %9s %9s %6s\n", "target", "conc", "p50 µs", "p99 µs", "p50 added", "p99 added", "req/s", "of bare",
		"commits/s", "ev/commit", "sync p50", "busy")
	for _, conc := range []struct {
		name string
		lat  [][]time.Duration
	}{{"c1", c1}, {"c64", c64}} {
		bp50, bp99 := benchutil.Percentile(conc.lat[0], 50), benchutil.Percentile(conc.lat[0], 99)
		b.ReportMetric(benchutil.Micros(bp50), conc.name+"-bare-p50-µs")
		for i, t := range targets {
			p50, p99 := benchutil.Percentile(conc.lat[i], 50), benchutil.Percentile(conc.lat[i], 99)
			reqs, share, commits, perCommit, syncP50, busy := "", "", "", "", "", ""
			if conc.name == "c64" {
				reqs, share = fmt.Sprintf("%.0f", rate(i)), fmt.Sprintf("%.1f %%", 100*rate(i)/rate(0))
			}
			if l := logs[conc.name][i]; t.stats {
				perCommit, syncP50 = fmt.Sprintf("%.2f", l.eventsPerCommit), fmt.Sprintf("%.0f", benchutil.Micros(l.syncP50))
				if conc.name == "c64" {
					commits, busy = fmt.Sprintf("%.0f", l.perSecond), fmt.Sprintf("%.0f %%", l.busy)
				}
			}
			fmt.Fprintf(&table, "%-7s %-4s %7.0f %7.0f %9.0f %9.0f %7s %7s %9s %9s %9s %6s\n", t.name, conc.name, benchutil.Micros(p50), benchutil.Micros(p99),
				benchutil.Micros(p50-bp50), benchutil.Micros(p99-bp99), reqs, share, commits, perCommit, syncP50, busy)
			if i == 0 {
				continue
			}
			b.ReportMetric(benchutil.Micros(p50-bp50), fmt.Sprintf("%s-%s-p50-added-µs", conc.name, t.name))
			b.ReportMetric(benchutil.Micros(p99-bp99), fmt.Sprintf("%s-%s-p99-added-µs", conc.name, t.name))
		}
		b.ReportMetric(benchutil.Micros(benchutil.Percentile(conc.lat[2], 50)-benchutil.Percentile(conc.lat[1], 50)), conc.name+"-jwt-over-header-p50-µs")
	}
	b.ReportMetric(rate(0), "c64-bare-req/s")
	for i, t := range targets[1:] {
		b.ReportMetric(100*rate(i+1)/rate(0), "c64-"+t.name+"-throughput-%")
	}
	// Allocations and CPU time per request in the process (client,
	// application and proxy) at concurrency 64; over the bare target's,
	// the audit proxy's. The CPU a request takes hardly depends on what
	// else runs on the machine, its throughput does: the bare target's CPU
	// per request over a target's is the share of the bare throughput the
	// target reaches where the two cores are the bound (cpu-bound-share-%).
	// Metrics only: the table fills the ten lines of a benchmark's log.
	_, _, bareCPU := costs[0].perRequest(n[0])
	for i, t := range targets {
		objects, bytes, cpu := costs[i].perRequest(n[i])
		b.ReportMetric(objects, "c64-"+t.name+"-allocs/req")
		b.ReportMetric(bytes, "c64-"+t.name+"-B/req")
		b.ReportMetric(cpu, "c64-"+t.name+"-cpu-µs/req")
		if i > 0 && cpu > 0 {
			b.ReportMetric(100*bareCPU/cpu, "c64-"+t.name+"-cpu-bound-share-%")
		}
	}
	for _, t := range targets {
		if t.stats {
			t.trace.report(b.ReportMetric, t.name) // metrics only: the table fills the ten lines of a benchmark's log
		}
	}
	b.Log(strings.TrimRight(table.String(), "\n"))
}

// phaseCost is what the process spent in a phase: objects and bytes
// allocated, and CPU time (user and system).
type phaseCost struct {
	objects, bytes uint64
	cpu            time.Duration
}

// readCost reads the process's allocations and CPU time so far.
func readCost(b *testing.B) phaseCost {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return phaseCost{objects: m.Mallocs, bytes: m.TotalAlloc, cpu: cpu}
}

func (c phaseCost) since(before phaseCost) phaseCost {
	return phaseCost{objects: c.objects - before.objects, bytes: c.bytes - before.bytes, cpu: c.cpu - before.cpu}
}

func (c phaseCost) add(d phaseCost) phaseCost {
	return phaseCost{objects: c.objects + d.objects, bytes: c.bytes + d.bytes, cpu: c.cpu + d.cpu}
}

// perRequest is c per request of n requests (0 for none): objects, bytes
// and CPU microseconds.
func (c phaseCost) perRequest(n int64) (objects, bytes, cpuMicros float64) {
	if n == 0 {
		return 0, 0, 0
	}
	return float64(c.objects) / float64(n), float64(c.bytes) / float64(n), benchutil.Micros(c.cpu) / float64(n)
}

// startCPUProfile starts the CPU profile of one phase; the function it
// returns stops it.
func startCPUProfile(b *testing.B, path string, service time.Duration, target string) func() {
	ext := filepath.Ext(path)
	f, err := os.Create(fmt.Sprintf("%s-%dms-%s%s", strings.TrimSuffix(path, ext), service.Milliseconds(), target, ext))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatal(err) // -cpuprofile and -floor-cpuprofile cannot be combined
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// commitSamples collects the durable writes of one audit log.
type commitSamples struct {
	mu sync.Mutex
	c  []auditlog.Commit
}

func (s *commitSamples) add(c auditlog.Commit) {
	s.mu.Lock()
	s.c = append(s.c, c)
	s.mu.Unlock()
}

// reset returns the commits so far and starts anew.
func (s *commitSamples) reset() []auditlog.Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	s.c = nil
	return c
}

// resetCommits resets the commits of every target, returning them by
// target (nil for the bare proxy).
func resetCommits(targets []floorTarget) [][]auditlog.Commit {
	out := make([][]auditlog.Commit, len(targets))
	for i, t := range targets {
		if t.commits != nil {
			out[i] = t.commits.reset()
		}
	}
	return out
}

// commitSummary is what a phase's commits of one log come to.
type commitSummary struct {
	commits         int
	eventsPerCommit float64
	perSecond       float64 // 0 without the phase's duration
	syncP50         time.Duration
	busy            float64 // per cent of the phase spent syncing
}

// summarise sums up commits of a phase that lasted elapsed (0: unknown).
// Only commits that held events count: the checkpoints and genesis lines
// written alone are not a request's.
func summarise(commits []auditlog.Commit, elapsed time.Duration) commitSummary {
	var s commitSummary
	var events int
	var syncs []time.Duration
	var synced time.Duration
	for _, c := range commits {
		if c.Events == 0 {
			continue
		}
		s.commits++
		events += c.Events
		syncs = append(syncs, c.Sync)
		synced += c.Sync
	}
	if s.commits > 0 {
		s.eventsPerCommit = float64(events) / float64(s.commits)
	}
	s.syncP50 = benchutil.Percentile(syncs, 50)
	if elapsed > 0 {
		s.perSecond = float64(s.commits) / elapsed.Seconds()
		s.busy = 100 * synced.Seconds() / elapsed.Seconds()
	}
	return s
}

// floorAuditProxy is the audit proxy named name in front of upstream with
// its audit log in dir, identity by trusted-proxy header or by a JWT
// verified against static keys, the log preallocated in segments of
// prealloc bytes (0: appended and fsynced).
func floorAuditProxy(b *testing.B, dir, name, identity string, upstream *url.URL, prealloc int64) (floorTarget, func()) {
	keys := newTestKeys(b)
	commits := &commitSamples{}
	trace := newTimeline()
	w, err := auditlog.NewWriter(auditlog.Options{Path: filepath.Join(dir, name+".jsonl"), SigningKey: keys.signing,
		ObserveCommit: func(c auditlog.Commit) { commits.add(c); trace.observe(c) }, Preallocate: prealloc})
	if err != nil {
		b.Fatal(err)
	}
	src, auth, set := benchIdentity(b, identity)
	guard := auditlog.NewFloodGuard(w, auditlog.FloodOptions{}) // the sidecar's sink (server.go)
	p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: trace.sink(guard), PseudonymKey: keys.pseudonym})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(trace.handler(p))
	return floorTarget{name: name, srv: srv, set: set, commits: commits, trace: trace}, func() {
		srv.Close()
		p.Wait()
		if err := guard.Close(); err != nil { // and the writer
			b.Error(err)
		}
	}
}

// BenchmarkTokenIdentity is the cost of the identity of one bearer request:
// a token seen before (the cache) and a token never seen (ES256 signature
// check and claims).
func BenchmarkTokenIdentity(b *testing.B) {
	iss := newTestIssuer(b)
	a, err := NewAuthenticator(context.Background(), IdentityConfig{OIDC: &OIDCConfig{
		IssuerURL: iss.srv.URL, Audience: testAudience, StaticKeys: []crypto.PublicKey{&iss.key.PublicKey}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	auth := func(tok string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if _, aerr := a.Authenticate(r); aerr != nil {
			b.Fatal(aerr)
		}
	}
	b.Run("cached", func(b *testing.B) {
		tok := iss.token(b, "an@example.nl", []string{"coaches"}, nil)
		auth(tok)
		for b.Loop() {
			auth(tok)
		}
	})
	b.Run("verified", func(b *testing.B) {
		toks := make([]string, 512)
		for i := range toks {
			toks[i] = iss.token(b, fmt.Sprintf("user-%d", i), []string{"coaches"}, nil)
		}
		i := 0
		for b.Loop() {
			a.tokens = newTTLCache[Identity](tokenCacheSize, tokenCacheMaxAge, time.Now) // every token unseen
			auth(toks[i%len(toks)])
			i++
		}
	})
}
