package auditproxy

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
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
// the audit proxy with one kind of identity.
type floorTarget struct {
	name string
	srv  *httptest.Server
	set  func(*http.Request) // adds the identity
}

// BenchmarkProxyFloor measures, in one run, the audit proxy against a bare
// httputil.ReverseProxy in front of the same application: the floor of one
// HTTP hop. For an upstream service time of 0 and 2 ms it reports, at
// concurrency 1 and 64, the p50 and p99 the audit proxy adds over the bare
// proxy with header identity and with JWT identity (the same ES256 token on
// every request), JWT over header at p50, throughput at concurrency 64 as a
// share of the bare proxy's, and the p50 of fsync on the directory of the
// audit log, measured in the same run. Requests to the three targets are
// interleaved (concurrency 1) or alternate in phases (concurrency 64), so
// they see the same load. Nothing is asserted on time; the figures are
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

	logSyncs := &syncSamples{}
	header, closeHeader := floorAuditProxy(b, dir, "header", upstream, logSyncs)
	defer closeHeader()
	jwt, closeJWT := floorAuditProxy(b, dir, "jwt", upstream, logSyncs)
	defer closeJWT()
	targets := []floorTarget{{name: "bare", srv: bare, set: func(*http.Request) {}}, header, jwt}

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256}}
	get := func(t floorTarget) (time.Duration, error) {
		req, _ := http.NewRequest("GET", t.srv.URL+"/api/dossiers/D-9", nil)
		t.set(req)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: status %d", t.name, resp.StatusCode)
		}
		return d, nil
	}
	for range 50 { // warm up connections, code paths and the token cache
		for _, t := range targets {
			if _, err := get(t); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.ResetTimer()
	fsync := benchutil.FsyncLatencies(b, dir, sz.fsyncSamples)

	logSyncs.reset()
	c1 := make([][]time.Duration, len(targets))
	for round := range sz.rounds {
		// Each round starts at another target, so that none always follows
		// the same one (whose background fsync it would meet).
		for k := range targets {
			i := (round + k) % len(targets)
			d, err := get(targets[i])
			if err != nil {
				b.Fatal(err)
			}
			c1[i] = append(c1[i], d)
		}
	}

	c1Syncs := logSyncs.reset()
	c64 := make([][]time.Duration, len(targets))
	n := make([]int64, len(targets))
	elapsed := make([]time.Duration, len(targets))
	for range sz.phases {
		for i, t := range targets {
			lat, d := benchutil.ClosedLoop(b, benchConcurrency, sz.phase, func() (time.Duration, error) { return get(t) })
			c64[i], n[i], elapsed[i] = append(c64[i], lat...), n[i]+int64(len(lat)), elapsed[i]+d
		}
	}
	b.StopTimer()

	fsyncP50 := benchutil.Percentile(fsync, 50)
	b.ReportMetric(benchutil.Micros(fsyncP50), "fsync-p50-µs")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(fsync, 99)), "fsync-p99-µs")
	logSyncP50 := benchutil.Percentile(c1Syncs, 50)
	b.ReportMetric(benchutil.Micros(logSyncP50), "c1-log-fsync-p50-µs")
	b.ReportMetric(float64(len(c1Syncs))/float64(2*sz.rounds), "c1-log-fsyncs-per-request")
	var table strings.Builder
	fmt.Fprintf(&table, "upstream %v, fsync p50 %.0f µs, p99 %.0f µs (probe); the logs' own fsyncs at c1: p50 %.0f µs, %.2f per audited request\n", service,
		benchutil.Micros(fsyncP50), benchutil.Micros(benchutil.Percentile(fsync, 99)), benchutil.Micros(logSyncP50), float64(len(c1Syncs))/float64(2*sz.rounds))
	fmt.Fprintf(&table, "%-8s %-6s %10s %10s %14s %14s %12s %10s\n", "target", "conc", "p50 µs", "p99 µs", "p50 added µs", "p99 added µs", "req/s", "of bare")
	rate := func(i int) float64 { return float64(n[i]) / elapsed[i].Seconds() }
	for _, conc := range []struct {
		name string
		lat  [][]time.Duration
	}{{"c1", c1}, {"c64", c64}} {
		bp50, bp99 := benchutil.Percentile(conc.lat[0], 50), benchutil.Percentile(conc.lat[0], 99)
		b.ReportMetric(benchutil.Micros(bp50), conc.name+"-bare-p50-µs")
		for i, t := range targets {
			p50, p99 := benchutil.Percentile(conc.lat[i], 50), benchutil.Percentile(conc.lat[i], 99)
			reqs, share := "", ""
			if conc.name == "c64" {
				reqs, share = fmt.Sprintf("%.0f", rate(i)), fmt.Sprintf("%.1f %%", 100*rate(i)/rate(0))
			}
			fmt.Fprintf(&table, "%-8s %-6s %10.0f %10.0f %14.0f %14.0f %12s %10s\n", t.name, conc.name, benchutil.Micros(p50), benchutil.Micros(p99), benchutil.Micros(p50-bp50), benchutil.Micros(p99-bp99), reqs, share)
			if i == 0 {
				continue
			}
			b.ReportMetric(benchutil.Micros(p50-bp50), fmt.Sprintf("%s-%s-p50-added-µs", conc.name, t.name))
			b.ReportMetric(benchutil.Micros(p99-bp99), fmt.Sprintf("%s-%s-p99-added-µs", conc.name, t.name))
		}
		b.ReportMetric(benchutil.Micros(benchutil.Percentile(conc.lat[2], 50)-benchutil.Percentile(conc.lat[1], 50)), conc.name+"-jwt-over-header-p50-µs")
	}
	b.ReportMetric(rate(0), "c64-bare-req/s")
	b.ReportMetric(100*rate(1)/rate(0), "c64-header-throughput-%")
	b.ReportMetric(100*rate(2)/rate(0), "c64-jwt-throughput-%")
	b.Log(strings.TrimRight(table.String(), "\n"))
}

// syncSamples collects the durations of the audit logs' own fsyncs.
type syncSamples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *syncSamples) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// reset returns the samples so far and starts anew.
func (s *syncSamples) reset() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.d
	s.d = nil
	return d
}

// floorAuditProxy is the audit proxy in front of upstream with its audit log
// in dir, identity by trusted-proxy header or by a JWT verified against
// static keys.
func floorAuditProxy(b *testing.B, dir, identity string, upstream *url.URL, syncs *syncSamples) (floorTarget, func()) {
	keys := newTestKeys(b)
	w, err := auditlog.NewWriter(auditlog.Options{Path: filepath.Join(dir, identity+".jsonl"), SigningKey: keys.signing, ObserveSync: syncs.add})
	if err != nil {
		b.Fatal(err)
	}
	src, auth, set := benchIdentity(b, identity)
	p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: w, PseudonymKey: keys.pseudonym})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(p)
	return floorTarget{name: identity, srv: srv, set: set}, func() {
		srv.Close()
		p.Wait()
		if err := w.Close(); err != nil {
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
