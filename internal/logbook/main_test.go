package logbook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// newSchema creates and migrates a schema of its own for one test and drops
// it afterwards; it returns a pool whose search_path is that schema.
func newSchema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	pool, schema := emptySchema(t)
	if _, err := Migrate(context.Background(), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pool, schema
}

// emptySchema creates an empty schema of its own for one test and drops it
// afterwards; it returns a pool whose search_path is that schema.
func emptySchema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	schema := testenv.NewSchema(t, testenv.PostgresSchemaPool(t, "public"), "lb_")
	return testenv.PostgresSchemaPool(t, schema), schema
}

// newLogbook returns a logbook on a fresh schema that trusts signingKey for
// store.
func newLogbook(t testing.TB) (*Logbook, *pgxpool.Pool) {
	t.Helper()
	pool, _ := newSchema(t)
	l, err := New(context.Background(), pool, Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := l.TrustKey(context.Background(), store, signingKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("TrustKey: %v", err)
	}
	return l, pool
}

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

const store = "wijkteam/dossiers"

var (
	signingKey = testKey(1)
	otherKey   = testKey(2)
	pseudoKey  = bytes.Repeat([]byte{7}, 32)
)

// testEvent is a valid event of dossier subject (client-<subject>).
func testEvent(i, subject int) auditlog.Event {
	return auditlog.Event{
		Time:                 time.Date(2026, 9, 1, 8, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Duration:             time.Millisecond,
		TraceID:              fmt.Sprintf("%032x", i+1),
		OperationID:          fmt.Sprintf("%016x", i+1),
		ProcessingActivityID: "https://register.voorbeeldstad.nl/verwerkingen/wijkteam",
		DataSubject:          auditlog.Pseudonymise(pseudoKey, fmt.Sprintf("client-%d", subject)),
		Actor:                "coach-0042",
		Roles:                []string{"wijkcoach"},
		Action:               auditlog.ActionRead,
		Categories:           []string{"identity", "contact"},
		Outcome:              auditlog.OutcomeAllowed,
		Method:               "GET",
		Route:                "read-dossier",
		Status:               200,
	}
}

// chain is a log written by auditlog.Writer, as records.
type chain struct {
	id   string
	recs []*auditlog.Record
}

// writeChain writes n events (subjects i%3) with a checkpoint every 5, signed
// with key, and returns its lines.
func writeChain(t testing.TB, key ed25519.PrivateKey, storeName string, n int) chain {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := auditlog.NewWriter(auditlog.Options{
		Path: path, SigningKey: key, CheckpointEvery: 5, CheckpointInterval: -1,
		Chain: &auditlog.Chain{Store: storeName, Pod: "wijkteam-dossiers-0"},
	})
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for i := 0; i < n; i++ {
		if err := w.Append(context.Background(), testEvent(i, i%3)); err != nil {
			t.Fatal(err)
		}
	}
	id := w.ChainID()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return chain{id: id, recs: readRecords(t, path)}
}

func readRecords(t testing.TB, path string) []*auditlog.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*auditlog.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 2<<20)
	for sc.Scan() {
		r, err := auditlog.ParseRecord(bytes.Clone(sc.Bytes()))
		if err != nil {
			t.Fatalf("ParseRecord: %v", err)
		}
		recs = append(recs, r)
	}
	return recs
}

// lines returns records from seq a to b (inclusive).
func (c chain) lines(a, b int) []*auditlog.Record { return slices.Clone(c.recs[a-1 : b]) }

func (c chain) request(recs []*auditlog.Record) *coltracepb.ExportTraceServiceRequest {
	return auditlog.ExportRequest(store, "wijkteam-dossiers-0", c.id, recs)
}

func mustIngest(t testing.TB, l *Logbook, req *coltracepb.ExportTraceServiceRequest) IngestResult {
	t.Helper()
	res, err := l.Ingest(context.Background(), req)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

// post sends an export request to the handler as protobuf.
func post(t testing.TB, h http.Handler, req *coltracepb.ExportTraceServiceRequest) (int, *coltracepb.ExportTraceServiceResponse) {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-protobuf")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	resp := &coltracepb.ExportTraceServiceResponse{}
	if rec.Code == http.StatusOK {
		if err := proto.Unmarshal(rec.Body.Bytes(), resp); err != nil {
			t.Fatalf("response: %v", err)
		}
	}
	return rec.Code, resp
}

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// rehash replaces the hash of a line (without newline) with the hash of its
// content, as a forger who rewrites a line would.
func rehash(line []byte) []byte {
	n := len(line)
	body := append(bytes.Clone(line[:n-len(`,"hash":"`)-66]), '}')
	sum := sha256.Sum256(body)
	out := append(body[:len(body)-1], `,"hash":"`...)
	out = append(out, hex.EncodeToString(sum[:])...)
	return append(out, `"}`...)
}

// forge returns record r with old replaced by new in its line, rehashed.
func forge(t testing.TB, r *auditlog.Record, old, new string) *auditlog.Record {
	t.Helper()
	line := bytes.Replace(r.Line, []byte(old), []byte(new), 1)
	if bytes.Equal(line, r.Line) {
		t.Fatalf("forge: %q not in line %d", old, r.Seq)
	}
	f, err := auditlog.ParseRecord(rehash(line))
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	return f
}
