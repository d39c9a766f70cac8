package logbook

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestServe runs the logbook on a fresh schema (migrating it at startup),
// sends a chain over real HTTP and stops it.
func TestServe(t *testing.T) {
	pool, _ := emptySchema(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{Listener: ln, DB: pool, Migrate: true,
			TrustKeys: map[string][]ed25519.PublicKey{store: {signingKey.Public().(ed25519.PublicKey)}}})
	}()
	url := "http://" + ln.Addr().String()
	c := writeChain(t, signingKey, store, 7)
	body, _ := proto.Marshal(c.request(c.recs))
	var resp *http.Response
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; ; i++ {
		resp, err = client.Post(url+TracesPath, "application/x-protobuf", bytes.NewReader(body))
		if err == nil && resp.StatusCode == 200 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		default:
		}
		if i > 100 {
			t.Fatalf("POST: %v %v", err, resp)
		}
		if resp != nil {
			_ = resp.Body.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	out := &coltracepb.ExportTraceServiceResponse{}
	if err := proto.Unmarshal(b.Bytes(), out); err != nil || out.GetPartialSuccess() != nil {
		t.Fatalf("response %v, %v", out, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records"); n != len(c.recs) {
		t.Fatalf("%d lines stored, want %d", n, len(c.recs))
	}
	if r, err := http.Get(url + "/readyz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", err, r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestServeReloadsTrustKeys: a key that appears in the trusted keys after
// startup (the operator adding a new store's key to the mounted ConfigMap)
// is added without a restart, and a chain signed with it is stored.
func TestServeReloadsTrustKeys(t *testing.T) {
	pool, _ := emptySchema(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	keys := map[string][]ed25519.PublicKey{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{Listener: ln, DB: pool, Migrate: true, ReloadInterval: 20 * time.Millisecond,
			ReloadTrustKeys: func() (map[string][]ed25519.PublicKey, error) {
				mu.Lock()
				defer mu.Unlock()
				out := map[string][]ed25519.PublicKey{}
				for st, ks := range keys {
					out[st] = append([]ed25519.PublicKey(nil), ks...)
				}
				return out, nil
			}})
	}()
	url := "http://" + ln.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	for r, err := http.Get(url + "/readyz"); err != nil || r.StatusCode != 200; r, err = http.Get(url + "/readyz") {
		if err == nil {
			_ = r.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("logbook not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // several reloads with no key
	if n := count(t, pool, "SELECT count(*) FROM logbook_keys WHERE store = $1", store); n != 0 {
		t.Fatalf("%d keys trusted before any appeared", n)
	}
	mu.Lock()
	keys[store] = []ed25519.PublicKey{signingKey.Public().(ed25519.PublicKey)}
	mu.Unlock()
	for count(t, pool, "SELECT count(*) FROM logbook_keys WHERE store = $1", store) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the new key was not added without a restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := writeChain(t, signingKey, store, 5)
	body, _ := proto.Marshal(c.request(c.recs))
	resp, err := http.Post(url+TracesPath, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	out := &coltracepb.ExportTraceServiceResponse{}
	if err := proto.Unmarshal(b.Bytes(), out); err != nil || resp.StatusCode != 200 || out.GetPartialSuccess() != nil {
		t.Fatalf("response %d %v, %v", resp.StatusCode, out, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records"); n != len(c.recs) {
		t.Fatalf("%d lines stored, want %d", n, len(c.recs))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
