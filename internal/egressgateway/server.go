package egressgateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
)

// Defaults of Config.
const (
	DefaultListen          = ":8080"
	DefaultHealthListen    = ":8081"
	DefaultPolicyPath      = "/etc/dossierguard/egress/egress.json"
	DefaultTLSDir          = "/etc/dossierguard/partners"
	DefaultAuditLogPath    = "/var/log/dossierguard/egress-audit.jsonl"
	DefaultShutdownTimeout = 25 * time.Second
)

// Config is everything `dossierguard egress-gateway` runs with. The command
// checks the flags and reads the key files; Run opens the rest.
type Config struct {
	// Listen and HealthListen are the addresses of the gateway and of the
	// probes; Listener and HealthListener, when set, are used instead.
	Listen, HealthListen     string
	Listener, HealthListener net.Listener

	// PolicyPath is the egress document; PolicyPollInterval how often it is
	// read (auditproxy.DefaultPolicyPollInterval when 0).
	PolicyPath         string
	PolicyPollInterval time.Duration
	// TLSDir holds each agreement's TLS files (see PartnerTransports).
	TLSDir string

	// Store is the store, NAMESPACE/NAME, whose workload's pods may send.
	Store string
	// Callers authenticates them; nil means KubernetesSenders on Kube
	// with TokenAudience.
	Callers WorkloadAuthenticator
	// Kube reaches the API server for TokenReviews (and the store's
	// data-subject requests with SubjectRequests).
	Kube          *rest.Config
	TokenAudience string
	// SubjectRequests has the gateway enforce the granted restrictions and
	// objections of the store's DataSubjectRequests.
	SubjectRequests bool

	// The consent source: see auditproxy.Config.
	ConsentURL       string
	ConsentCacheSize int
	ConsentCacheTTL  time.Duration
	ConsentTimeout   time.Duration

	// The audit log: see auditproxy.Config.
	PseudonymKey           []byte
	AuditLogPath           string
	AuditLogMaxBytes       int64
	AuditMirror            io.Writer
	SigningKey             ed25519.PrivateKey
	SigningKeyDir          string
	SigningKeyPollInterval time.Duration
	AuditChain             *auditlog.Chain
	AuditLogbook           *auditlog.LogbookOptions
	AuditFlood             auditlog.FloodOptions

	SyncCompletion  bool
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Run serves until ctx ends, then shuts down gracefully: readiness fails,
// the listener stops accepting, requests in flight finish (up to
// ShutdownTimeout), pending completion events are appended and the audit
// log is closed with a final checkpoint.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	runCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()

	policies := NewPolicySource(cfg.PolicyPath, log)
	if _, err := policies.Reload(); err != nil {
		log.Warn("starting without an egress policy; every request is refused until one loads", "path", cfg.PolicyPath)
	}
	callers, err := callersOf(cfg)
	if err != nil {
		return err
	}
	consents, err := auditproxy.NewConsentSource(cfg.ConsentURL, cfg.ConsentCacheSize, cfg.ConsentCacheTTL, cfg.ConsentTimeout)
	if err != nil {
		return err
	}
	requests, err := subjectRequests(runCtx, cfg, log)
	if err != nil {
		return err
	}
	ln, hln, err := listeners(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = ln.Close() }()
	defer func() { _ = hln.Close() }()

	writer, err := auditproxy.OpenAuditLog(runCtx, auditlog.Options{Path: cfg.AuditLogPath, Mirror: cfg.AuditMirror, SigningKey: cfg.SigningKey,
		Chain: cfg.AuditChain, Logbook: cfg.AuditLogbook, MaxBytes: cfg.AuditLogMaxBytes}, cfg.SigningKeyDir, cfg.SigningKeyPollInterval, log)
	if err != nil {
		return err
	}
	sink := auditlog.NewFloodGuard(writer, cfg.AuditFlood)
	gw, err := New(Options{Policies: policies, Callers: callers, Consents: consents, SubjectRequests: requests,
		Transports: &PartnerTransports{Dir: cfg.TLSDir}, Audit: sink, PseudonymKey: cfg.PseudonymKey,
		SyncCompletion: cfg.SyncCompletion, Logger: log})
	if err != nil {
		return errors.Join(err, sink.Close())
	}
	go policies.Run(runCtx, cfg.PolicyPollInterval)

	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: errLog}
	health := &http.Server{Handler: gw.HealthHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() { serveErr <- health.Serve(hln) }()
	log.Info("egress gateway serving", "listen", ln.Addr().String(), "health", hln.Addr().String(), "store", cfg.Store, "syncCompletion", cfg.SyncCompletion)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight")
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
		log.Error("server stopped; shutting down", "error", err.Error())
	}
	gw.BeginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight after the shutdown timeout; closing their connections", "timeout", cfg.ShutdownTimeout.String())
		_ = srv.Close()
	}
	cancel()
	gw.Wait()
	stopBackground()
	if err := sink.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close the audit log: %w", err))
		log.Error("closing the audit log failed", "error", err.Error())
	} else {
		log.Info("audit log closed with a final checkpoint")
	}
	hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
	_ = health.Shutdown(hctx)
	hcancel()
	return runErr
}

// callersOf is the workload authenticator of cfg.
func callersOf(cfg Config) (WorkloadAuthenticator, error) {
	if cfg.Callers != nil {
		return cfg.Callers, nil
	}
	if cfg.Kube == nil {
		return nil, errors.New("egress gateway: no connection to the Kubernetes API to verify callers with")
	}
	return NewKubernetesCallers(cfg.Kube, cfg.TokenAudience)
}

// subjectRequests starts the watch of the store's data-subject requests,
// nil without SubjectRequests.
func subjectRequests(ctx context.Context, cfg Config, log *slog.Logger) (auditproxy.SubjectRequestSource, error) {
	if !cfg.SubjectRequests {
		return nil, nil
	}
	ns, name, ok := strings.Cut(cfg.Store, "/")
	if !ok || cfg.Kube == nil {
		return nil, errors.New("egress gateway: the store's restrictions need the store (NAMESPACE/NAME) and the Kubernetes API")
	}
	k, err := auditproxy.NewKubeRequests(cfg.Kube, ns, name, log)
	if err != nil {
		return nil, err
	}
	go k.Run(ctx)
	return k, nil
}

func listeners(cfg Config) (ln, hln net.Listener, err error) {
	ln, hln = cfg.Listener, cfg.HealthListener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	if hln == nil {
		if hln, err = net.Listen("tcp", cfg.HealthListen); err != nil {
			_ = ln.Close()
			return nil, nil, fmt.Errorf("listen on %s: %w", cfg.HealthListen, err)
		}
	}
	return ln, hln, nil
}
