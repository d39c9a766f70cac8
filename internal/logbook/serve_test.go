package logbook

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net"
	"net/http"
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
