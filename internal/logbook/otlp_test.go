package logbook

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// otlpJSON is the OTLP JSON encoding of req: the protobuf JSON mapping with
// hex trace and span ids.
func otlpJSON(t testing.TB, req *coltracepb.ExportTraceServiceRequest) []byte {
	t.Helper()
	b, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"(traceId|spanId|parentSpanId)":\s*"([^"]*)"`)
	return re.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := re.FindSubmatch(m)
		raw, err := base64.StdEncoding.DecodeString(string(sub[2]))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(`"` + string(sub[1]) + `":"` + hex.EncodeToString(raw) + `"`)
	})
}

func TestHandlerEncodings(t *testing.T) {
	l, pool := newLogbook(t)
	c := writeChain(t, signingKey, store, 10)
	h := l.Handler(nil, 0)

	// JSON, as OTLP specifies it (hex ids).
	body := otlpJSON(t, c.request(c.lines(1, 7)))
	if !bytes.Contains(body, []byte(`"traceId":"`+strings.Repeat("0", 31)+"1")) {
		t.Fatalf("the JSON does not carry hex trace ids: %.300s", body)
	}
	r := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("JSON: HTTP %d %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}

	// gzip-compressed protobuf.
	pb, _ := proto.Marshal(c.request(c.lines(8, 13)))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(pb)
	_ = zw.Close()
	r = httptest.NewRequest(http.MethodPost, TracesPath, &z)
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("Content-Encoding", "gzip")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 200 {
		t.Fatalf("gzip: HTTP %d: %s", rec.Code, rec.Body)
	}
	if n := count(t, pool, "SELECT count(*) FROM logbook_records"); n != 13 {
		t.Fatalf("%d lines stored, want 13", n)
	}

	// A refusal is a partial success naming the reason.
	code, resp := post(t, h, c.request(c.lines(1, 1)[:0]))
	if code != 200 || resp.GetPartialSuccess() != nil {
		t.Fatalf("empty request: HTTP %d %v", code, resp)
	}
	forged := forge(t, c.recs[3], `"coach-0042"`, `"coach-0043"`)
	req := c.request(c.lines(1, 1))
	req.ResourceSpans[0].ScopeSpans[0].Spans = c.request([]*auditlog.Record{forged}).ResourceSpans[0].ScopeSpans[0].Spans
	code, resp = post(t, h, req)
	if code != 200 || resp.GetPartialSuccess().GetRejectedSpans() != 1 || !strings.Contains(resp.GetPartialSuccess().GetErrorMessage(), "fork") {
		t.Fatalf("fork: HTTP %d %v", code, resp)
	}

	for _, tt := range []struct {
		name, method, ct, enc string
		body                  []byte
		code                  int
	}{
		{"GET", http.MethodGet, "application/x-protobuf", "", nil, http.StatusMethodNotAllowed},
		{"text", http.MethodPost, "text/plain", "", []byte("x"), http.StatusUnsupportedMediaType},
		{"garbage", http.MethodPost, "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, http.StatusBadRequest},
		{"bad JSON", http.MethodPost, "application/json", "", []byte("{"), http.StatusBadRequest},
		{"not gzip", http.MethodPost, "application/x-protobuf", "gzip", []byte("plain"), http.StatusBadRequest},
		{"brotli", http.MethodPost, "application/x-protobuf", "br", []byte("x"), http.StatusUnsupportedMediaType},
		{"too large", http.MethodPost, "application/x-protobuf", "", make([]byte, 2048), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, TracesPath, bytes.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.ct)
			if tt.enc != "" {
				r.Header.Set("Content-Encoding", tt.enc)
			}
			rec := httptest.NewRecorder()
			l.Handler(nil, 1024).ServeHTTP(rec, r)
			if rec.Code != tt.code {
				t.Fatalf("HTTP %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
		})
	}
}

// TestHandlerDatabaseDown: when the database fails, nothing is acknowledged
// and the answer is 503 with Retry-After, which OTLP senders retry.
func TestHandlerDatabaseDown(t *testing.T) {
	l, pool := newLogbook(t)
	c := writeChain(t, signingKey, store, 3)
	pool.Close()
	body, _ := proto.Marshal(c.request(c.recs))
	r := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-protobuf")
	rec := httptest.NewRecorder()
	l.Handler(nil, 0).ServeHTTP(rec, r)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("HTTP %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// TestIngestRole: the role the logbook ingests with can store lines but not
// change or delete them, and nobody can change a line.
func TestIngestRole(t *testing.T) {
	admin, schema := newSchema(t)
	ctx := context.Background()
	login := testenv.RandomName("lb_ingest_")
	if _, err := admin.Exec(ctx, "CREATE ROLE "+login+" LOGIN IN ROLE dossierguard_logbook_ingest"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE "+login) })
	pc, err := pgxpool.ParseConfig(testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.User = login
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Keys are added by the owner here; the ingest role may add them too.
	l, err := New(ctx, pool, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TrustKey(ctx, store, signingKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("TrustKey as the ingest role: %v", err)
	}
	c := writeChain(t, signingKey, store, 5)
	if res := mustIngest(t, l, c.request(c.recs)); res.Stored != len(c.recs) {
		t.Fatalf("ingest as the ingest role: %+v", res)
	}
	for _, sql := range []string{
		"UPDATE logbook_records SET line = 'x'",
		"DELETE FROM logbook_records",
		"DELETE FROM logbook_chains",
		"DELETE FROM logbook_keys",
		"UPDATE logbook_chains SET store = 'other/store'",
		"TRUNCATE logbook_records",
	} {
		if _, err := pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the ingest role: %v, want permission denied", sql, err)
		}
	}
	if _, err := admin.Exec(ctx, "UPDATE logbook_records SET line = 'x'"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE as the owner: %v, want the append-only trigger", err)
	}
	if n := count(t, admin, "SELECT count(*) FROM logbook_records"); n != len(c.recs) {
		t.Fatalf("%d lines left, want %d", n, len(c.recs))
	}
}
