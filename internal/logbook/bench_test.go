package logbook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// BenchmarkLogbookIngest measures the logbook's ingest rate from 8
// concurrent senders, each shipping its own chain as a proxy under load
// does: export requests of 1000 lines (protobuf over real HTTP), one in
// flight per sender, each answered after its commit on a real PostgreSQL.
// The chains are written beforehand with auditlog.Writer.
//
//	make bench-logbook
func BenchmarkLogbookIngest(b *testing.B) {
	l, _ := newLogbook(b)
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()
	const senders, batch = 8, 1000
	per := (b.N + senders - 1) / senders
	bodies := make([][][]byte, senders)
	events := 0
	for s := range senders {
		c := writeChainFast(b, per)
		for i := 0; i < len(c.recs); i += batch {
			body, err := proto.Marshal(c.request(c.recs[i:min(i+batch, len(c.recs))]))
			if err != nil {
				b.Fatal(err)
			}
			bodies[s] = append(bodies[s], body)
		}
		events += per
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for s := range senders {
		wg.Go(func() {
			for _, body := range bodies[s] {
				resp, err := http.Post(srv.URL+TracesPath, "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("HTTP %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	if n := count(b, l.db, "SELECT count(*) FROM logbook_records WHERE type = 'event'"); n != events {
		b.Fatalf("%d events stored, want %d", n, events)
	}
}

// writeChainFast writes a chain of n events with 64 concurrent appenders.
func writeChainFast(b *testing.B, n int) chain {
	path := filepath.Join(b.TempDir(), "audit.log")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: signingKey, CheckpointEvery: 1000, CheckpointInterval: -1,
		Chain: &auditlog.Chain{Store: store, Pod: "wijkteam-dossiers-0"}})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := w.Append(context.Background(), testEvent(int(i), int(i%97))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	id := w.ChainID()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return chain{id: id, recs: readRecords(b, path)}
}

// BenchmarkProxyShipping is the whole path from 8 proxies: 8 shipping
// Writers (each its own chain and file), each with 64 concurrent requests
// appending, against one logbook. Every event counted was fsynced locally
// and acknowledged by the logbook after its commit.
func BenchmarkProxyShipping(b *testing.B) {
	l, _ := newLogbook(b)
	srv := httptest.NewServer(l.Handler(nil, 0))
	defer srv.Close()
	const proxies, perProxy = 8, 64
	writers := make([]*auditlog.Writer, proxies)
	for p := range writers {
		opts := shipOptions(filepath.Join(b.TempDir(), "audit.log"), srv.URL)
		opts.CheckpointEvery, opts.CheckpointInterval = 1000, time.Second
		opts.Chain.Pod = fmt.Sprintf("pod-%d", p)
		opts.Logbook.AckTimeout = 30 * time.Second
		w, err := auditlog.NewWriter(opts)
		if err != nil {
			b.Fatal(err)
		}
		writers[p] = w
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for p := range proxies {
		for range perProxy {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					if err := writers[p].Append(context.Background(), testEvent(int(i), int(i%97))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	for _, w := range writers {
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if n := count(b, l.db, "SELECT count(*) FROM logbook_records WHERE type = 'event'"); n != b.N {
		b.Fatalf("%d events stored, want %d", n, b.N)
	}
}

// BenchmarkAppendLatency measures what the logbook adds to one request: the
// latency of Append (which the proxy waits for before it forwards) with the
// local file only and with the logbook on, at a steady load of 8
// concurrent requests.
func BenchmarkAppendLatency(b *testing.B) {
	for _, mode := range []string{"file", "logbook"} {
		b.Run(mode, func(b *testing.B) {
			opts := auditlog.Options{Path: filepath.Join(b.TempDir(), "audit.log"), SigningKey: signingKey,
				Chain: &auditlog.Chain{Store: store, Pod: "p"}}
			if mode == "logbook" {
				l, _ := newLogbook(b)
				srv := httptest.NewServer(l.Handler(nil, 0))
				defer srv.Close()
				opts.Logbook = &auditlog.LogbookOptions{URL: srv.URL, AckTimeout: 30 * time.Second}
			}
			w, err := auditlog.NewWriter(opts)
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range 8 {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := w.Append(context.Background(), testEvent(int(i), 0)); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			_ = w.Close()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
