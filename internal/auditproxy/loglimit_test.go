package auditproxy

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestProxyRefusesWhenTheAuditLogIsFull: once the audit log reaches its
// size limit (the log volume's sizeLimit, less headroom) the proxy refuses
// with 503 and forwards nothing more; every request it served has its
// event in the log, which ends signed.
func TestProxyRefusesWhenTheAuditLogIsFull(t *testing.T) {
	keys := newTestKeys(t)
	app := newUpstreamApp(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: keys.signing, MaxBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := newTestProxy(t, app, w, keys, true)
	srv := httptest.NewServer(p)
	defer srv.Close()

	var served []string
	refused := 0
	for i := 0; i < 2000 && refused < 3; i++ {
		trace := fmt.Sprintf("%032x", i+1)
		req, _ := http.NewRequest("PUT", srv.URL+"/api/dossiers/D-9/plan", nil)
		req.Header.Set(DefaultUserHeader, "an@example.nl")
		req.Header.Set("traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
			if refused > 0 {
				t.Fatalf("request %d served after a refusal", i)
			}
			served = append(served, trace)
		case http.StatusServiceUnavailable:
			refused++
		default:
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if refused == 0 || len(served) == 0 {
		t.Fatalf("%d served, %d refused: want the limit reached in between", len(served), refused)
	}
	if n := int(app.calls.Load()); n != len(served) {
		t.Errorf("the application saw %d requests, %d were served", n, len(served))
	}
	_ = w.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 32<<10 {
		t.Errorf("the log has %d bytes, past its limit", len(data))
	}
	res, err := auditlog.Verify(bytes.NewReader(data), keys.signing.Public().(ed25519.PublicKey))
	if err != nil || !res.OK {
		t.Errorf("verify: %s %v; want OK and signed to the end", res, err)
	}
	for _, trace := range served {
		if !bytes.Contains(data, []byte(`"`+trace+`"`)) {
			t.Errorf("served request of trace %s has no event in the log", trace)
		}
	}
}
