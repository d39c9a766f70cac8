package auditproxy

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// testIssuer is an OpenID Connect provider: a discovery document and a JWKS
// over HTTP, and an ECDSA key that signs real JWTs.
type testIssuer struct {
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	signer jose.Signer
	jwks   atomic.Int32 // JWKS fetches
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{key: key}
	iss.signer = newES256Signer(t, key, "k1")
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.srv.URL,
			"authorization_endpoint":                iss.srv.URL + "/auth",
			"token_endpoint":                        iss.srv.URL + "/token",
			"jwks_uri":                              iss.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		iss.jwks.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
		}})
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func newES256Signer(t testing.TB, key *ecdsa.PrivateKey, kid string) jose.Signer {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: "ES256"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims for sub, overridden by extra.
func (iss *testIssuer) claims(sub string, groups []string, extra map[string]any) map[string]any {
	c := map[string]any{
		"iss": iss.srv.URL, "aud": testAudience, "sub": sub, "groups": groups,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// token signs claims with the issuer's key.
func (iss *testIssuer) token(t testing.TB, sub string, groups []string, extra map[string]any) string {
	return signToken(t, iss.signer, iss.claims(sub, groups, extra))
}

func signToken(t testing.TB, s jose.Signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const testAudience = "wijkteam-dossier"

// configMapDir is a directory laid out as Kubernetes lays out a ConfigMap
// volume: policy.json -> ..data/policy.json, ..data -> ..<version>, and an
// update swaps the ..data symlink atomically.
type configMapDir struct {
	dir     string
	version int
}

func newConfigMapDir(t testing.TB) *configMapDir {
	t.Helper()
	d := &configMapDir{dir: t.TempDir()}
	return d
}

func (d *configMapDir) path() string { return filepath.Join(d.dir, accesspolicy.ConfigMapKey) }

func (d *configMapDir) write(t testing.TB, data []byte) {
	t.Helper()
	d.version++
	vdir := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", d.version, d.version)
	if err := os.Mkdir(filepath.Join(d.dir, vdir), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(d.dir, vdir, accesspolicy.ConfigMapKey)
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Same modification time every version: only the content differs.
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(f, fixed, fixed); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(vdir, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if d.version == 1 {
		if err := os.Symlink(filepath.Join("..data", accesspolicy.ConfigMapKey), d.path()); err != nil {
			t.Fatal(err)
		}
	}
}

func (d *configMapDir) writeDoc(t testing.TB, doc accesspolicy.Document) {
	t.Helper()
	data, _, err := accesspolicy.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	d.write(t, data)
}

// testKeys are the audit log's signing key and the pseudonym key.
type testKeys struct {
	signing   ed25519.PrivateKey
	pseudonym []byte
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return testKeys{signing: priv, pseudonym: k}
}

// logLine is the part of an audit log line the tests read.
type logLine struct {
	Type             string   `json:"type"`
	Seq              uint64   `json:"seq"`
	TraceID          string   `json:"trace_id"`
	OperationID      string   `json:"operation_id"`
	ParentOperation  string   `json:"parent_operation_id"`
	DataSubject      string   `json:"data_subject_id"`
	Activity         string   `json:"processing_activity_id"`
	Actor            string   `json:"actor"`
	Roles            []string `json:"roles"`
	Action           string   `json:"action"`
	Categories       []string `json:"categories"`
	Outcome          string   `json:"outcome"`
	Method           string   `json:"http_method"`
	Route            string   `json:"route"`
	Status           int      `json:"http_status"`
	DurationNS       int64    `json:"duration_ns"`
	BreakGlass       bool     `json:"break_glass"`
	BreakGlassReason string   `json:"break_glass_reason"`
	ItemsWithheld    int      `json:"items_withheld"`
}

// readEvents returns the event lines of a log, by operation id, in order.
func readEvents(t testing.TB, data []byte) (byOp map[string][]logLine, events int) {
	t.Helper()
	byOp = map[string][]logLine{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		if l.Type != "event" {
			continue
		}
		events++
		byOp[l.OperationID] = append(byOp[l.OperationID], l)
	}
	return byOp, events
}

// upstreamApp is the application behind the proxy. It echoes what it saw in
// response headers so that tests can check what was forwarded.
type upstreamApp struct {
	srv     *httptest.Server
	calls   atomic.Int32
	block   chan struct{} // /slow waits until it is closed
	arrived chan struct{} // /slow reports its arrival
}

func newUpstreamApp(t testing.TB) *upstreamApp {
	t.Helper()
	app := &upstreamApp{block: make(chan struct{}), arrived: make(chan struct{}, 1)}
	app.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.calls.Add(1)
		if strings.HasSuffix(r.URL.Path, "/slow") {
			app.arrived <- struct{}{}
			<-app.block
		}
		w.Header().Set("X-Seen-Traceparent", r.Header.Get(TraceparentHeader))
		w.Header().Set("X-Seen-User", r.Header.Get(DefaultUserHeader))
		w.Header().Set("X-Seen-Groups", r.Header.Get(DefaultGroupsHeader))
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(app.srv.Close)
	return app
}
