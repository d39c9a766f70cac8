package logbook

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// fakeSenders accepts one token for one store and pod, as the Kubernetes
// authenticator would for a pod's projected token.
type fakeSenders struct {
	token, store, pod string
	calls             int
}

func (f *fakeSenders) AuthenticateSender(_ context.Context, token, store, pod string) error {
	f.calls++
	switch {
	case token != f.token:
		return &SenderError{Status: http.StatusUnauthorized, Message: "the token is not valid"}
	case store != f.store || pod != f.pod:
		return &SenderError{Status: http.StatusForbidden, Message: "the token's pod may not ship the chains of " + store}
	}
	return nil
}

// postAs sends an export request with a bearer token ("" for none) and
// returns the status and the OTLP status message of a refusal.
func postAs(t *testing.T, h http.Handler, token string, req *coltracepb.ExportTraceServiceRequest) (int, string) {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-protobuf")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		return rec.Code, ""
	}
	var st spb.Status
	if err := proto.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("HTTP %d with a body that is no OTLP status: %v", rec.Code, err)
	}
	return rec.Code, st.GetMessage()
}

// TestForgedSendersAreRefused: with a sender authenticator, the logbook
// stores a chain only from the pod its token belongs to. A request without
// a token, with a forged token, or naming another store or pod is refused
// with an OTLP status that says why, and nothing of it is stored.
func TestForgedSendersAreRefused(t *testing.T) {
	l, pool := newLogbook(t)
	senders := &fakeSenders{token: "pod-token", store: store, pod: "wijkteam-dossiers-0"}
	l.senders = senders
	h := l.Handler(nil, 0)
	c := writeChain(t, signingKey, store, 4)
	other := writeChain(t, signingKey, "veilig-thuis/vt-dossiers", 2)

	for _, tc := range []struct {
		name, token string
		req         *coltracepb.ExportTraceServiceRequest
		status      int
		message     string
	}{
		{"no token", "", c.request(c.recs), http.StatusUnauthorized, "no bearer token"},
		{"forged token", "made-up", c.request(c.recs), http.StatusUnauthorized, "not valid"},
		{"another store", "pod-token", auditlog.ExportRequest("veilig-thuis/vt-dossiers", "wijkteam-dossiers-0", other.id, other.recs), http.StatusForbidden, "may not ship"},
		{"another pod", "pod-token", auditlog.ExportRequest(store, "wijkteam-dossiers-1", c.id, c.recs), http.StatusForbidden, "may not ship"},
		{"no pod named", "pod-token", auditlog.ExportRequest(store, "", c.id, c.recs), http.StatusBadRequest, auditlog.AttrPod},
		{"not a pod's name", "pod-token", auditlog.ExportRequest(store, strings.Repeat("x", 300), c.id, c.recs), http.StatusBadRequest, "as Kubernetes names them"},
		{"not a store's name", "pod-token", auditlog.ExportRequest("wijkteam/Dossiers\n", "wijkteam-dossiers-0", c.id, c.recs), http.StatusBadRequest, "NAMESPACE/NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := postAs(t, h, tc.token, tc.req)
			if code != tc.status || !strings.Contains(msg, tc.message) {
				t.Errorf("HTTP %d %q, want %d with %q", code, msg, tc.status, tc.message)
			}
			if strings.Contains(msg, "pod-token") || strings.Contains(msg, "made-up") {
				t.Errorf("the answer quotes the token: %q", msg)
			}
		})
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records") + count(t, pool, "SELECT count(*) FROM logbook_chains") +
		count(t, pool, "SELECT count(*) FROM logbook_refusals"); n != 0 {
		t.Fatalf("refused senders made the logbook write %d rows", n)
	}

	// The pod's own token ships its chain.
	if code, msg := postAs(t, h, "pod-token", c.request(c.recs)); code != http.StatusOK {
		t.Fatalf("the pod's own chain: HTTP %d %q", code, msg)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records"); n != len(c.recs) {
		t.Errorf("%d lines stored, want %d", n, len(c.recs))
	}
}

// TestChainBelongsToItsPod: a chain is bound to the pod of its genesis
// line; an authenticated pod of the same store that sends lines of another
// pod's chain has them refused as a substitution.
func TestChainBelongsToItsPod(t *testing.T) {
	l, _ := newLogbook(t)
	l.senders = &podTokens{"token-0": "wijkteam-dossiers-0", "token-1": "wijkteam-dossiers-1"}
	h := l.Handler(nil, 0)
	c := writeChain(t, signingKey, store, 8) // the chain of pod -0
	as1 := func(recs []*auditlog.Record) *coltracepb.ExportTraceServiceRequest {
		return auditlog.ExportRequest(store, "wijkteam-dossiers-1", c.id, recs)
	}
	refused := func(name string, req *coltracepb.ExportTraceServiceRequest, want string) {
		t.Helper()
		code, resp := post(t, withToken(h, "token-1"), req)
		if code != http.StatusOK || resp.GetPartialSuccess().GetRejectedSpans() == 0 || !strings.Contains(resp.GetPartialSuccess().GetErrorMessage(), want) {
			t.Errorf("%s: HTTP %d %v, want the lines refused with %q", name, code, resp.GetPartialSuccess(), want)
		}
	}
	refused("genesis of pod -0 sent by pod -1", as1(c.lines(1, 3)), "the genesis line names pod wijkteam-dossiers-0")
	if code, resp := post(t, withToken(h, "token-0"), c.request(c.lines(1, 3))); code != http.StatusOK || resp.GetPartialSuccess() != nil {
		t.Fatalf("pod -0 ships its own chain: HTTP %d %v", code, resp.GetPartialSuccess())
	}
	refused("the rest sent by pod -1", as1(c.lines(4, 8)), "the chain belongs to pod wijkteam-dossiers-0")
}

// podTokens accepts each token for the pod it names, of any store.
type podTokens map[string]string

func (p podTokens) AuthenticateSender(_ context.Context, token, _, pod string) error {
	if p[token] != pod {
		return &SenderError{Status: http.StatusForbidden, Message: "not this pod's token"}
	}
	return nil
}

// withToken sets the bearer token on every request to h.
func withToken(h http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		h.ServeHTTP(w, r)
	})
}

// TestServeAuthenticatesSenders: ServeConfig.Senders reaches the handler,
// so the served logbook refuses a request without the pod's token.
func TestServeAuthenticatesSenders(t *testing.T) {
	pool, _ := emptySchema(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{Listener: ln, DB: pool, Migrate: true,
			Senders: &fakeSenders{token: "pod-token", store: store, pod: "wijkteam-dossiers-0"}})
	}()
	c := writeChain(t, signingKey, store, 3)
	body, _ := proto.Marshal(c.request(c.recs))
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; ; i++ {
		resp, err := client.Post("http://"+ln.Addr().String()+TracesPath, "application/x-protobuf", bytes.NewReader(body))
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("no token: HTTP %d, want 401", resp.StatusCode)
			}
			break
		}
		if i > 100 {
			t.Fatalf("POST: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
