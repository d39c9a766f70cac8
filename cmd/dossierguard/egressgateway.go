package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/egressgateway"
	"github.com/dossierguard/dossierguard/internal/logbook"
)

// egressGatewayOptions are the flags of `dossierguard egress-gateway`. The
// audit log, its keys, the logbook and the consent source are configured
// as for the audit proxy, by the same flags and checks.
type egressGatewayOptions struct {
	auditProxyOptions
	tlsDir          string
	tokenAudience   string
	subjectReqs     bool
	checkKubernetes bool // false in tests that give the config no API server
}

func newEgressGatewayCommand() *cobra.Command {
	return egressGatewayCommand(&egressGatewayOptions{checkKubernetes: true})
}

// egressGatewayCommand is the command with its flags bound to opts.
func egressGatewayCommand(opts *egressGatewayOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "egress-gateway",
		Short: "Run a store's egress gateway: decide, record and send every request of the application to a partner",
		Long: `The egress gateway is the only way out from a store's application to its partners.
The application sends a request to /<agreement>/<partner path>; the gateway
verifies that the caller is a pod of the store's workload (its projected
ServiceAccount token, by TokenReview), matches an outbound route of the
agreement, decides the request per dossier as the audit proxy decides a
partner's (agreement in force, categories, purpose, consent from the consent
source, restriction and objection), records the decision durably in the
hash-chained audit log and only then sends it to the partner's endpoint over
TLS with the agreement's CA bundle and client certificate. See
docs/egress-gateway.md.`,
		Args: cobra.NoArgs,
		RunE: opts.run,
	}
	f := cmd.Flags()
	f.StringVar(&opts.listen, "listen", egressgateway.DefaultListen, "Address the gateway listens on for the application's requests (plain HTTP inside the namespace).")
	f.StringVar(&opts.healthListen, "health-listen", egressgateway.DefaultHealthListen, "Address of the /healthz and /readyz probes.")
	f.StringVar(&opts.policy, "policy", egressgateway.DefaultPolicyPath, "Egress document (the store's egress ConfigMap, mounted); polled every 2s and swapped when its content changes.")
	f.StringVar(&opts.tlsDir, "tls-dir", egressgateway.DefaultTLSDir, "Directory with a directory per agreement holding ca.crt and, for mutual TLS, tls.crt and tls.key; re-read when they change.")
	f.StringVar(&opts.store, "store", "", "The DossierStore, NAMESPACE/NAME, whose workload's pods may send; the audit log's genesis line names it. Required.")
	f.StringVar(&opts.podName, "pod-name", os.Getenv("POD_NAME"), "Name of this pod, for the genesis line (env POD_NAME).")
	f.StringVar(&opts.tokenAudience, "token-audience", v1alpha1.EgressGatewayTokenAudience, "Audience of the application pods' projected ServiceAccount tokens.")
	f.BoolVar(&opts.subjectReqs, "subject-requests", true, "Enforce the granted restrictions and objections of the store's DataSubjectRequests; until they are loaded every request for a dossier is refused with 503.")
	f.StringVar(&opts.auditLog, "audit-log", egressgateway.DefaultAuditLogPath, "Audit log file (JSON lines, hash-chained); every line is also written to stdout.")
	f.Int64Var(&opts.auditLogMax, "audit-log-max-bytes", 0, "Largest size of the audit log file; at it every request is refused with 503. 0 means no bound.")
	f.StringVar(&opts.signingKey, "signing-key", "", "PEM Ed25519 private key (PKCS #8) that signs the audit log's checkpoints. This or --signing-key-dir is required.")
	f.StringVar(&opts.signingKeyDir, "signing-key-dir", "", "Directory of versioned signing keys (the store's <store>-audit-signing Secret, mounted).")
	f.StringVar(&opts.pseudonymKey, "pseudonym-key", "", "File whose bytes (at least 32) are the key that pseudonymises dossier ids in the audit log (the store's). Required.")
	f.BoolVar(&opts.syncCompletion, "sync-completion", false, "Append the completion event before the partner's response is passed on, instead of in the background.")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", egressgateway.DefaultShutdownTimeout, "How long requests in flight may take to finish after SIGTERM.")
	f.StringVar(&opts.logbookURL, "logbook-url", "", "Base URL of the logbook (OTLP/HTTP): every line is shipped to it and every event must be acknowledged before the request goes on.")
	f.IntVar(&opts.logbookSpool, "logbook-max-pending", auditlog.DefaultMaxPending, "Most audit lines waiting for the logbook's acknowledgement; past it requests are refused with 503.")
	f.DurationVar(&opts.logbookAckTTL, "logbook-ack-timeout", auditlog.DefaultAckTimeout, "Longest a request waits for the logbook's acknowledgement of its event before it is refused with 503.")
	f.StringVar(&opts.logbookToken, "logbook-token-file", "", "File with the bearer token presented to the logbook: the pod's projected ServiceAccount token of audience "+logbook.DefaultSenderAudience+".")
	f.IntVar(&opts.floodThresh, "flood-threshold", auditlog.DefaultFloodThreshold, "Refused requests of one caller from one address recorded one by one per --flood-interval.")
	f.DurationVar(&opts.floodInterval, "flood-interval", auditlog.DefaultFloodInterval, "The window of --flood-threshold.")
	f.StringVar(&opts.logLevel, "log-level", "info", "Level of the gateway's own log on stderr: debug, info, warn or error.")
	f.StringVar(&opts.consentURL, "consent-url", "", "Consent source for agreements with per-dossier consent, as for the audit proxy.")
	f.IntVar(&opts.consentCacheSize, "consent-cache-size", auditproxy.DefaultConsentCacheSize, "Most positive consent answers kept in the cache.")
	f.DurationVar(&opts.consentCacheTTL, "consent-cache-ttl", v1alpha1.DefaultConsentCacheTTL, "How long a positive consent answer is cached, at most 60s.")
	f.DurationVar(&opts.consentTimeout, "consent-timeout", auditproxy.DefaultConsentTimeout, "How long to wait for the consent source before refusing.")
	return cmd
}

// run checks the flags and serves until SIGTERM.
func (o *egressGatewayOptions) run(cmd *cobra.Command, _ []string) error {
	cfg, err := o.config()
	if err != nil {
		return err
	}
	return serveRole(cmd, o.logLevel, func(ctx context.Context, log *slog.Logger, mirror io.Writer) error {
		cfg.Logger, cfg.AuditMirror = log, mirror
		return egressgateway.Run(ctx, cfg)
	})
}

// config checks the flags and reads the key files; every error names its
// flag, all at once.
func (o *egressGatewayOptions) config() (egressgateway.Config, error) {
	var errs flagErrors
	o.checkServing(&errs)
	if o.store == "" {
		errs.bad("store", "is required: NAMESPACE/NAME of the store whose workload may send")
	} else if ns, name, ok := strings.Cut(o.store, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		errs.bad("store", "%q must be NAMESPACE/NAME", o.store)
	}
	if o.tokenAudience == "" {
		errs.bad("token-audience", "must name the audience of the application's tokens")
	}
	if o.floodThresh < 1 {
		errs.bad("flood-threshold", "must be at least 1")
	}
	o.checkConsents(&errs)
	cfg := egressgateway.Config{
		Listen: o.listen, HealthListen: o.healthListen, PolicyPath: o.policy, TLSDir: o.tlsDir,
		Store: o.store, TokenAudience: o.tokenAudience, SubjectRequests: o.subjectReqs,
		ConsentURL: o.consentURL, ConsentCacheSize: o.consentCacheSize, ConsentCacheTTL: o.consentCacheTTL, ConsentTimeout: o.consentTimeout,
		AuditLogPath: o.auditLog, AuditLogMaxBytes: o.auditLogMax, SigningKeyDir: o.signingKeyDir,
		AuditFlood:     auditlog.FloodOptions{Threshold: o.floodThresh, Interval: o.floodInterval},
		SyncCompletion: o.syncCompletion, ShutdownTimeout: o.shutdownTimeout,
	}
	cfg.SigningKey, cfg.PseudonymKey = o.keys(&errs)
	cfg.AuditChain, cfg.AuditLogbook = o.logbook(&errs)
	if len(errs) > 0 {
		return egressgateway.Config{}, errors.Join(errs...)
	}
	if o.checkKubernetes {
		kube, err := ctrlconfig.GetConfig()
		if err != nil {
			return egressgateway.Config{}, errors.New("the egress gateway verifies its callers with the Kubernetes API (in the cluster, or KUBECONFIG): " + err.Error())
		}
		cfg.Kube = kube
	}
	return cfg, nil
}

// checkServing checks the listen addresses, the policy, the TLS directory,
// the audit log's path and bound, the shutdown timeout and the log level.
func (o *egressGatewayOptions) checkServing(errs *flagErrors) {
	checkListenAddr(errs, "listen", o.listen)
	checkListenAddr(errs, "health-listen", o.healthListen)
	if o.listen == o.healthListen {
		errs.bad("health-listen", "must differ from --listen")
	}
	if o.policy == "" {
		errs.bad("policy", "is required: the egress document to enforce")
	}
	if fi, err := os.Stat(o.tlsDir); err != nil || !fi.IsDir() {
		errs.bad("tls-dir", "%s is not a directory: it holds a directory of TLS files per agreement", o.tlsDir)
	}
	if o.auditLog == "" {
		errs.bad("audit-log", "is required: the audit log file")
	} else if fi, err := os.Stat(filepath.Dir(o.auditLog)); err != nil || !fi.IsDir() {
		errs.bad("audit-log", "the directory of %s does not exist", o.auditLog)
	}
	if o.auditLogMax < 0 || (o.auditLogMax > 0 && o.auditLogMax < 1<<20) {
		errs.bad("audit-log-max-bytes", "%d must be 0 (no bound) or at least 1048576 (1 MiB)", o.auditLogMax)
	}
	if o.shutdownTimeout <= 0 {
		errs.bad("shutdown-timeout", "must be positive")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		errs.bad("log-level", "must be debug, info, warn or error")
	}
}
