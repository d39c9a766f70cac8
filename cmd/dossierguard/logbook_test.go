package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

func TestLogbookOptions(t *testing.T) {
	fx := newAuditFixture(t)
	tests := []struct {
		name string
		opts logbookOptions
		want string // substring of the error; "" for none
	}{
		{"defaults", logbookOptions{schema: "dossierguard_logbook", maxRequestBytes: 1 << 20}, ""},
		{"trusted key", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeys: []string{"wijkteam/dossiers=" + fx.pub}}, ""},
		{"schema", logbookOptions{schema: "Drop Table", maxRequestBytes: 1 << 20}, "--schema"},
		{"tls half", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, tlsCertFile: "c"}, "--tls-cert-file and --tls-key-file"},
		{"small request", logbookOptions{schema: "s", maxRequestBytes: 10}, "--max-request-bytes"},
		{"key without store", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeys: []string{fx.pub}}, "NAMESPACE/STORE=PATH"},
		{"private key", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeys: []string{"a/b=" + fx.priv}}, "private key"},
	}
	dir := t.TempDir()
	pubPEM, _ := os.ReadFile(fx.pub)
	for name, data := range map[string][]byte{"wijkteam_dossiers.pem": pubPEM, "wijkteam_dossiers_2026.pem": pubPEM, "jeugd_dossiers.pem": pubPEM, "README": []byte("x")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	badDir := t.TempDir()
	_ = os.WriteFile(filepath.Join(badDir, "nostore.pem"), pubPEM, 0o600)
	tests = append(tests,
		struct {
			name string
			opts logbookOptions
			want string
		}{"key dir", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeyDir: dir, trustKeyReload: time.Minute}, ""},
		struct {
			name string
			opts logbookOptions
			want string
		}{"key dir without reload", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeyDir: dir}, "--trust-key-reload"},
		struct {
			name string
			opts logbookOptions
			want string
		}{"key dir with a bad name", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeyDir: badDir, trustKeyReload: time.Minute}, "NAMESPACE_STORE"},
	)
	tests = append(tests,
		struct {
			name string
			opts logbookOptions
			want string
		}{"no sender authentication", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, senderAuth: "none"}, ""},
		struct {
			name string
			opts logbookOptions
			want string
		}{"unknown sender authentication", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, senderAuth: "mtls"}, "--sender-auth"},
		struct {
			name string
			opts logbookOptions
			want string
		}{"no audience", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, senderAuth: "kubernetes", senderAudience: " "}, "--sender-audience"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.senderAuth == "" { // the flags' defaults
				tt.opts.senderAuth, tt.opts.senderAudience = senderAuthKubernetes, logbook.DefaultSenderAudience
			}
			cfg, err := tt.opts.config()
			if tt.name == "key dir" && (len(cfg.TrustKeys["wijkteam/dossiers"]) != 2 || len(cfg.TrustKeys["jeugd/dossiers"]) != 1) {
				t.Errorf("keys from the directory: %v", cfg.TrustKeys)
			}
			if tt.name == "key dir" {
				if cfg.ReloadTrustKeys == nil || cfg.ReloadInterval != time.Minute {
					t.Fatalf("the key dir is not read again: reload %v every %s", cfg.ReloadTrustKeys != nil, cfg.ReloadInterval)
				}
				again, err := cfg.ReloadTrustKeys()
				if err != nil || len(again["wijkteam/dossiers"]) != 2 || len(again["jeugd/dossiers"]) != 1 {
					t.Errorf("keys read again: %v, %v", again, err)
				}
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("config: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("config: %v, want an error with %q", err, tt.want)
			}
			if tt.name == "trusted key" && len(cfg.TrustKeys["wijkteam/dossiers"]) != 1 {
				t.Fatalf("trusted keys %v", cfg.TrustKeys)
			}
		})
	}
}

// TestAuditLogbookCommands migrates a logbook schema with `logbook migrate`,
// stores a chain in it, and runs `audit verify --logbook` and
// `audit query` against it, with the connection only in PG* variables.
func TestAuditLogbookCommands(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cc := pc.ConnConfig
	t.Setenv("PGHOST", cc.Host)
	t.Setenv("PGPORT", fmt.Sprint(cc.Port))
	t.Setenv("PGUSER", cc.User)
	t.Setenv("PGDATABASE", cc.Database)
	t.Setenv("PGSSLMODE", "disable")
	schema := fmt.Sprintf("lb_cmd_%d", time.Now().UnixNano())
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	defer admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") //nolint:errcheck

	out, stderr, code := runAudit(t, nil, "logbook", "migrate", "--schema", schema)
	if code != 0 || !strings.Contains(out, "applied migrations [1 2 3]") {
		t.Fatalf("logbook migrate: %d %q %q", code, out, stderr)
	}

	// A chain of store wijkteam/dossiers, stored through the logbook.
	fx := newAuditFixture(t)
	priv, err := auditlog.ReadPrivateKeyFile(fx.priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "chain.log")
	w, err := auditlog.NewWriter(auditlog.Options{Path: path, SigningKey: priv, Chain: &auditlog.Chain{Store: "wijkteam/dossiers", Pod: "p-0"}})
	if err != nil {
		t.Fatal(err)
	}
	pseudoKey := bytes.Repeat([]byte{7}, 32)
	for i := range 4 {
		subject := "123456782"
		if i == 2 {
			// The proxy records the pseudonym of the id in lower case.
			subject = "WT-0999"
		}
		ev := auditlog.Event{
			Time: time.Date(2026, 9, 1, 8, 30, i, 0, time.UTC), TraceID: fmt.Sprintf("%032x", i+1), OperationID: fmt.Sprintf("%016x", i+1),
			DataSubject: auditproxy.DossierPseudonym(pseudoKey, subject), Actor: "coach-0042", Roles: []string{"wijkcoach"},
			Action: auditlog.ActionRead, Categories: []string{"identity"}, Outcome: auditlog.OutcomeAllowed, Method: "GET", Route: "read-dossier", Status: 200,
		}
		if i == 3 {
			// A disclosure to Veilig Thuis without consent, by law.
			ev.Actor, ev.Roles, ev.Categories = "vt-medewerker-7", nil, []string{"identity", "safety"}
			ev.Sharing = &auditlog.Sharing{Agreement: "veilig-thuis-meldcode", Partner: "Veilig Thuis Voorbeeldregio",
				LegalBasis: "LegalObligation", LegalReference: "Wmo 2015 art. 5.2.6", Consent: auditlog.ConsentNotRequired,
				Purpose: "Meldcode huiselijk geweld", NoticeRequired: true}
		}
		if err := w.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	chainID := w.ChainID()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var recs []*auditlog.Record
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		r, err := auditlog.ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	spc, _ := pgxpool.ParseConfig(dsn)
	spc.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, spc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	lb, err := logbook.New(ctx, pool, logbook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.TrustKey(ctx, "wijkteam/dossiers", priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	if res, err := lb.Ingest(ctx, auditlog.ExportRequest("wijkteam/dossiers", "p-0", chainID, recs)); err != nil || res.Stored != len(recs) {
		t.Fatalf("Ingest: %+v %v", res, err)
	}

	out, stderr, code = runAudit(t, nil, "audit", "verify", "--logbook", "--schema", schema, "--store", "wijkteam/dossiers")
	if code != 0 || !strings.Contains(out, "chain "+chainID+" (pod p-0, started ") || !strings.Contains(out, "OK: 4 events, last checkpoint at seq 6") ||
		!strings.HasSuffix(out, "1 chains of store wijkteam/dossiers, 0 broken\n") {
		t.Fatalf("audit verify --logbook: %d %q %q", code, out, stderr)
	}
	if _, err := admin.Exec(ctx, "DELETE FROM "+schema+".logbook_records WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	out, _, code = runAudit(t, nil, "audit", "verify", "--logbook", "--schema", schema, "--store", "wijkteam/dossiers")
	if code != 1 || !strings.Contains(out, "BROKEN at seq 3: deleted") {
		t.Fatalf("audit verify --logbook after a deletion: %d %q", code, out)
	}

	keyFile := filepath.Join(t.TempDir(), "pseudonym.key")
	if err := os.WriteFile(keyFile, pseudoKey, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = runAudit(t, nil, "audit", "query", "--schema", schema, "--store", "wijkteam/dossiers", "--dossier", "123456782", "--pseudonym-key", keyFile, "-o", "json")
	if code != 0 || strings.Count(out, "\n") != 2 || strings.Contains(out, "123456782") || !strings.Contains(out, `"actor":"coach-0042"`) {
		t.Fatalf("audit query: %d %q %q", code, out, stderr)
	}
	// The staff access has no sharing members; the disclosure names the
	// agreement, the partner organisation and the basis.
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if strings.Contains(lines[0], `"sharing"`) {
		t.Errorf("audit query: a staff access with sharing members: %s", lines[0])
	}
	var disclosure struct {
		Actor   string `json:"actor"`
		Sharing *struct {
			Agreement, Partner, Consent string
			LegalBasis                  string `json:"legal_basis"`
			NoticeRequired              bool   `json:"notice_required"`
		} `json:"sharing"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &disclosure); err != nil {
		t.Fatal(err)
	}
	if sh := disclosure.Sharing; sh == nil || sh.Agreement != "veilig-thuis-meldcode" || sh.Partner != "Veilig Thuis Voorbeeldregio" ||
		sh.LegalBasis != "LegalObligation" || sh.Consent != "not-required" || !sh.NoticeRequired {
		t.Errorf("audit query: the disclosure's sharing members %+v, from %s", sh, lines[1])
	}
	out, _, code = runAudit(t, nil, "audit", "query", "--schema", schema, "--store", "wijkteam/dossiers", "--dossier", "123456782", "--pseudonym-key", keyFile)
	if code != 0 || !strings.Contains(out, "  AGREEMENT ") || !strings.Contains(out, "  PARTNER ") || !strings.Contains(out, "  BASIS ") || !strings.HasSuffix(out, "2 accesses\n") {
		t.Fatalf("audit query (table): %d %q", code, out)
	}
	for _, want := range []string{"veilig-thuis-meldcode  Veilig Thuis Voorbeeldregio  LegalObligation (Wmo 2015 art. 5.2.6); consent not-required; notice required",
		"wijkcoach  read    identity"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit query (table) lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runAudit(t, nil, "audit", "query", "--schema", schema, "--store", "wijkteam/dossiers", "--dossier", "WT-0999", "--pseudonym-key", keyFile)
	if code != 0 || !strings.HasSuffix(out, "1 accesses\n") {
		t.Fatalf("audit query (table): %d %q", code, out)
	}
	out, stderr, code = runAudit(t, nil, "logbook", "retain", "--schema", schema, "--signing-key", fx.priv)
	if code != 0 || !strings.Contains(out, `"removed":0,"removals":[]`) {
		t.Fatalf("logbook retain: %d %q %q", code, out, stderr)
	}
	for _, args := range [][]string{
		{"logbook", "retain", "--schema", schema},
		{"logbook", "retain", "--schema", schema, "--signing-key", fx.priv, "--period", "20y"},
	} {
		if _, stderr, code := runAudit(t, nil, args...); code != 1 || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d, want 1 naming the flag (%s)", args, code, stderr)
		}
	}
	for _, args := range [][]string{
		{"audit", "query", "--store", "wijkteam", "--dossier", "1", "--pseudonym-key", keyFile},
		{"audit", "query", "--store", "a/b", "--pseudonym-key", keyFile},
		{"audit", "query", "--store", "a/b", "--dossier", "1", "--pseudonym-key", fx.pub},
		{"audit", "verify", "--logbook", "--store", "a/b", "--since", "yesterday"},
		{"audit", "verify", "--logbook", "--store", "a/b", fx.log},
	} {
		if _, stderr, code := runAudit(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}
