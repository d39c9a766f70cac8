package auditproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA signs serving certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a serving certificate with serial into certFile and keyFile.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "proxy"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	// As the kubelet updates a Secret volume: whole files, replaced.
	for path, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
}

// The proxy serves TLS from the mounted certificate, refuses plain HTTP on
// that port, and serves a rotated certificate without a restart.
func TestRunServesTLSAndReloadsTheCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTestCA(t)
	ca.issue(t, 100, certFile, keyFile)

	policy := newConfigMapDir(t)
	policy.writeDoc(t, integrationDocument())
	keys := newTestKeys(t)
	app := newUpstreamApp(t)
	upstream, _ := url.Parse(app.srv.URL)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Listener: ln, HealthListener: hln, Upstream: upstream, TLSCertFile: certFile, TLSKeyFile: keyFile,
			PolicyPath: policy.path(), Identity: IdentityConfig{TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}},
			PseudonymKey: keys.pseudonym, SigningKey: keys.signing, AuditLogPath: filepath.Join(dir, "audit.jsonl"),
			ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	serial := func() (int64, error) {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
		if err != nil {
			return 0, err
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
	}
	deadline := time.Now().Add(5 * time.Second)
	got, err := serial()
	for err != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got, err = serial()
	}
	if err != nil || got != 100 {
		t.Fatalf("TLS handshake: serial %d, %v; want the mounted certificate (100)", got, err)
	}

	// Plain HTTP to the TLS port gets no application response.
	resp, err := http.Get("http://" + ln.Addr().String() + "/api/dossiers/D-1")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || app.calls.Load() != 0 {
			t.Errorf("plain HTTP to the TLS port: %d %q, %d upstream calls", resp.StatusCode, body, app.calls.Load())
		}
	}

	// Rotation: the next handshakes get the new certificate.
	ca.issue(t, 200, certFile, keyFile)
	deadline = time.Now().Add(3*DefaultPolicyPollInterval + time.Second)
	for got != 200 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got, _ = serial()
	}
	if got != 200 {
		t.Errorf("after rotation the proxy serves serial %d; want the new certificate (200)", got)
	}
}
