package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// logbookOptions are the flags of `dossierguard logbook`.
type logbookOptions struct {
	listen          string
	schema          string
	migrate         bool
	trustKeys       []string
	trustKeyDir     string
	trustKeyReload  time.Duration
	tlsCertFile     string
	tlsKeyFile      string
	maxRequestBytes int64
	shutdownTimeout time.Duration
	senderAuth      string
	senderAudience  string
}

func newLogbookCommand() *cobra.Command {
	var opts logbookOptions
	cmd := &cobra.Command{
		Use:   "logbook",
		Short: "Run the logbook: receive the audit proxies' chains over OTLP/HTTP, verify them and store them in PostgreSQL",
		Long: `The logbook receives the hash-chained audit lines of the audit proxies over
OTLP/HTTP (POST /v1/traces, protobuf or JSON, one span per line), checks every
line against the head of its chain (gaps, forks, substitutions and bad
checkpoint signatures are refused and recorded), and stores the chains in
PostgreSQL. A request is answered only after what it acknowledges is committed.

It connects with the libpq environment variables (PGHOST, PGPORT, PGDATABASE,
PGUSER, PGPASSWORD, PGSSLMODE), typically from a Secret; the connection string
is never printed. See docs/audit-log.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := opts.config()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			pool, err := logbookPool(ctx, opts.schema)
			if err != nil {
				return err
			}
			defer pool.Close()
			cfg.DB = pool
			cfg.Logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			if cfg.Senders, err = opts.senders(); err != nil {
				return err
			}
			return logbook.Serve(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.listen, "listen", logbook.DefaultListen, "Address of the OTLP/HTTP receiver (/v1/traces) and the /healthz and /readyz probes.")
	f.StringVar(&opts.schema, "schema", logbook.DefaultSchema, "PostgreSQL schema of the logbook's tables.")
	f.BoolVar(&opts.migrate, "migrate", false, "Apply the schema migrations at startup (needs the schema owner's rights and CREATEROLE; otherwise run `dossierguard logbook migrate` once as the owner).")
	f.StringArrayVar(&opts.trustKeys, "trust-key", nil, "NAMESPACE/STORE=PATH: a PEM Ed25519 public key that signs the checkpoints of a store; kept by the logbook for good. Repeat it for more stores and rotated keys.")
	f.StringVar(&opts.trustKeyDir, "trust-key-dir", "", "Directory of PEM public keys of stores, one per file named NAMESPACE_STORE[_SUFFIX].pem (a mounted ConfigMap or Secret); each is added as with --trust-key, and keys that appear later are added every --trust-key-reload.")
	f.DurationVar(&opts.trustKeyReload, "trust-key-reload", time.Minute, "How often --trust-key-dir is read again for new keys.")
	f.StringVar(&opts.tlsCertFile, "tls-cert-file", "", "PEM certificate to serve TLS with (with --tls-key-file). Without it the logbook serves plain HTTP.")
	f.StringVar(&opts.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file.")
	f.Int64Var(&opts.maxRequestBytes, "max-request-bytes", logbook.DefaultMaxRequestBytes, "Largest export request accepted, in bytes after decompression.")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second, "How long requests in flight may take to finish after SIGTERM.")
	f.StringVar(&opts.senderAuth, "sender-auth", senderAuthKubernetes, "How senders are authenticated: kubernetes (each proxy's projected ServiceAccount token, checked with a TokenReview, and the DossierStore whose workload its pod belongs to; needs the Kubernetes API, see docs/threat-model.md) or none (anyone who reaches the port may ship chains; only for a logbook nobody else can reach).")
	f.StringVar(&opts.senderAudience, "sender-audience", logbook.DefaultSenderAudience, "Audience of the senders' tokens (the webhook mounts tokens of "+logbook.DefaultSenderAudience+").")
	cmd.AddCommand(newLogbookMigrateCommand(), newLogbookRetainCommand())
	return cmd
}

func newLogbookMigrateCommand() *cobra.Command {
	var schema string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the logbook's schema and its ingest role",
		Long: `migrate applies the logbook's versioned SQL migrations that the schema does not
have yet, each in a transaction, and creates the role dossierguard_logbook_ingest
(INSERT-only on the lines). Run it as the schema's owner; connection from the
libpq environment variables.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := logbookPool(cmd.Context(), schema)
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := logbook.Migrate(cmd.Context(), pool)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "schema %s: applied migrations %v\n", schema, applied)
			return err
		},
	}
	cmd.Flags().StringVar(&schema, "schema", logbook.DefaultSchema, "PostgreSQL schema of the logbook's tables; created when missing.")
	return cmd
}

// config checks the flags and reads the key files; every error names its
// flag.
func (o *logbookOptions) config() (logbook.ServeConfig, error) {
	var errs []error
	cfg := logbook.ServeConfig{
		Listen: o.listen, Migrate: o.migrate, TLSCertFile: o.tlsCertFile, TLSKeyFile: o.tlsKeyFile,
		MaxRequestBytes: o.maxRequestBytes, ShutdownTimeout: o.shutdownTimeout,
		TrustKeys: map[string][]ed25519.PublicKey{},
	}
	if !validSchemaName(o.schema) {
		errs = append(errs, fmt.Errorf("--schema: %q must be a lower-case SQL identifier (a-z, 0-9, _; at most 63)", o.schema))
	}
	if (o.tlsCertFile == "") != (o.tlsKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	switch o.senderAuth {
	case senderAuthKubernetes, senderAuthNone:
	default:
		errs = append(errs, fmt.Errorf("--sender-auth: %q must be kubernetes or none", o.senderAuth))
	}
	if o.senderAuth == senderAuthKubernetes && strings.TrimSpace(o.senderAudience) == "" {
		errs = append(errs, errors.New("--sender-audience: must not be empty with --sender-auth=kubernetes"))
	}
	if o.maxRequestBytes < 1024 {
		errs = append(errs, errors.New("--max-request-bytes: must be at least 1024"))
	}
	errs = append(errs, o.addTrustKeys(cfg.TrustKeys)...)
	errs = append(errs, o.addTrustKeyDir(cfg.TrustKeys)...)
	if o.trustKeyDir != "" {
		if o.trustKeyReload <= 0 {
			errs = append(errs, errors.New("--trust-key-reload: must be positive"))
		}
		cfg.ReloadInterval = o.trustKeyReload
		cfg.ReloadTrustKeys = func() (map[string][]ed25519.PublicKey, error) {
			keys := map[string][]ed25519.PublicKey{}
			return keys, errors.Join(o.addTrustKeyDir(keys)...)
		}
	}
	return cfg, errors.Join(errs...)
}

// The values of --sender-auth.
const (
	senderAuthKubernetes = "kubernetes"
	senderAuthNone       = "none"
)

// senders is the authenticator --sender-auth asks for: with kubernetes, a
// client of the API server the logbook runs in (or of KUBECONFIG).
func (o *logbookOptions) senders() (logbook.SenderAuthenticator, error) {
	if o.senderAuth == senderAuthNone {
		return nil, nil
	}
	restCfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("--sender-auth=kubernetes needs the Kubernetes API (in the cluster, or KUBECONFIG): %w", err)
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("--sender-auth=kubernetes: %w", err)
	}
	return &logbook.KubernetesSenders{Client: c, Audience: o.senderAudience, EgressGateways: true}, nil
}

// addTrustKeys reads the --trust-key files into keys.
func (o *logbookOptions) addTrustKeys(keys map[string][]ed25519.PublicKey) []error {
	var errs []error
	for _, tk := range o.trustKeys {
		st, path, ok := strings.Cut(tk, "=")
		ns, name, ok2 := strings.Cut(st, "/")
		if !ok || !ok2 || ns == "" || name == "" || path == "" {
			errs = append(errs, fmt.Errorf("--trust-key: %q must be NAMESPACE/STORE=PATH", tk))
			continue
		}
		pub, err := auditlog.ReadPublicKeyFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("--trust-key: %w", err))
			continue
		}
		keys[st] = append(keys[st], pub)
	}
	return errs
}

// addTrustKeyDir reads the NAMESPACE_STORE[_SUFFIX].pem files of
// --trust-key-dir into keys.
func (o *logbookOptions) addTrustKeyDir(keys map[string][]ed25519.PublicKey) []error {
	if o.trustKeyDir == "" {
		return nil
	}
	entries, err := os.ReadDir(o.trustKeyDir)
	if err != nil {
		return []error{fmt.Errorf("--trust-key-dir: %w", err)}
	}
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pem")
		if !ok || e.IsDir() {
			continue // the ..data links of a mounted Secret, and other files
		}
		parts := strings.SplitN(name, "_", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			errs = append(errs, fmt.Errorf("--trust-key-dir: %s must be named NAMESPACE_STORE[_SUFFIX].pem", e.Name()))
			continue
		}
		pub, err := auditlog.ReadPublicKeyFile(filepath.Join(o.trustKeyDir, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("--trust-key-dir: %w", err))
			continue
		}
		st := parts[0] + "/" + parts[1]
		keys[st] = append(keys[st], pub)
	}
	return errs
}

func validSchemaName(s string) bool {
	if s == "" || len(s) > 63 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// logbookPool connects with the libpq environment variables, with the
// search_path set to schema (created when missing).
func logbookPool(ctx context.Context, schema string) (*pgxpool.Pool, error) {
	if !validSchemaName(schema) {
		return nil, fmt.Errorf("--schema: %q must be a lower-case SQL identifier (a-z, 0-9, _; at most 63)", schema)
	}
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, errors.New("the PostgreSQL connection settings (PG* environment variables) are invalid")
	}
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	pc.ConnConfig.RuntimeParams["application_name"] = "dossierguard-logbook"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, errors.New("cannot set up the PostgreSQL connection pool")
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, errors.New("cannot connect to PostgreSQL (check PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)")
	}
	if _, err := pool.Exec(cctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		// The ingest role may not create schemas; the schema must exist then.
		var n int
		if qerr := pool.QueryRow(cctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); qerr != nil || n == 0 {
			pool.Close()
			return nil, fmt.Errorf("schema %s does not exist and cannot be created: run `dossierguard logbook migrate` as its owner", schema)
		}
	}
	return pool, nil
}

func newLogbookRetainCommand() *cobra.Command {
	var (
		schema, period, signingKey string
		batch                      int
	)
	cmd := &cobra.Command{
		Use:   "retain --signing-key PATH",
		Short: "Remove the audit lines whose retention has passed, in batches, with signed removal records",
		Long: `retain removes, per chain, the lines older than the retention period up to the
chain's last checkpoint before the cutoff (the genesis line and that checkpoint
are kept), in transactions of --batch-size lines, each with a removal record
(chain, seq range, count, hash of the last removed line) signed with
--signing-key, so that audit verify --logbook still verifies the rest. It
prints the run as one JSON object. Run it as a role granted
dossierguard_logbook_retention; connection from the libpq environment
variables.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if signingKey == "" {
				return errors.New("--signing-key is required: the PEM Ed25519 key that signs the removal records")
			}
			key, err := auditlog.ReadPrivateKeyFile(signingKey)
			if err != nil {
				return fmt.Errorf("--signing-key: %w", err)
			}
			if _, _, _, err := v1alpha1.Period(period).Parse(); err != nil {
				return fmt.Errorf("--period: %w", err)
			}
			if batch < 1 {
				return errors.New("--batch-size: must be at least 1")
			}
			pool, err := logbookPool(cmd.Context(), schema)
			if err != nil {
				return err
			}
			defer pool.Close()
			rep, err := logbook.RemoveExpired(cmd.Context(), pool, logbook.RetentionConfig{
				Period: v1alpha1.Period(period), SigningKey: key, BatchSize: batch,
			})
			type removal struct {
				Chain string `json:"chain_id"`
				From  uint64 `json:"from_seq"`
				To    uint64 `json:"to_seq"`
				Count uint64 `json:"count"`
			}
			out := struct {
				Cutoff   string    `json:"cutoff"`
				Chains   int       `json:"chains"`
				Removed  uint64    `json:"removed"`
				Removals []removal `json:"removals"`
				Error    string    `json:"error,omitempty"`
			}{Cutoff: rep.Cutoff.UTC().Format(time.RFC3339), Chains: rep.Chains, Removed: rep.Removed, Removals: []removal{}}
			for _, r := range rep.Removals {
				out.Removals = append(out.Removals, removal{r.ChainID, r.FromSeq, r.ToSeq, r.Count})
			}
			if err != nil {
				out.Error = "the run stopped; the batches listed are removed and recorded"
			}
			_ = json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&schema, "schema", logbook.DefaultSchema, "PostgreSQL schema of the logbook.")
	f.StringVar(&period, "period", string(logbook.DefaultRetention), "How long audit lines are kept (ISO 8601 period such as P20Y). Default: the 20 years of the youth-care and medical record (Jeugdwet art. 7.3.8, WGBO); see docs/audit-log.md.")
	f.StringVar(&signingKey, "signing-key", "", "PEM Ed25519 private key (PKCS #8) of the logbook that signs the removal records (required).")
	f.IntVar(&batch, "batch-size", logbook.DefaultRetentionBatch, "Most lines removed per transaction.")
	return cmd
}
