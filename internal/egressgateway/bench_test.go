package egressgateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/benchutil"
)

// The benchmark's sizes: bounded, so that one run takes well under a
// minute on two shared cores.
const (
	benchLatencyRounds = 1000                    // rounds of direct, bare-proxy and gateway requests at concurrency 1
	benchConcurrency   = 32                      // clients in the throughput phases
	benchPhase         = 1500 * time.Millisecond // length of one throughput phase
	benchPhases        = 2                       // phases of each kind, interleaved
	benchFsyncSamples  = 300
	benchBody          = `{"signaal":{"bsn":"000000000","naam":"...","straat":"..."}}`
)

// BenchmarkEgressGateway measures, in one run, what the egress gateway adds
// to calling the TLS partner directly (with the same client certificate and
// CA), over loopback, with the audit log in b.TempDir() written as the
// gateway writes it (auditLogOptions: preallocated segments, fdatasync):
//
//   - p50/p99 of direct, bare (a plain httputil.ReverseProxy in front of
//     the partner with the gateway's TLS transport: the floor of one HTTP
//     hop) and gateway requests at concurrency 1, interleaved so that all
//     see the same load; the added latency over direct and over bare;
//   - requests per second at concurrency 32 and the gateway's throughput as
//     a share of direct and bare;
//   - fsync-p50-µs: the disk's fsync in the same run, since each allowed
//     request waits for one (its decision event).
//
// Callers are authenticated by a table of tokens: KubernetesSenders keeps
// a verdict for a minute, so a TokenReview is not on the warm path this
// measures. Sub-benchmarks: completion event in the background (the
// default) or before the response is passed on, and, as an explanation,
// the audit log on tmpfs (fsync free). Run with -benchtime=1x;
// see docs/benchmarks-egress.md.
func BenchmarkEgressGateway(b *testing.B) {
	b.Run("completion=async", func(b *testing.B) { benchGateway(b, false, false) })
	b.Run("completion=sync", func(b *testing.B) { benchGateway(b, true, false) })
	// An explanation, not a mode: what the gateway costs when fsync is free.
	b.Run("bound=tmpfs", func(b *testing.B) { benchGateway(b, false, true) })
}

func benchGateway(b *testing.B, syncCompletion, tmpfs bool) {
	serverCA, clientCA := newTestCA(b, "partner CA"), newTestCA(b, "client CA")
	partner := newTestPartnerDiscarding(b, serverCA, clientCA)
	dir := b.TempDir()
	certPEM, keyPEM := clientCA.issue(b, "cjg-egress", false)
	writeTLSDir(b, dir, "verwijsindex", serverCA.certPEM, certPEM, keyPEM)
	transports := &PartnerTransports{Dir: dir, Configure: func(t *http.Transport) { t.ForceAttemptHTTP2 = false }}

	logDir := dir
	if tmpfs {
		d, err := os.MkdirTemp("/dev/shm", "egress-bench-")
		if err != nil {
			b.Skipf("no tmpfs at /dev/shm: %v", err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(d) })
		logDir = d
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	w, err := auditlog.NewWriter(auditLogOptions(Config{AuditLogPath: filepath.Join(logDir, "audit.jsonl"), SigningKey: priv}))
	if err != nil {
		b.Fatal(err)
	}
	var events atomic.Int64
	sink := &countingSink{w: w, n: &events}
	gw, err := New(Options{Policies: policySource(b, testDocument(testAgreement(partner.URL+"/api"))), Callers: workloadTokens{"app-token": appPod},
		Transports: transports, Audit: sink, PseudonymKey: testPseudonymKey, SyncCompletion: syncCompletion})
	if err != nil {
		b.Fatal(err)
	}
	gateway := httptest.NewServer(gw)
	defer gateway.Close()
	rt, err := transports.For("verwijsindex", true)
	if err != nil {
		b.Fatal(err)
	}
	target, _ := url.Parse(partner.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, Transport: rt})
	defer bare.Close()

	// The application's clients: plain HTTP to the gateway and the bare
	// proxy; to the partner directly with the same TLS as the gateway.
	plain := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	direct := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: serverCA.pool(), Certificates: []tls.Certificate{cert}}}}
	post := func(c *http.Client, u string) error {
		req, _ := http.NewRequest("POST", u, strings.NewReader(benchBody))
		req.Header.Set("Authorization", "Bearer app-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	kinds := []struct {
		name string
		do   func() error
	}{
		{"direct", func() error { return post(direct, partner.URL+"/api/signalen/D-1") }},
		{"bare", func() error { return post(plain, bare.URL+"/api/signalen/D-1") }},
		{"gateway", func() error { return post(plain, gateway.URL+"/verwijsindex/signalen/D-1") }},
	}
	for range 50 { // warm up connections and code paths
		for _, k := range kinds {
			if err := k.do(); err != nil {
				b.Fatalf("%s: %v", k.name, err)
			}
		}
	}
	fsync := benchutil.FsyncLatencies(b, b.TempDir(), benchFsyncSamples)

	b.ResetTimer()
	lat := make([][]time.Duration, len(kinds))
	for range benchLatencyRounds {
		for i, k := range kinds {
			t0 := time.Now()
			if err := k.do(); err != nil {
				b.Fatalf("%s: %v", k.name, err)
			}
			lat[i] = append(lat[i], time.Since(t0))
		}
	}
	rate := make([]float64, len(kinds))
	eventsBefore := events.Load()
	var gatewayTime time.Duration
	for range benchPhases {
		for i, k := range kinds {
			n, d := benchutil.Throughput(b, benchConcurrency, benchPhase, k.do)
			rate[i] += float64(n) / d.Seconds() / benchPhases
			if k.name == "gateway" {
				gatewayTime += d
			}
		}
	}
	gw.Wait()
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}

	for i, k := range kinds {
		b.ReportMetric(benchutil.Micros(benchutil.Percentile(lat[i], 50)), "p50-"+k.name+"-µs")
		b.ReportMetric(benchutil.Micros(benchutil.Percentile(lat[i], 99)), "p99-"+k.name+"-µs")
		b.ReportMetric(rate[i], k.name+"-req/s")
	}
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(lat[2], 50)-benchutil.Percentile(lat[0], 50)), "p50-added-µs")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(lat[2], 99)-benchutil.Percentile(lat[0], 99)), "p99-added-µs")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(lat[2], 50)-benchutil.Percentile(lat[1], 50)), "p50-added-over-bare-µs")
	b.ReportMetric(100*rate[2]/rate[0], "throughput-%-of-direct")
	b.ReportMetric(100*rate[2]/rate[1], "throughput-%-of-bare")
	b.ReportMetric(float64(events.Load()-eventsBefore)/gatewayTime.Seconds(), "durable-events/s")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(fsync, 50)), "fsync-p50-µs")
	b.ReportMetric(benchutil.Micros(benchutil.Percentile(fsync, 99)), "fsync-p99-µs")
}

// newTestPartnerDiscarding is a partner like newTestPartner that keeps
// nothing of what arrives.
func newTestPartnerDiscarding(b *testing.B, serverCA, clientCA *testCA) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	certPEM, keyPEM := serverCA.issue(b, "verwijsindex.test", true)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.pool()}
	srv.StartTLS()
	b.Cleanup(srv.Close)
	return srv
}

// countingSink counts the events that became durable.
type countingSink struct {
	w *auditlog.Writer
	n *atomic.Int64
}

func (c *countingSink) Append(ctx context.Context, ev auditlog.Event) error {
	err := c.w.Append(ctx, ev)
	if err == nil {
		c.n.Add(1)
	}
	return err
}

func (c *countingSink) Err() error { return c.w.Err() }
