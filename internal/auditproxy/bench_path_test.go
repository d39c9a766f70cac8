package auditproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// cannedTransport answers every request with the same small response
// without a network: the upstream of BenchmarkRequestPath.
type cannedTransport struct{ body []byte }

func (t cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(t.body))}},
		Body:          io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)),
		Request:       r,
	}, nil
}

// BenchmarkRequestPath is the CPU and the allocations of one request on
// the handler's path, without the network and with the audit log on tmpfs
// (its fdatasync is a few microseconds there): the bare
// httputil.ReverseProxy and the audit proxy with header identity, in
// front of the same canned upstream, served by many goroutines at once
// (b.RunParallel). What the audit proxy adds per request is the
// difference of ns/op, B/op, allocs/op and cpu-µs/op (the process's CPU
// time, user and system, per request: on a loaded machine ns/op follows the
// load, the CPU time much less). Run with -benchmem.
func BenchmarkRequestPath(b *testing.B) {
	body := make([]byte, benchResponseBytes)
	upstream, _ := url.Parse("http://127.0.0.1:1")
	transport := cannedTransport{body: body}
	serve := func(b *testing.B, h http.Handler, set func(*http.Request)) {
		b.ReportAllocs()
		before := readCost(b)
		defer func() {
			_, _, cpu := readCost(b).since(before).perRequest(int64(b.N))
			b.ReportMetric(cpu, "cpu-µs/op")
		}()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest("GET", "http://proxy/api/dossiers/D-9", nil)
				req.RemoteAddr = "127.0.0.1:40000"
				set(req)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
	b.Run("bare", func(b *testing.B) {
		rp := httputil.NewSingleHostReverseProxy(upstream)
		rp.Transport = transport
		serve(b, rp, func(*http.Request) {})
	})
	b.Run("header", func(b *testing.B) {
		dir, err := os.MkdirTemp("/dev/shm", "auditproxy-path-")
		if err != nil {
			b.Fatalf("no tmpfs at /dev/shm: %v", err)
		}
		defer func() { _ = os.RemoveAll(dir) }()
		keys := newTestKeys(b)
		w, err := auditlog.NewWriter(auditlog.Options{Path: filepath.Join(dir, "audit.jsonl"), SigningKey: keys.signing, Preallocate: auditlog.DefaultPreallocate})
		if err != nil {
			b.Fatal(err)
		}
		src, auth, set := benchIdentity(b, "header")
		guard := auditlog.NewFloodGuard(w, auditlog.FloodOptions{}) // the sidecar's sink (server.go)
		p, err := New(Options{Upstream: upstream, Policies: src, Authenticator: auth, Audit: guard, PseudonymKey: keys.pseudonym, Transport: transport})
		if err != nil {
			b.Fatal(err)
		}
		serve(b, p, set)
		b.StopTimer()
		p.Wait()
		if err := guard.Close(); err != nil { // and the writer
			b.Fatal(err)
		}
	})
}
