package auditproxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net"
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

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// writeSigningVersion adds version v of a signing-key directory, active
// from at, and returns its key.
func writeSigningVersion(t *testing.T, dir string, v int, at time.Time) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, _ := auditlog.EncodePrivateKeyPEM(priv)
	pubPEM, _ := auditlog.EncodePublicKeyPEM(priv.Public().(ed25519.PublicKey))
	// The activation time first: a reader that sees the key sees its time.
	for _, f := range []struct {
		name string
		data []byte
	}{{auditlog.SigningActiveFromFile(v), []byte(at.UTC().Format(time.RFC3339Nano))}, {auditlog.SigningPublicFile(v), pubPEM}, {auditlog.SigningKeyFile(v), privPEM}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return priv
}

// The running proxy takes a rotated signing key into use when its version
// becomes active, without a restart: requests keep being served during the
// switch, every served request is recorded, and the log verifies with both
// public keys, the old one signing what came before the switch.
func TestProxySwitchesToARotatedSigningKey(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(app.Close)
	policy := newConfigMapDir(t)
	policy.writeDoc(t, webSocketDocument())
	keyDir := t.TempDir()
	first := writeSigningVersion(t, keyDir, 1, time.Now().Add(-time.Hour))
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream, _ := url.Parse(app.URL)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Listener: ln, HealthListener: hln, Upstream: upstream, PolicyPath: policy.path(),
			Identity:     IdentityConfig{TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			PseudonymKey: bytes.Repeat([]byte{7}, 32), AuditLogPath: logPath, SigningKeyDir: keyDir, SigningKeyPollInterval: 20 * time.Millisecond,
			ShutdownTimeout: 10 * time.Second, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	}()

	var served, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/api/dossiers/D-9/notes", nil)
				req.Header.Set(DefaultUserHeader, "an@example.nl")
				resp, err := client.Do(req)
				if err != nil {
					continue // not up yet
				}
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					served.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for served.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	second := writeSigningVersion(t, keyDir, 2, time.Now().Add(200*time.Millisecond))
	time.Sleep(600 * time.Millisecond)
	atSwitch := served.Load()
	for served.Load() < atSwitch+50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if refused.Load() != 0 {
		t.Errorf("%d requests were refused across the switch\n%s", refused.Load(), logs.String())
	}

	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	byOp, _ := readEvents(t, data)
	if int64(len(byOp)) != served.Load() {
		t.Errorf("%d requests served, %d recorded", served.Load(), len(byOp))
	}
	if !bytes.Contains([]byte(logs.String()), []byte("Signing audit checkpoints with a rotated key")) {
		t.Errorf("the switch is not in the proxy's log:\n%s", logs.String())
	}
	signedBy := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if r, err := auditlog.ParseRecord(line); err == nil && r.Type == auditlog.TypeCheckpoint {
			signedBy[r.KeyID]++
		}
	}
	oldID, newID := auditlog.KeyID(first.Public().(ed25519.PublicKey)), auditlog.KeyID(second.Public().(ed25519.PublicKey))
	if signedBy[oldID] == 0 || signedBy[newID] == 0 || len(signedBy) != 2 {
		t.Errorf("checkpoints signed by %v; want the old key %s and the new %s", signedBy, oldID, newID)
	}
	both := []ed25519.PublicKey{first.Public().(ed25519.PublicKey), second.Public().(ed25519.PublicKey)}
	if res, err := auditlog.VerifyWithOptions(bytes.NewReader(data), auditlog.VerifyOptions{PublicKeys: both}); err != nil || !res.OK {
		t.Fatalf("the log across the switch: %+v %v", res, err)
	}
	if served.Load() < atSwitch+1 || atSwitch < 1 {
		t.Fatalf("served %d before and %d in all: the test did not cover the switch", atSwitch, served.Load())
	}
}
