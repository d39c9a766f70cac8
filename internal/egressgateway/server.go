package egressgateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/httpserve"
)

// Defaults of Config.
const (
	DefaultListen          = ":8080"
	DefaultHealthListen    = ":8081"
	DefaultPolicyPath      = "/etc/dossierguard/egress/egress.json"
	DefaultTLSDir          = "/etc/dossierguard/partners"
	DefaultAuditLogPath    = "/var/log/dossierguard/egress-audit.jsonl"
	DefaultShutdownTimeout = httpserve.DefaultShutdownTimeout
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

// Run serves until ctx ends, then shuts down gracefully as the audit proxy
// does (httpserve.Serve): readiness fails, the listener stops accepting,
// requests in flight finish (up to ShutdownTimeout), pending completion
// events are appended and the audit log is closed with a final checkpoint.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
	lns, err := httpserve.Listen(cfg.Listen, cfg.HealthListen, cfg.Listener, cfg.HealthListener)
	if err != nil {
		return err
	}
	defer lns.Close()

	writer, err := auditproxy.OpenAuditLog(runCtx, auditLogOptions(cfg), cfg.SigningKeyDir, cfg.SigningKeyPollInterval, log)
	if err != nil {
		return err
	}
	sink := auditlog.NewFloodGuard(writer, cfg.AuditFlood)
	gw, err := New(Options{Policies: policies, Callers: callers, Consents: consents, SubjectRequests: requests,
		Transports: &PartnerTransports{Dir: cfg.TLSDir}, Audit: sink, PseudonymKey: cfg.PseudonymKey,
		SyncCompletion: cfg.SyncCompletion, Logger: log, Backlog: writer.Unshipped})
	if err != nil {
		return errors.Join(err, sink.Close())
	}
	go policies.Run(runCtx, cfg.PolicyPollInterval)
	log.Info("egress gateway serving", "listen", lns.Serve.Addr().String(), "health", lns.Health.Addr().String(), "store", cfg.Store, "syncCompletion", cfg.SyncCompletion)
	return httpserve.Serve(ctx, lns, gw, httpserve.Options{ShutdownTimeout: cfg.ShutdownTimeout, Stop: stopBackground, AuditLog: sink, Log: log})
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

// auditLogOptions are the options of the gateway's audit log: its file
// grown in preallocated segments, each commit made durable with fdatasync
// (auditlog.Options.Preallocate). The benchmark writes its log with them
// too.
func auditLogOptions(cfg Config) auditlog.Options {
	return auditlog.Options{Path: cfg.AuditLogPath, Mirror: cfg.AuditMirror, SigningKey: cfg.SigningKey,
		Chain: cfg.AuditChain, Logbook: cfg.AuditLogbook, MaxBytes: cfg.AuditLogMaxBytes, Preallocate: auditlog.DefaultPreallocate}
}
