package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// auditProxyFiles are the files `dossierguard audit-proxy` reads.
type auditProxyFiles struct {
	dir, signingKey, pseudonymKey, shortKey, policy, auditLog string
	pub                                                       ed25519.PublicKey
}

func newAuditProxyFiles(t *testing.T) auditProxyFiles {
	t.Helper()
	dir := t.TempDir()
	f := auditProxyFiles{
		dir: dir, signingKey: filepath.Join(dir, "signing-key.pem"), pseudonymKey: filepath.Join(dir, "pseudonym-key"),
		shortKey: filepath.Join(dir, "short-key"), policy: filepath.Join(dir, "policy.json"), auditLog: filepath.Join(dir, "audit.jsonl"),
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.pub = pub
	pemKey, err := auditlog.EncodePrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	doc := accesspolicy.Document{Version: accesspolicy.Version, Store: "s", Namespace: "ns",
		Routes: []accesspolicy.Route{{Name: "read-dossier", Method: "GET", Path: "/api/dossiers/{dossier}",
			Categories: []v1alpha1.DataCategory{"identity"}, Action: "read"}},
		Roles: []accesspolicy.Role{{Name: "coach", Purpose: "p", Subjects: []accesspolicy.Subject{{Kind: "Group", Name: "coaches"}},
			Categories: []v1alpha1.DataCategory{"identity"}, Actions: []v1alpha1.Action{"read"}}}}
	policy, _, err := accesspolicy.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{f.signingKey: pemKey, f.pseudonymKey: key, f.shortKey: []byte("too short"), f.policy: policy} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// validArgs is a command line that passes validation.
func (f auditProxyFiles) validArgs() []string {
	return []string{"audit-proxy", "--signing-key", f.signingKey, "--pseudonym-key", f.pseudonymKey,
		"--oidc-issuer", "https://login.example.nl/realms/gemeente", "--oidc-audience", "wijkteam-dossier",
		"--policy", f.policy, "--audit-log", f.auditLog, "--plain-http"}
}

// without drops a flag and its value from args.
func without(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// runAuditProxy runs the root command with audit-proxy registered.
func runAuditProxy(ctx context.Context, stdout, stderr *syncWriter, args ...string) error {
	root := newRootCommand()
	if c, _, err := root.Find([]string{"audit-proxy"}); err != nil || c == root {
		root.AddCommand(newAuditProxyCommand())
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestAuditProxyFlagValidation checks that every invalid flag is refused
// before anything starts, with an error that names the flag.
func TestAuditProxyFlagValidation(t *testing.T) {
	f := newAuditProxyFiles(t)
	valid := f.validArgs()
	with := func(extra ...string) []string { return append(append([]string{}, valid...), extra...) }
	tests := []struct {
		name string
		args []string
		want []string // substrings of the error
	}{
		{"signing key missing", without(valid, "--signing-key"), []string{"--signing-key: is required"}},
		{"signing key unreadable", with("--signing-key", filepath.Join(f.dir, "nope.pem")), []string{"--signing-key:", "nope.pem"}},
		{"signing key not PEM", with("--signing-key", f.pseudonymKey), []string{"--signing-key:", "PRIVATE KEY"}},
		{"signing key file and directory", with("--signing-key-dir", f.dir), []string{"--signing-key-dir: contradicts --signing-key"}},
		{"signing-key directory without versions", append(without(valid, "--signing-key"), "--signing-key-dir", f.dir), []string{"--signing-key-dir:", "no signing-1.key"}},
		{"signing-key directory missing", append(without(valid, "--signing-key"), "--signing-key-dir", filepath.Join(f.dir, "nope")), []string{"--signing-key-dir:", "nope"}},
		{"pseudonym key missing", without(valid, "--pseudonym-key"), []string{"--pseudonym-key: is required"}},
		{"pseudonym key short", with("--pseudonym-key", f.shortKey), []string{"--pseudonym-key:", "at least 32"}},
		{"no identity source", without(without(valid, "--oidc-issuer"), "--oidc-audience"), []string{"--oidc-issuer or --trusted-proxy-cidrs"}},
		{"issuer over http", with("--oidc-issuer", "http://login.example.nl"), []string{"--oidc-issuer:", "https"}},
		{"issuer not a URL", with("--oidc-issuer", "login"), []string{"--oidc-issuer:"}},
		{"issuer without audience", without(valid, "--oidc-audience"), []string{"--oidc-audience: is required with --oidc-issuer"}},
		{"audience without issuer", append(without(valid, "--oidc-issuer"), "--trusted-proxy-cidrs", "10.0.0.0/24"), []string{"--oidc-audience: needs --oidc-issuer"}},
		{"jwks file missing", with("--oidc-jwks-file", filepath.Join(f.dir, "jwks.json")), []string{"--oidc-jwks-file:"}},
		{"jwks file not a key set", with("--oidc-jwks-file", f.policy), []string{"--oidc-jwks-file:"}},
		{"empty username claim", with("--oidc-username-claim", ""), []string{"--oidc-username-claim:"}},
		{"bad CIDR", with("--trusted-proxy-cidrs", "10.0.0.300/24"), []string{"--trusted-proxy-cidrs:", "10.0.0.300/24"}},
		{"CIDR trusting everyone", with("--trusted-proxy-cidrs", "0.0.0.0/0"), []string{"--trusted-proxy-cidrs:", "every address"}},
		{"bad user header", with("--user-header", "X User"), []string{"--user-header:"}},
		{"reserved groups header", with("--groups-header", "Authorization"), []string{"--groups-header:", "reserved"}},
		{"same headers", with("--groups-header", "x-forwarded-user"), []string{"--groups-header: must differ"}},
		{"same headers but for _", with("--groups-header", "X_Forwarded_User"), []string{"--groups-header: must differ"}},
		{"reserved header spelled with _", with("--user-header", "X_Break_Glass_Reason"), []string{"--user-header:", "reserved"}},
		{"bad upstream", with("--upstream", "127.0.0.1:8080"), []string{"--upstream:"}},
		{"bad listen", with("--listen", "8443"), []string{"--listen:"}},
		{"same ports", with("--listen", ":9000", "--health-listen", ":9000"), []string{"--health-listen: must differ"}},
		{"assignment URL without user", with("--assignment-url", "https://cases.example/{dossier}"), []string{"--assignment-url:", "{user}"}},
		{"assignment URL not http", with("--assignment-url", "file:///{dossier}/{user}"), []string{"--assignment-url:"}},
		{"cache size", with("--assignment-cache-size", "0"), []string{"--assignment-cache-size:"}},
		{"cache TTL zero", with("--assignment-cache-ttl", "0s"), []string{"--assignment-cache-ttl:"}},
		{"cache TTL not a duration", with("--assignment-cache-ttl", "soon"), []string{"--assignment-cache-ttl"}},
		{"assignment timeout", with("--assignment-timeout", "-1s"), []string{"--assignment-timeout:"}},
		{"audit log directory missing", with("--audit-log", filepath.Join(f.dir, "missing", "audit.jsonl")), []string{"--audit-log:"}},
		{"policy empty", with("--policy", ""), []string{"--policy: is required"}},
		{"audit log bound too small", with("--audit-log-max-bytes", "4096"), []string{"--audit-log-max-bytes:", "1 MiB"}},
		{"audit log bound negative", with("--audit-log-max-bytes", "-1"), []string{"--audit-log-max-bytes:"}},
		{"flood threshold", with("--flood-threshold", "0"), []string{"--flood-threshold:"}},
		{"flood interval", with("--flood-interval", "10ms"), []string{"--flood-interval:"}},
		{"logbook without store", with("--logbook-url", "http://logbook:4318"), []string{"--logbook-url: needs --store"}},
		{"store not namespace/name", with("--store", "dossiers", "--pod-name", "p"), []string{"--store:", "NAMESPACE/NAME"}},
		{"store without pod", with("--store", "wijkteam/dossiers", "--pod-name", ""), []string{"--pod-name: is required"}},
		{"logbook URL not http", with("--store", "a/b", "--pod-name", "p", "--logbook-url", "logbook:4318"), []string{"--logbook-url:", "http(s)"}},
		{"logbook spool", with("--store", "a/b", "--pod-name", "p", "--logbook-url", "http://l:4318", "--logbook-max-pending", "0"), []string{"--logbook-max-pending:"}},
		{"logbook ack timeout", with("--store", "a/b", "--pod-name", "p", "--logbook-url", "http://l:4318", "--logbook-ack-timeout", "0s"), []string{"--logbook-ack-timeout:"}},
		{"logbook token without logbook", with("--logbook-token-file", f.policy), []string{"--logbook-token-file: needs --logbook-url"}},
		{"logbook token missing", with("--store", "a/b", "--pod-name", "p", "--logbook-url", "http://l:4318", "--logbook-token-file", filepath.Join(f.dir, "no-token")), []string{"--logbook-token-file:", "no-token"}},
		{"TLS cert without key", with("--tls-cert-file", f.policy), []string{"--tls-key-file:"}},
		{"plain HTTP by default", without(f.validArgs(), "--plain-http"), []string{"--tls-cert-file: is required", "--plain-http"}},
		{"TLS and plain HTTP", with("--tls-cert-file", f.policy, "--tls-key-file", f.policy), []string{"--plain-http: contradicts"}},
		{"log level", with("--log-level", "loud"), []string{"--log-level:"}},
		{"subject requests without a namespace", with("--subject-requests", "wijkteam-dossiers"), []string{"--subject-requests:", "NAMESPACE/STORE"}},
		{"subject requests without a token directory", with("--subject-requests", "wijkteam/wijkteam-dossiers", "--kube-token-dir", ""), []string{"--kube-token-dir: is required with --subject-requests"}},
		{"shutdown timeout", with("--shutdown-timeout", "0s"), []string{"--shutdown-timeout:"}},
		{"every error at once", []string{"audit-proxy", "--upstream", "nope", "--assignment-cache-size", "-1"},
			[]string{"--upstream:", "--assignment-cache-size:", "--signing-key:", "--pseudonym-key:", "--oidc-issuer or --trusted-proxy-cidrs"}},
		{"unknown flag", with("--listen-address", ":1"), []string{"--listen-address"}},
		{"positional argument", with("extra"), []string{"extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // should validation pass by mistake, Run stops at once
			err := runAuditProxy(ctx, &syncWriter{}, &syncWriter{}, tt.args...)
			if err == nil {
				t.Fatalf("accepted %v", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, statErr := os.Stat(f.auditLog); statErr == nil {
				t.Error("an audit log was created although the flags are invalid")
			}
		})
	}
}

// TestAuditProxyCommandServes runs the command with valid flags, sends a
// request through it and stops it as SIGTERM would: with one signing key
// file, and with a directory of versions as the webhook mounts the store's
// signing Secret.
func TestAuditProxyCommandServes(t *testing.T) {
	t.Run("signing key file", func(t *testing.T) { testAuditProxyCommandServes(t, false) })
	t.Run("signing-key directory", func(t *testing.T) { testAuditProxyCommandServes(t, true) })
}

func testAuditProxyCommandServes(t *testing.T, keyDir bool) {
	f := newAuditProxyFiles(t)
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("dossier")) })}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Serve(appLn) }()
	defer func() { _ = app.Close() }()

	listen, health := freeAddr(t), freeAddr(t)
	args := append(without(without(f.validArgs(), "--oidc-issuer"), "--oidc-audience"),
		"--trusted-proxy-cidrs", "127.0.0.1/32", "--listen", listen, "--health-listen", health,
		"--upstream", "http://"+appLn.Addr().String())
	if keyDir {
		dir := t.TempDir()
		key, err := os.ReadFile(f.signingKey)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{auditlog.SigningKeyFile(1): key,
			auditlog.SigningActiveFromFile(1): []byte(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o444); err != nil {
				t.Fatal(err)
			}
		}
		args = append(without(args, "--signing-key"), "--signing-key-dir", dir)
	}
	stdout, stderr := &syncWriter{}, &syncWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runAuditProxy(ctx, stdout, stderr, args...) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + health + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("command ended: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+listen+"/api/dossiers/D-7", nil)
	req.Header.Set("X-Forwarded-User", "coach-1")
	req.Header.Set("X-Forwarded-Groups", "coaches")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("command: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("command did not stop")
	}
	data, err := os.ReadFile(f.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	res, err := auditlog.Verify(bytes.NewReader(data), f.pub)
	if err != nil || !res.OK || res.Events != 2 {
		t.Errorf("audit log: %v %s", err, res)
	}
	if stdout.String() != string(data) {
		t.Error("stdout does not mirror the audit log")
	}
	if keyDir && !strings.Contains(stderr.String(), `"msg":"Signing audit checkpoints","keyID":"`+auditlog.KeyID(f.pub)+`","version":1`) {
		t.Errorf("the proxy does not follow its signing-key directory:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "D-7") || strings.Contains(stderr.String(), "coach-1") {
		t.Errorf("the proxy's log names the dossier or the caller:\n%s", stderr.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}
