package auditproxy

import (
	"bytes"
	"crypto/ed25519"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// TestAnonymousFloodIsAggregated: past the flood threshold, the anonymous
// requests from one address are recorded as one aggregate event with their
// count, so they cannot fill the log; each is still refused with 401.
func TestAnonymousFloodIsAggregated(t *testing.T) {
	h := newHarness(t)
	const n = auditlog.DefaultFloodThreshold + 30
	for range n {
		resp, err := h.direct.Get(h.proxyURL + "/clients/D-1")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous request: status %d, want 401", resp.StatusCode)
		}
	}
	h.stop()
	data, err := os.ReadFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := auditlog.Verify(bytes.NewReader(data), h.keys.signing.Public().(ed25519.PublicKey)); err != nil || !res.OK {
		t.Fatalf("audit log does not verify: %v %s", err, res)
	}
	_, events := readEvents(t, data)
	if events != auditlog.DefaultFloodThreshold+1 {
		t.Errorf("%d events for %d anonymous requests, want %d one by one and one aggregate", events, n, auditlog.DefaultFloodThreshold)
	}
	if c := strings.Count(string(data), `"count":30,"hash":`); c != 1 {
		t.Errorf("%d aggregates of 30 requests in the log, want 1", c)
	}
}
