package egressgateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestRun: the gateway as the command runs it reads its policy file,
// becomes ready, sends an allowed request to the partner, and on shutdown
// closes the audit log with a final checkpoint, so that the whole log
// verifies.
func TestRun(t *testing.T) {
	serverCA, clientCA := newTestCA(t, "partner CA"), newTestCA(t, "client CA")
	partner := newTestPartner(t, serverCA, clientCA)
	dir := t.TempDir()
	cert, key := clientCA.issue(t, "cjg-egress", false)
	writeTLSDir(t, filepath.Join(dir, "tls"), "verwijsindex", serverCA.certPEM, cert, key)
	data, _, err := accesspolicy.EncodeEgress(testDocument(testAgreement(partner.srv.URL + "/api")))
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "egress.json")
	if err := os.WriteFile(policy, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hln, _ := net.Listen("tcp", "127.0.0.1:0")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	logPath := filepath.Join(dir, "audit.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Listener: ln, HealthListener: hln, PolicyPath: policy, TLSDir: filepath.Join(dir, "tls"),
			Store: "cjg/cjg-dossiers", Callers: workloadTokens{"app-token": appPod}, PseudonymKey: testPseudonymKey,
			AuditLogPath: logPath, SigningKey: priv, AuditChain: &auditlog.Chain{Store: "cjg/cjg-dossiers", Pod: "cjg-dossiers-egress-0"},
			ShutdownTimeout: 5 * time.Second})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + hln.Addr().String() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/verwijsindex/signalen/D-7", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer app-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(partner.received()) != 1 {
		t.Fatalf("status %d, %d arrived", resp.StatusCode, len(partner.received()))
	}
	// The health port serves the metrics, with the decision counted.
	mresp, err := http.Get("http://" + hln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	_ = mresp.Body.Close()
	for _, want := range []string{
		`dossierguard_egressgateway_decisions_total{agreement="verwijsindex",outcome="allowed",reason="agreement",store="cjg-dossiers"} 1`,
		`dossierguard_egressgateway_audit_backlog_events 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(logPath)
	res, err := auditlog.Verify(bytes.NewReader(raw), pub)
	if err != nil || !res.OK || res.Events != 2 || res.Unsigned != 0 || res.Chain == nil || res.Chain.Store != "cjg/cjg-dossiers" {
		t.Fatalf("log after shutdown: %+v %v", res, err)
	}
}

// TestAuditLogOptions checks that the gateway's log, which its benchmark
// writes too, grows in preallocated segments: while the writer is open the
// file is a whole segment long, and Close cuts it to its content.
func TestAuditLogOptions(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	opts := auditLogOptions(Config{AuditLogPath: path, SigningKey: priv, AuditLogMaxBytes: 8 << 20})
	if opts.Path != path || opts.MaxBytes != 8<<20 || opts.Preallocate != auditlog.DefaultPreallocate {
		t.Fatalf("options: path %q, max bytes %d, preallocate %d; want %q, %d, %d", opts.Path, opts.MaxBytes, opts.Preallocate, path, 8<<20, auditlog.DefaultPreallocate)
	}
	w, err := auditlog.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), auditlog.Event{TraceID: strings.Repeat("ab", 16), OperationID: strings.Repeat("cd", 8),
		Actor: "app", Action: auditlog.ActionWrite, Outcome: auditlog.OutcomeAllowed, Method: "POST", Route: "r"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != auditlog.DefaultPreallocate {
		t.Errorf("open log is %d bytes; want one preallocated segment of %d", fi.Size(), auditlog.DefaultPreallocate)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, _ = os.Stat(path); fi.Size() >= auditlog.DefaultPreallocate || fi.Size() == 0 {
		t.Errorf("closed log is %d bytes; want its content only", fi.Size())
	}
}
