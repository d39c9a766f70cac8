package auditproxy

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/httpserve"
)

// Defaults of Config.
const (
	DefaultListen          = ":8443"
	DefaultHealthListen    = ":8081"
	DefaultUpstream        = "http://127.0.0.1:8080"
	DefaultPolicyPath      = "/etc/dossierguard/policy/policy.json"
	DefaultAuditLogPath    = "/var/log/dossierguard/audit.jsonl"
	DefaultShutdownTimeout = httpserve.DefaultShutdownTimeout
)

// Config is everything `dossierguard audit-proxy` runs with. The command
// checks the flags and reads the key files; Run opens the rest.
type Config struct {
	// Listen and HealthListen are the addresses of the proxy and of the
	// probes. Listener and HealthListener, when set, are used instead.
	Listen, HealthListen     string
	Listener, HealthListener net.Listener
	// TLSCertFile and TLSKeyFile, when both set, make the proxy serve TLS;
	// the files are re-read when their content changes.
	TLSCertFile, TLSKeyFile string

	// Upstream is the application.
	Upstream *url.URL

	// PolicyPath is the access-policy document; PolicyPollInterval how often
	// it is read (DefaultPolicyPollInterval when 0).
	PolicyPath         string
	PolicyPollInterval time.Duration

	// Identity configures how callers are identified.
	Identity IdentityConfig

	// AssignmentURL is the assignment source's URL template; empty means
	// none. The cache holds at most AssignmentCacheSize answers for
	// AssignmentCacheTTL; AssignmentTimeout bounds one question.
	AssignmentURL       string
	AssignmentCacheSize int
	AssignmentCacheTTL  time.Duration
	AssignmentTimeout   time.Duration

	// ConsentURL is the consent source's URL template; empty means none.
	// The cache holds at most ConsentCacheSize positive answers for
	// ConsentCacheTTL (at most 60s); ConsentTimeout bounds one question.
	ConsentURL       string
	ConsentCacheSize int
	ConsentCacheTTL  time.Duration
	ConsentTimeout   time.Duration

	// SubjectRequestsStore, when set, has the proxy enforce the granted
	// restrictions and objections of that store's DataSubjectRequests in
	// SubjectRequestsNamespace, watched with the service account token in
	// KubeTokenDir (DefaultKubeTokenDir when empty). Until the first list
	// is read, and whenever it cannot be, every request for a dossier is
	// refused with 503.
	SubjectRequestsNamespace string
	SubjectRequestsStore     string
	KubeTokenDir             string

	// PseudonymKey makes the data-subject pseudonyms.
	PseudonymKey []byte
	// AuditLogPath is the audit log file; AuditMirror receives a copy of
	// every line (os.Stdout in the command). SigningKey signs checkpoints,
	// unless SigningKeyDir is set: then the newest active version of that
	// directory does, re-read every SigningKeyPollInterval
	// (DefaultSigningKeyPollInterval when 0; see SigningKeySource).
	AuditLogPath string
	// AuditLogMaxBytes bounds the audit log file (auditlog.Options.MaxBytes);
	// at the bound every request is refused with 503. 0 means none.
	AuditLogMaxBytes       int64
	AuditMirror            io.Writer
	SigningKey             ed25519.PrivateKey
	SigningKeyDir          string
	SigningKeyPollInterval time.Duration
	// AuditChain names the log's origin (a genesis line); AuditLogbook
	// ships every line to the logbook, which must acknowledge each event
	// before its request goes on. Both optional; see auditlog.Options.
	AuditChain   *auditlog.Chain
	AuditLogbook *auditlog.LogbookOptions
	// AuditFlood bounds floods of denied requests (auditlog.FloodGuard).
	AuditFlood auditlog.FloodOptions

	// SyncCompletion: see Options.
	SyncCompletion bool
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	ShutdownTimeout time.Duration

	// Logger receives the proxy's log.
	Logger *slog.Logger
}

// Run serves until ctx ends (SIGTERM in the command), then shuts down
// gracefully: readiness fails, the listener stops accepting, requests in
// flight finish (up to ShutdownTimeout, then their connections are closed),
// pending completion events are appended, and the audit log is closed with
// a final checkpoint. Nothing that was accepted for the log is lost.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	runCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()

	policies := NewPolicySource(cfg.PolicyPath, log)
	if _, err := policies.Reload(); err != nil {
		log.Warn("starting without an access policy; every request is refused until one loads", "path", cfg.PolicyPath)
	}
	auth, err := NewAuthenticator(runCtx, cfg.Identity, log)
	if err != nil {
		return err
	}
	assignments, err := assignmentSource(cfg)
	if err != nil {
		return err
	}
	consents, err := consentSource(cfg)
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	lns, err := httpserve.Listen(cfg.Listen, cfg.HealthListen, cfg.Listener, cfg.HealthListener)
	if err != nil {
		return err
	}
	defer lns.Close()

	writer, err := openAuditLog(runCtx, cfg, log)
	if err != nil {
		return err
	}
	sink := auditlog.NewFloodGuard(writer, cfg.AuditFlood)
	proxy, err := New(Options{
		Upstream: cfg.Upstream, Policies: policies, Authenticator: auth, Assignments: assignments, Consents: consents,
		SubjectRequests: subjectRequestSource(runCtx, cfg, log),
		Audit:           sink, PseudonymKey: cfg.PseudonymKey, SyncCompletion: cfg.SyncCompletion, Logger: log,
		Backlog: writer.Unshipped,
	})
	if err != nil {
		return errors.Join(err, sink.Close())
	}

	go policies.Run(runCtx, cfg.PolicyPollInterval)
	log.Info("audit proxy serving", "listen", lns.Serve.Addr().String(), "health", lns.Health.Addr().String(), "upstream", cfg.Upstream.Redacted(), "tls", tlsConfig != nil, "syncCompletion", cfg.SyncCompletion)
	return httpserve.Serve(ctx, lns, proxy, httpserve.Options{TLS: tlsConfig, ShutdownTimeout: cfg.ShutdownTimeout,
		CloseHijacked: proxy.CloseTunnels, Stop: stopBackground, AuditLog: sink, Log: log})
}

// openAuditLog opens the audit log with the signing key of cfg: SigningKey,
// or the active version of SigningKeyDir, which is then followed until ctx
// ends so that a rotated version is taken into use.
func openAuditLog(ctx context.Context, cfg Config, log *slog.Logger) (*auditlog.Writer, error) {
	return OpenAuditLog(ctx, auditlog.Options{Path: cfg.AuditLogPath, Mirror: cfg.AuditMirror, SigningKey: cfg.SigningKey,
		Chain: cfg.AuditChain, Logbook: cfg.AuditLogbook, MaxBytes: cfg.AuditLogMaxBytes, Preallocate: auditlog.DefaultPreallocate}, cfg.SigningKeyDir, cfg.SigningKeyPollInterval, log)
}

// subjectRequestSource starts the watch of the store's data-subject
// requests, nil when none is configured. When the API server cannot be
// reached with the proxy's token the source never syncs: every request for
// a dossier is refused, and the log says why.
func subjectRequestSource(ctx context.Context, cfg Config, log *slog.Logger) SubjectRequestSource {
	if cfg.SubjectRequestsStore == "" {
		return nil
	}
	dir := cfg.KubeTokenDir
	if dir == "" {
		dir = DefaultKubeTokenDir
	}
	kc, err := KubeConfig(dir)
	if err == nil {
		var k *KubeRequests
		if k, err = NewKubeRequests(kc, cfg.SubjectRequestsNamespace, cfg.SubjectRequestsStore, log); err == nil {
			go k.Run(ctx)
			return k
		}
	}
	log.Error("cannot watch the store's data-subject requests; every request for a dossier is refused", "store", cfg.SubjectRequestsStore, "error", err.Error())
	return StaticRequests{}
}

// assignmentSource is the assignment source of cfg, nil without one.
func assignmentSource(cfg Config) (AssignmentChecker, error) {
	if cfg.AssignmentURL == "" {
		return nil, nil
	}
	timeout := cfg.AssignmentTimeout
	if timeout <= 0 {
		timeout = DefaultAssignmentTimeout
	}
	client := &http.Client{Timeout: timeout, Transport: NewUpstreamTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	a, err := NewHTTPAssignments(cfg.AssignmentURL, client, cfg.AssignmentCacheSize, cfg.AssignmentCacheTTL)
	if err != nil {
		return nil, fmt.Errorf("assignment source: %w", err)
	}
	return a, nil
}

// consentSource is the consent source of cfg, or nil when none is
// configured.
func consentSource(cfg Config) (ConsentChecker, error) {
	return NewConsentSource(cfg.ConsentURL, cfg.ConsentCacheSize, cfg.ConsentCacheTTL, cfg.ConsentTimeout)
}

// NewConsentSource is the consent source at the URL template (nil for
// ""): positive answers cached (size, ttl), each question bounded by
// timeout (DefaultConsentTimeout when 0), redirects not followed.
func NewConsentSource(template string, size int, ttl, timeout time.Duration) (ConsentChecker, error) {
	if template == "" {
		return nil, nil
	}
	if timeout <= 0 {
		timeout = DefaultConsentTimeout
	}
	client := &http.Client{Timeout: timeout, Transport: NewUpstreamTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c, err := NewHTTPConsents(template, client, size, ttl, nil)
	if err != nil {
		return nil, fmt.Errorf("consent source: %w", err)
	}
	return c, nil
}

// serverTLS is the proxy's TLS configuration from the certificate files,
// re-read when they change (a rotated Secret); nil serves plain HTTP, which
// the command allows only with --plain-http.
func serverTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" {
		return nil, nil
	}
	cr := &certReloader{certFile: cfg.TLSCertFile, keyFile: cfg.TLSKeyFile}
	if _, err := cr.get(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cr.get() }}, nil
}

// certReloader serves the certificate in two files, re-reading them at most
// every two seconds and swapping when their content changed.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	sum     [32]byte
	checked time.Time
}

func (c *certReloader) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && time.Since(c.checked) < DefaultPolicyPollInterval {
		return c.cert, nil
	}
	c.checked = time.Now()
	certPEM, err1 := os.ReadFile(c.certFile)
	keyPEM, err2 := os.ReadFile(c.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	sum := sha256.Sum256(append(append([]byte{}, certPEM...), keyPEM...))
	if c.cert != nil && sum == c.sum {
		return c.cert, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // keep the last good pair while a rotation is half written
		}
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.sum = &cert, sum
	return c.cert, nil
}
