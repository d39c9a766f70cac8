package auditproxy

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/benchutil"
)

// The benchmark's sizes: bounded, so that one run takes about half a minute
// on two shared cores.
const (
	benchLatencyPairs  = 1000                    // direct/proxied request pairs at concurrency 1
	benchConcurrency   = 64                      // clients in the throughput phase
	benchPhase         = 1500 * time.Millisecond // length of one throughput phase
	benchPhases        = 2                       // direct and proxied phases each, interleaved
	benchWriterEvents  = 2000                    // events per writer-only measurement
	benchFsyncSamples  = 300
	benchResponseBytes = 256
)

// countingSink counts the events that became durable. With
// dropCompletions it drops completion events instead of appending them: a
// lower bound that shows what the decision event alone costs.
type countingSink struct {
	EventSink
	dropCompletions bool
	n               atomic.Int64
}

func (c *countingSink) Append(ctx context.Context, ev auditlog.Event) error {
	if c.dropCompletions && ev.Outcome == auditlog.OutcomeAllowed && ev.Status != 0 {
		return nil
	}
	err := c.EventSink.Append(ctx, ev)
	if err == nil {
		c.n.Add(1)
	}
	return err
}

// benchMode is one configuration of the proxy under benchmark.
type benchMode struct {
	name            string
	sync            bool   // SyncCompletion
	identity        string // header or jwt
	tmpfs           bool   // audit log on /dev/shm: fsync costs nothing
	dropCompletions bool   // see countingSink
}

// BenchmarkAuditProxy measures, in one run, what the audit proxy adds to
// calling the application directly, over loopback, with the audit log in
// b.TempDir() and real fsync:
//
//   - p50-added-µs, p99-added-µs: added latency at concurrency 1 (direct and
//     proxied requests alternate, so both see the same machine load);
//   - throughput-%: proxied requests per second as a share of direct ones at
//     concurrency 64;
//   - durable-events/s: events appended (and fsynced) per second by the
//     proxy in the proxied throughput phase.
//
// The sub-benchmarks vary how the completion event is appended (in the
// background or before the response is passed on) and how callers are
// identified (trusted-proxy header or a verified ES256 JWT). Run with
// -benchtime=1x; see docs/benchmarks-auditproxy.md.
func BenchmarkAuditProxy(b *testing.B) {
	b.Run("disk", benchDisk)
	for _, mode := range []benchMode{
		{name: "completion=async/identity=header", identity: "header"},
		{name: "completion=sync/identity=header", sync: true, identity: "header"},
		{name: "completion=async/identity=jwt", identity: "jwt"},
		// Explanations, not modes of the proxy: what the decision event
		// alone costs, and what the proxy costs when fsync is free.
		{name: "bound=decision-only/identity=header", identity: "header", dropCompletions: true},
		{name: "bound=tmpfs/identity=header", identity: "header", tmpfs: true},
	} {
		b.Run(mode.name, func(b *testing.B) { benchProxy(b, mode) })
	}
	b.Run("scaling", benchScaling)
	b.Run("sharing", benchSharing)
}

// benchDisk measures fsync latency and the writer alone, with one appender
// and with 64 (group commit).
func benchDisk(b *testing.B) {
	dir := b.TempDir()
	lat := benchutil.FsyncLatencies(b, dir, benchFsyncSamples)
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(lat, 50)), "fsync-p50-µs")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(lat, 99)), "fsync-p99-µs")

	keys := newTestKeys(b)
	for _, c := range []int{1, benchConcurrency} {
		w, err := auditlog.NewWriter(auditlog.Options{Path: filepath.Join(dir, fmt.Sprintf("writer-%d.jsonl", c)), SigningKey: keys.signing})
		if err != nil {
			b.Fatal(err)
		}
		ev := benchEvent(keys)
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= benchWriterEvents {
					if err := w.Append(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(benchWriterEvents/elapsed.Seconds(), fmt.Sprintf("writer-c%d-events/s", c))
	}
}

func benchEvent(keys testKeys) auditlog.Event {
	return auditlog.Event{
		TraceID: randomHexID(16), OperationID: randomHexID(8), Actor: "an@example.nl", Roles: []string{"basis", "intake"},
		Action: auditlog.ActionRead, Categories: []string{"identity", "contact", "request"}, Outcome: auditlog.OutcomeAllowed,
		Method: "GET", Route: "read-dossier", ProcessingActivityID: "https://register.example.nl/verwerkingen/wijkteam-ondersteuning",
		DataSubject: auditlog.Pseudonymise(keys.pseudonym, "D-9"),
	}
}

// benchSetup is an application and the proxy in front of it.
type benchSetup struct {
	app, proxy *httptest.Server
	p          *Proxy
	w          *auditlog.Writer
	sink       *countingSink
	get        func(base string) error
}

func (s *benchSetup) close(b *testing.B) {
	s.proxy.Close()
	s.app.Close()
	s.p.Wait()
	if err := s.w.Close(); err != nil {
		b.Fatal(err)
	}
}

func newBenchSetup(b *testing.B, mode benchMode) *benchSetup {
	body := make([]byte, benchResponseBytes)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))

	keys := newTestKeys(b)
	dir := b.TempDir()
	if mode.tmpfs {
		d, err := os.MkdirTemp("/dev/shm", "auditproxy-bench-")
		if err != nil {
			b.Skipf("no tmpfs at /dev/shm: %v", err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(d) })
		dir = d
	}
	w, err := auditlog.NewWriter(auditlog.Options{Path: filepath.Join(dir, "audit.jsonl"), SigningKey: keys.signing})
	if err != nil {
		b.Fatal(err)
	}
	sink := &countingSink{EventSink: w, dropCompletions: mode.dropCompletions}
	syncCompletion, identity := mode.sync, mode.identity
	src, auth, setIdentity := benchIdentity(b, identity)
	upstream, _ := url.Parse(app.URL)
	p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: sink, PseudonymKey: keys.pseudonym, SyncCompletion: syncCompletion})
	if err != nil {
		b.Fatal(err)
	}
	proxy := httptest.NewServer(p)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	get := func(base string) error {
		req, _ := http.NewRequest("GET", base+"/api/dossiers/D-9", nil)
		setIdentity(req)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Warm up connections and code paths.
	for range 50 {
		if err := get(app.URL); err != nil {
			b.Fatal(err)
		}
		if err := get(proxy.URL); err != nil {
			b.Fatal(err)
		}
	}
	return &benchSetup{app: app, proxy: proxy, p: p, w: w, sink: sink, get: get}
}

func benchProxy(b *testing.B, mode benchMode) {
	s := newBenchSetup(b, mode)
	defer s.close(b)
	get, app, proxy, p, sink := s.get, s.app, s.proxy, s.p, s.sink

	b.ResetTimer()
	// Latency at concurrency 1, direct and proxied alternating.
	direct := make([]time.Duration, 0, benchLatencyPairs)
	proxied := make([]time.Duration, 0, benchLatencyPairs)
	for range benchLatencyPairs {
		t0 := time.Now()
		if err := get(app.URL); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := get(proxy.URL); err != nil {
			b.Fatal(err)
		}
		direct, proxied = append(direct, t1.Sub(t0)), append(proxied, time.Since(t1))
	}

	// Throughput at concurrency 64, direct and proxied phases alternating.
	var directN, proxiedN int64
	var directT, proxiedT time.Duration
	eventsBefore := sink.n.Load()
	for range benchPhases {
		n, d := benchutil.Throughput(b, benchConcurrency, benchPhase, func() error { return get(app.URL) })
		directN, directT = directN+n, directT+d
		n, d = benchutil.Throughput(b, benchConcurrency, benchPhase, func() error { return get(proxy.URL) })
		proxiedN, proxiedT = proxiedN+n, proxiedT+d
	}
	p.Wait() // completion events still being appended count too
	events := sink.n.Load() - eventsBefore
	b.StopTimer()

	p50d, p50p := benchutil.Percentile(direct, 50), benchutil.Percentile(proxied, 50)
	p99d, p99p := benchutil.Percentile(direct, 99), benchutil.Percentile(proxied, 99)
	directRate, proxiedRate := float64(directN)/directT.Seconds(), float64(proxiedN)/proxiedT.Seconds()
	b.ReportMetric(benchutil.Micros(p50d), "p50-direct-µs")
	b.ReportMetric(benchutil.Micros(p50p), "p50-proxied-µs")
	b.ReportMetric(benchutil.Micros(p50p-p50d), "p50-added-µs")
	b.ReportMetric(benchutil.Micros(p99d), "p99-direct-µs")
	b.ReportMetric(benchutil.Micros(p99p), "p99-proxied-µs")
	b.ReportMetric(benchutil.Micros(p99p-p99d), "p99-added-µs")
	b.ReportMetric(directRate, "direct-req/s")
	b.ReportMetric(proxiedRate, "proxied-req/s")
	b.ReportMetric(100*proxiedRate/directRate, "throughput-%")
	b.ReportMetric(float64(events)/proxiedT.Seconds(), "durable-events/s")
}

// benchSharing measures, in one run at concurrency 1 with the requests
// interleaved, what a partner's request costs next to a staff request on
// the same proxy (identity by header, asynchronous completion):
//
//   - p50-staff-µs: a staff request decided from roles;
//   - p50-partner-warm-µs, p50-partner-added-µs: a partner request under a
//     per-dossier consent agreement with the consent answer in the cache,
//     and what it adds over the staff request;
//   - p50-partner-cold-µs, p50-cold-added-µs: the same for a dossier never
//     asked before, which costs one look-up at the consent source;
//   - p50-consent-roundtrip-µs: one GET to the consent source directly, the
//     round trip a cold look-up should add.
func benchSharing(b *testing.B) {
	body := make([]byte, benchResponseBytes)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer app.Close()
	consent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer consent.Close()

	keys := newTestKeys(b)
	w, err := auditlog.NewWriter(auditlog.Options{Path: filepath.Join(b.TempDir(), "audit.jsonl"), SigningKey: keys.signing})
	if err != nil {
		b.Fatal(err)
	}
	doc := integrationDocument()
	doc.Agreements = []accesspolicy.Agreement{{
		Name: "school", Partner: "De Regenboog", PartnerType: v1alpha1.PartnerSchool, Direction: v1alpha1.DirectionIngress,
		Subjects:   []accesspolicy.PartnerSubject{{Kind: v1alpha1.PartnerSubjectGroup, Name: "regenboog"}},
		Categories: []v1alpha1.DataCategory{"identity", "contact", "request"}, Purpose: "Afstemming met school",
		LegalBasis: v1alpha1.BasisConsent, ConsentMode: v1alpha1.ConsentPerDossier,
	}}
	src, auth := loopbackPolicy(b, doc)
	// The longest bound keeps the warm dossier's answer cached for the run.
	consents, err := NewHTTPConsents(consent.URL+"/consent/{dossier}?agreement={agreement}", nil, 4*benchLatencyPairs, v1alpha1.MaxConsentCacheTTL, nil)
	if err != nil {
		b.Fatal(err)
	}
	upstream, _ := url.Parse(app.URL)
	p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: w, PseudonymKey: keys.pseudonym, Consents: consents})
	if err != nil {
		b.Fatal(err)
	}
	proxy := httptest.NewServer(p)
	defer func() {
		proxy.Close()
		p.Wait()
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 16, MaxIdleConnsPerHost: 16}}
	get := func(url, user, groups string) (time.Duration, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if user != "" {
			req.Header.Set(DefaultUserHeader, user)
			req.Header.Set(DefaultGroupsHeader, groups)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return d, nil
	}
	staff := func() (time.Duration, error) { return get(proxy.URL+"/api/dossiers/D-9", "an@example.nl", "coaches") }
	warm := func() (time.Duration, error) { return get(proxy.URL+"/api/dossiers/D-9", "lvs@regenboog", "regenboog") }
	var cold atomic.Int64
	coldGet := func() (time.Duration, error) {
		return get(fmt.Sprintf("%s/api/dossiers/C-%d", proxy.URL, cold.Add(1)), "lvs@regenboog", "regenboog")
	}
	roundTrip := func() (time.Duration, error) { return get(consent.URL+"/consent/warmup?agreement=school", "", "") }
	for range 50 { // warm up connections, code paths and the warm dossier's cache entry
		for _, f := range []func() (time.Duration, error){staff, warm, coldGet, roundTrip} {
			if _, err := f(); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.ResetTimer()
	series := [4][]time.Duration{}
	for range benchLatencyPairs {
		for i, f := range []func() (time.Duration, error){staff, warm, coldGet, roundTrip} {
			d, err := f()
			if err != nil {
				b.Fatal(err)
			}
			series[i] = append(series[i], d)
		}
	}
	b.StopTimer()
	ps, pw, pc, pr := benchutil.Percentile(series[0], 50), benchutil.Percentile(series[1], 50), benchutil.Percentile(series[2], 50), benchutil.Percentile(series[3], 50)
	b.ReportMetric(benchutil.Micros(ps), "p50-staff-µs")
	b.ReportMetric(benchutil.Micros(pw), "p50-partner-warm-µs")
	b.ReportMetric(benchutil.Micros(pw-ps), "p50-partner-added-µs")
	b.ReportMetric(benchutil.Micros(pc), "p50-partner-cold-µs")
	b.ReportMetric(benchutil.Micros(pc-pw), "p50-cold-added-µs")
	b.ReportMetric(benchutil.Micros(pr), "p50-consent-roundtrip-µs")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(series[1], 99)-benchutil.Percentile(series[0], 99)), "p99-partner-added-µs")
}

// benchScaling measures proxied and direct throughput at rising
// concurrency: group commit shares one fsync among all events waiting, so
// durable events per second grow with concurrency.
func benchScaling(b *testing.B) {
	s := newBenchSetup(b, benchMode{identity: "header"})
	defer s.close(b)
	b.ResetTimer()
	for _, c := range []int{1, 8, 64, 256} {
		dn, dt := benchutil.Throughput(b, c, benchPhase, func() error { return s.get(s.app.URL) })
		before := s.sink.n.Load()
		pn, pt := benchutil.Throughput(b, c, benchPhase, func() error { return s.get(s.proxy.URL) })
		s.p.Wait()
		events := s.sink.n.Load() - before
		direct, proxied := float64(dn)/dt.Seconds(), float64(pn)/pt.Seconds()
		b.ReportMetric(proxied, fmt.Sprintf("c%d-proxied-req/s", c))
		b.ReportMetric(100*proxied/direct, fmt.Sprintf("c%d-throughput-%%", c))
		b.ReportMetric(float64(events)/pt.Seconds(), fmt.Sprintf("c%d-durable-events/s", c))
	}
}

// benchIdentity is what both proxy benchmarks give the proxy: the policy
// of the integration document, an authenticator for header or JWT
// ("jwt") identity, and how a request carries that identity.
func benchIdentity(b *testing.B, identity string) (*PolicySource, *Authenticator, func(*http.Request)) {
	b.Helper()
	pol, err := NewPolicy(integrationDocument())
	if err != nil {
		b.Fatal(err)
	}
	src := NewPolicySource("unused", nil)
	src.Set(pol)
	idCfg := IdentityConfig{TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	set := func(r *http.Request) {
		r.Header.Set(DefaultUserHeader, "an@example.nl")
		r.Header.Set(DefaultGroupsHeader, "coaches")
	}
	if identity == "jwt" {
		iss := newTestIssuer(b) // only its key and signer are used: verification is offline
		idCfg = IdentityConfig{OIDC: &OIDCConfig{IssuerURL: iss.srv.URL, Audience: testAudience, StaticKeys: []crypto.PublicKey{&iss.key.PublicKey}}}
		tok := iss.token(b, "an@example.nl", []string{"coaches"}, nil)
		set = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	auth, err := NewAuthenticator(context.Background(), idCfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return src, auth, set
}
