package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/http/httpguts"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
)

// auditProxyOptions are the flags of `dossierguard audit-proxy`.
type auditProxyOptions struct {
	listen          string
	healthListen    string
	upstream        string
	tlsCertFile     string
	tlsKeyFile      string
	plainHTTP       bool
	policy          string
	auditLog        string
	auditLogMax     int64
	signingKey      string
	signingKeyDir   string
	pseudonymKey    string
	syncCompletion  bool
	shutdownTimeout time.Duration
	logLevel        string

	store         string
	podName       string
	logbookURL    string
	logbookSpool  int
	logbookAckTTL time.Duration
	logbookToken  string
	floodThresh   int
	floodInterval time.Duration

	oidcIssuer        string
	oidcAudience      string
	oidcJWKSFile      string
	oidcUsernameClaim string
	oidcGroupsClaim   string

	trustedProxyCIDRs []string
	userHeader        string
	groupsHeader      string

	assignmentURL       string
	assignmentCacheSize int
	assignmentCacheTTL  time.Duration
	assignmentTimeout   time.Duration

	consentURL       string
	consentCacheSize int
	consentCacheTTL  time.Duration
	consentTimeout   time.Duration

	subjectRequests string
	kubeTokenDir    string
}

func newAuditProxyCommand() *cobra.Command {
	var opts auditProxyOptions
	cmd := &cobra.Command{
		Use:   "audit-proxy",
		Short: "Run the audit proxy sidecar: authorise every request to the case-management application and record it in the audit log",
		Long: `The audit proxy runs next to the case-management application and is the only
way in: it identifies the caller (an OpenID Connect bearer token, or the headers
of an authenticating proxy at a trusted address), decides from the store's
access-policy document whether the caller's roles grant every data category the
route touches, records the decision durably in the hash-chained audit log, and
only then forwards the request. Every request, allowed or denied, is recorded.
See docs/audit-proxy.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := opts.config()
			if err != nil {
				return err
			}
			return serveRole(cmd, opts.logLevel, func(ctx context.Context, log *slog.Logger, mirror io.Writer) error {
				cfg.Logger, cfg.AuditMirror = log, mirror
				return auditproxy.Run(ctx, cfg)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.listen, "listen", auditproxy.DefaultListen, "Address the proxy listens on (the store's proxy port).")
	f.StringVar(&opts.healthListen, "health-listen", auditproxy.DefaultHealthListen, "Address of the /healthz and /readyz probes.")
	f.StringVar(&opts.upstream, "upstream", auditproxy.DefaultUpstream, "URL of the application in the same pod.")
	f.StringVar(&opts.tlsCertFile, "tls-cert-file", "", "PEM certificate to serve TLS with (with --tls-key-file); re-read when it changes. Required unless --plain-http.")
	f.StringVar(&opts.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file.")
	f.BoolVar(&opts.plainHTTP, "plain-http", false, "Serve plain HTTP instead of TLS: bearer tokens and dossiers then cross the network in clear. Only where something else protects the traffic (the store's spec.workload.proxyTLS.mode Disabled).")
	f.StringVar(&opts.policy, "policy", auditproxy.DefaultPolicyPath, "Access-policy document (the store's ConfigMap, mounted as a volume); polled every 2s and swapped when its content changes.")
	f.StringVar(&opts.auditLog, "audit-log", auditproxy.DefaultAuditLogPath, "Audit log file (JSON lines, hash-chained); every line is also written to stdout.")
	f.StringVar(&opts.signingKey, "signing-key", "", "PEM Ed25519 private key (PKCS #8) that signs the audit log's checkpoints. This or --signing-key-dir is required.")
	f.StringVar(&opts.signingKeyDir, "signing-key-dir", "", "Directory of versioned signing keys (the store's <store>-audit-signing Secret, mounted): checkpoints are signed with the newest version whose signing-N.active-from has come; read again every 10s, so a rotated version is taken into use without a restart.")
	f.Int64Var(&opts.auditLogMax, "audit-log-max-bytes", 0, "Largest size of the audit log file, below its volume's size limit: at it the log ends with a signed checkpoint and every request is refused with 503 until the pod is replaced. 0 means no bound.")
	f.StringVar(&opts.pseudonymKey, "pseudonym-key", "", "File whose bytes (at least 32) are the key that pseudonymises dossier ids in the audit log. Required.")
	f.BoolVar(&opts.syncCompletion, "sync-completion", false, "Append the completion event before the response is passed on, instead of in the background.")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", auditproxy.DefaultShutdownTimeout, "How long requests in flight may take to finish after SIGTERM.")
	f.StringVar(&opts.store, "store", "", "The DossierStore, NAMESPACE/NAME: the audit log starts with a genesis line naming it, this pod (--pod-name) and a random incarnation.")
	f.StringVar(&opts.podName, "pod-name", os.Getenv("POD_NAME"), "Name of this pod, for the genesis line (env POD_NAME).")
	f.StringVar(&opts.logbookURL, "logbook-url", "", "Base URL of the logbook (OTLP/HTTP): every line is shipped to it and every event must be acknowledged by it before the request goes on. Needs --store.")
	f.IntVar(&opts.logbookSpool, "logbook-max-pending", auditlog.DefaultMaxPending, "Most audit lines waiting for the logbook's acknowledgement; past it requests are refused with 503.")
	f.DurationVar(&opts.logbookAckTTL, "logbook-ack-timeout", auditlog.DefaultAckTimeout, "Longest a request waits for the logbook's acknowledgement of its event before it is refused with 503.")
	f.StringVar(&opts.logbookToken, "logbook-token-file", "", "File with the bearer token presented to the logbook: the pod's projected ServiceAccount token of audience "+logbook.DefaultSenderAudience+", which the webhook mounts; read for every request.")
	f.IntVar(&opts.floodThresh, "flood-threshold", auditlog.DefaultFloodThreshold, "Denied requests of one caller from one address recorded one by one per --flood-interval; the rest become one event with their count.")
	f.DurationVar(&opts.floodInterval, "flood-interval", auditlog.DefaultFloodInterval, "The window of --flood-threshold.")
	f.StringVar(&opts.logLevel, "log-level", "info", "Level of the proxy's own log on stderr: debug, info, warn or error.")

	f.StringVar(&opts.oidcIssuer, "oidc-issuer", "", "OpenID Connect issuer URL whose bearer tokens are accepted (https; http only for a loopback host).")
	f.StringVar(&opts.oidcAudience, "oidc-audience", "", "Audience the tokens must be issued for. Required with --oidc-issuer.")
	f.StringVar(&opts.oidcJWKSFile, "oidc-jwks-file", "", "JSON Web Key Set file to verify tokens offline, instead of the issuer's discovery document.")
	f.StringVar(&opts.oidcUsernameClaim, "oidc-username-claim", auditproxy.DefaultUsernameClaim, "Token claim that names the caller, such as sub, preferred_username or email.")
	f.StringVar(&opts.oidcGroupsClaim, "oidc-groups-claim", auditproxy.DefaultGroupsClaim, "Token claim that lists the caller's groups.")

	f.StringSliceVar(&opts.trustedProxyCIDRs, "trusted-proxy-cidrs", nil, "Source CIDRs of an authenticating proxy (oauth2-proxy style) whose identity headers are accepted; from anyone else they are stripped.")
	f.StringVar(&opts.userHeader, "user-header", auditproxy.DefaultUserHeader, "Header with the user set by the trusted proxy.")
	f.StringVar(&opts.groupsHeader, "groups-header", auditproxy.DefaultGroupsHeader, "Header with the comma-separated groups set by the trusted proxy.")

	f.StringVar(&opts.assignmentURL, "assignment-url", "", "Assignment source for roles limited to assigned cases: an http(s) GET URL template with {user} and {dossier}; 200 = assigned, 404 = not, anything else = denied.")
	f.IntVar(&opts.assignmentCacheSize, "assignment-cache-size", auditproxy.DefaultAssignmentCacheSize, "Most assignment answers kept in the cache.")
	f.DurationVar(&opts.assignmentCacheTTL, "assignment-cache-ttl", auditproxy.DefaultAssignmentCacheTTL, "How long an assignment answer is cached.")
	f.DurationVar(&opts.assignmentTimeout, "assignment-timeout", auditproxy.DefaultAssignmentTimeout, "How long to wait for the assignment source before denying.")

	f.StringVar(&opts.consentURL, "consent-url", "", "Consent source for agreements with per-dossier consent: an http(s) GET URL template with {dossier} and {agreement} and/or {partner}; 200 = given, 404/410 = none/withdrawn, anything else = denied.")
	f.IntVar(&opts.consentCacheSize, "consent-cache-size", auditproxy.DefaultConsentCacheSize, "Most positive consent answers kept in the cache.")
	f.DurationVar(&opts.consentCacheTTL, "consent-cache-ttl", v1alpha1.DefaultConsentCacheTTL, "How long a positive consent answer is cached, at most 60s: a withdrawal takes effect within it.")
	f.DurationVar(&opts.consentTimeout, "consent-timeout", auditproxy.DefaultConsentTimeout, "How long to wait for the consent source before denying.")

	f.StringVar(&opts.subjectRequests, "subject-requests", "", "NAMESPACE/STORE: enforce the granted restrictions and objections of the store's DataSubjectRequests, watched with the service account token in --kube-token-dir; until they are loaded every request for a dossier is refused with 503.")
	f.StringVar(&opts.kubeTokenDir, "kube-token-dir", auditproxy.DefaultKubeTokenDir, "Directory with the service account token (token) and the cluster's CA (ca.crt) for --subject-requests.")
	return cmd
}

// serveRole runs a serving role (audit proxy, egress gateway) until SIGTERM
// or an interrupt: its own log as JSON on stderr at logLevel (checked by
// the role's config), the audit lines mirrored to stdout.
func serveRole(cmd *cobra.Command, logLevel string, run func(ctx context.Context, log *slog.Logger, mirror io.Writer) error) error {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(logLevel))
	log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, log, cmd.OutOrStdout())
}

// flagErrors collects the flag errors of a command, each naming its flag,
// so that all of them are reported at once.
type flagErrors []error

func (e *flagErrors) bad(flag, format string, args ...any) {
	*e = append(*e, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
}

// config checks the flags and reads the key files. Every error names its
// flag; all flag errors are reported at once.
func (o *auditProxyOptions) config() (auditproxy.Config, error) {
	var errs flagErrors
	cfg := auditproxy.Config{
		Listen: o.listen, HealthListen: o.healthListen,
		TLSCertFile: o.tlsCertFile, TLSKeyFile: o.tlsKeyFile,
		PolicyPath: o.policy, AuditLogPath: o.auditLog, AuditLogMaxBytes: o.auditLogMax,
		SyncCompletion: o.syncCompletion, ShutdownTimeout: o.shutdownTimeout,
		AssignmentURL: o.assignmentURL, AssignmentCacheSize: o.assignmentCacheSize,
		AssignmentCacheTTL: o.assignmentCacheTTL, AssignmentTimeout: o.assignmentTimeout,
		ConsentURL: o.consentURL, ConsentCacheSize: o.consentCacheSize,
		ConsentCacheTTL: o.consentCacheTTL, ConsentTimeout: o.consentTimeout,
	}
	cfg.Upstream = o.checkServing(&errs)
	cfg.Identity = o.identity(&errs)
	o.checkAssignments(&errs)
	o.checkConsents(&errs)
	cfg.SigningKey, cfg.PseudonymKey = o.keys(&errs)
	cfg.SigningKeyDir = o.signingKeyDir
	cfg.AuditChain, cfg.AuditLogbook = o.logbook(&errs)
	if o.auditLogMax < 0 || (o.auditLogMax > 0 && o.auditLogMax < 1<<20) {
		errs.bad("audit-log-max-bytes", "%d must be 0 (no bound) or at least 1048576 (1 MiB)", o.auditLogMax)
	}
	if o.floodThresh < 1 {
		errs.bad("flood-threshold", "must be at least 1")
	}
	if o.floodInterval < time.Second {
		errs.bad("flood-interval", "must be at least 1s")
	}
	cfg.AuditFlood = auditlog.FloodOptions{Threshold: o.floodThresh, Interval: o.floodInterval}
	cfg.SubjectRequestsNamespace, cfg.SubjectRequestsStore = o.checkSubjectRequests(&errs)
	cfg.KubeTokenDir = o.kubeTokenDir
	if len(errs) > 0 {
		return auditproxy.Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// checkSubjectRequests checks --subject-requests: empty, or NAMESPACE/STORE.
func (o *auditProxyOptions) checkSubjectRequests(errs *flagErrors) (namespace, store string) {
	if o.subjectRequests == "" {
		return "", ""
	}
	ns, name, ok := strings.Cut(o.subjectRequests, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		errs.bad("subject-requests", "%q must be NAMESPACE/STORE", o.subjectRequests)
		return "", ""
	}
	if o.kubeTokenDir == "" {
		errs.bad("kube-token-dir", "is required with --subject-requests")
	}
	return ns, name
}

// checkServing checks the listen addresses, the upstream, TLS, the policy and
// audit-log paths, the shutdown timeout and the log level; it returns the
// parsed upstream URL.
func (o *auditProxyOptions) checkServing(errs *flagErrors) *url.URL {
	checkListenAddr(errs, "listen", o.listen)
	checkListenAddr(errs, "health-listen", o.healthListen)
	if o.listen == o.healthListen {
		errs.bad("health-listen", "must differ from --listen")
	}
	var upstream *url.URL
	if u, err := url.Parse(o.upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		errs.bad("upstream", "%q must be an http(s) URL of the application, such as %s", o.upstream, auditproxy.DefaultUpstream)
	} else {
		upstream = u
	}
	o.checkTLS(errs)
	if o.policy == "" {
		errs.bad("policy", "is required: the access-policy document to enforce")
	}
	if o.auditLog == "" {
		errs.bad("audit-log", "is required: the audit log file")
	} else if fi, err := os.Stat(filepath.Dir(o.auditLog)); err != nil || !fi.IsDir() {
		errs.bad("audit-log", "the directory of %s does not exist", o.auditLog)
	}
	if o.shutdownTimeout <= 0 {
		errs.bad("shutdown-timeout", "must be positive")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		errs.bad("log-level", "must be debug, info, warn or error")
	}
	return upstream
}

// checkTLS: the proxy serves TLS, with a certificate and its key; plain
// HTTP only with --plain-http, explicitly, and then without a certificate.
func (o *auditProxyOptions) checkTLS(errs *flagErrors) {
	switch {
	case (o.tlsCertFile == "") != (o.tlsKeyFile == ""):
		errs.bad("tls-key-file", "--tls-cert-file and --tls-key-file go together")
	case o.plainHTTP && o.tlsCertFile != "":
		errs.bad("plain-http", "contradicts --tls-cert-file: serve TLS or plain HTTP, not both")
	case !o.plainHTTP && o.tlsCertFile == "":
		errs.bad("tls-cert-file", "is required: the proxy serves TLS (with --tls-key-file); plain HTTP only with --plain-http, explicitly")
	}
}

// checkListenAddr checks that addr is a host:port to listen on.
func checkListenAddr(errs *flagErrors, flag, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		errs.bad(flag, "%q is not a listen address such as :8443 or 127.0.0.1:8443", addr)
	}
}

// identity checks the identity sources: OIDC, the trusted proxy's CIDRs and
// its headers.
func (o *auditProxyOptions) identity(errs *flagErrors) auditproxy.IdentityConfig {
	id := auditproxy.IdentityConfig{UserHeader: o.userHeader, GroupsHeader: o.groupsHeader}
	if o.oidcIssuer == "" && len(o.trustedProxyCIDRs) == 0 {
		*errs = append(*errs, errors.New("--oidc-issuer or --trusted-proxy-cidrs: no identity source is configured, so every request would be refused; set --oidc-issuer with --oidc-audience, --trusted-proxy-cidrs, or both"))
	}
	id.OIDC = o.oidc(errs)
	id.TrustedProxyCIDRs = o.trustedProxies(errs)
	o.checkHeaders(errs)
	return id
}

// oidc checks the OIDC flags and reads the static JWKS file; nil when no
// issuer is set.
func (o *auditProxyOptions) oidc(errs *flagErrors) *auditproxy.OIDCConfig {
	if o.oidcIssuer == "" {
		if o.oidcAudience != "" {
			errs.bad("oidc-audience", "needs --oidc-issuer")
		}
		if o.oidcJWKSFile != "" {
			errs.bad("oidc-jwks-file", "needs --oidc-issuer")
		}
		return nil
	}
	if err := checkIssuer(o.oidcIssuer); err != nil {
		errs.bad("oidc-issuer", "%v", err)
	}
	if o.oidcAudience == "" {
		errs.bad("oidc-audience", "is required with --oidc-issuer: the audience (client id) the tokens must be issued for")
	}
	if o.oidcUsernameClaim == "" {
		errs.bad("oidc-username-claim", "must name a claim, such as sub")
	}
	if o.oidcGroupsClaim == "" {
		errs.bad("oidc-groups-claim", "must name a claim, such as groups")
	}
	oc := &auditproxy.OIDCConfig{IssuerURL: o.oidcIssuer, Audience: o.oidcAudience,
		UsernameClaim: o.oidcUsernameClaim, GroupsClaim: o.oidcGroupsClaim}
	if o.oidcJWKSFile != "" {
		keys, err := auditproxy.LoadJWKSFile(o.oidcJWKSFile)
		if err != nil {
			errs.bad("oidc-jwks-file", "%v", err)
		}
		oc.StaticKeys = keys
	}
	return oc
}

// trustedProxies parses --trusted-proxy-cidrs; a /0 would trust everyone.
func (o *auditProxyOptions) trustedProxies(errs *flagErrors) []netip.Prefix {
	var prefixes []netip.Prefix
	for _, c := range o.trustedProxyCIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			errs.bad("trusted-proxy-cidrs", "%q is not a CIDR such as 10.0.0.0/24", c)
			continue
		}
		if p.Bits() == 0 {
			errs.bad("trusted-proxy-cidrs", "%q trusts every address; name the authenticating proxy's addresses", c)
			continue
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes
}

// checkHeaders checks the trusted proxy's identity headers: valid, distinct
// and none the proxy itself reads.
func (o *auditProxyOptions) checkHeaders(errs *flagErrors) {
	if !isHeaderName(o.userHeader) {
		errs.bad("user-header", "%q is not an HTTP header name", o.userHeader)
	}
	if !isHeaderName(o.groupsHeader) {
		errs.bad("groups-header", "%q is not an HTTP header name", o.groupsHeader)
	}
	if auditproxy.NormalisedHeaderName(o.userHeader) == auditproxy.NormalisedHeaderName(o.groupsHeader) {
		errs.bad("groups-header", "must differ from --user-header, also when - and _ are read alike")
	}
	for _, fh := range [][2]string{{"user-header", o.userHeader}, {"groups-header", o.groupsHeader}} {
		flag, h := fh[0], fh[1]
		for _, reserved := range []string{"Authorization", "Host", "Cookie", "Connection", "Upgrade", auditproxy.BreakGlassHeader, auditproxy.TraceparentHeader} {
			if auditproxy.NormalisedHeaderName(h) == auditproxy.NormalisedHeaderName(reserved) {
				errs.bad(flag, "%q is reserved; name the header the authenticating proxy sets", h)
			}
		}
	}
}

// checkConsents checks the consent source, its cache and its timeout.
func (o *auditProxyOptions) checkConsents(errs *flagErrors) {
	if o.consentURL != "" {
		if err := auditproxy.ValidateConsentURL(o.consentURL); err != nil {
			errs.bad("consent-url", "%v", err)
		}
	}
	if o.consentCacheSize <= 0 {
		errs.bad("consent-cache-size", "must be at least 1")
	}
	if o.consentCacheTTL <= 0 || o.consentCacheTTL > v1alpha1.MaxConsentCacheTTL {
		errs.bad("consent-cache-ttl", "must be above 0s and at most %s, such as 5s", v1alpha1.MaxConsentCacheTTL)
	}
	if o.consentTimeout <= 0 {
		errs.bad("consent-timeout", "must be positive, such as 2s")
	}
}

// checkAssignments checks the assignment source and its cache.
func (o *auditProxyOptions) checkAssignments(errs *flagErrors) {
	if o.assignmentURL != "" {
		if err := auditproxy.ValidateAssignmentURL(o.assignmentURL); err != nil {
			errs.bad("assignment-url", "%v", err)
		}
	}
	if o.assignmentCacheSize <= 0 {
		errs.bad("assignment-cache-size", "must be at least 1")
	}
	if o.assignmentCacheTTL <= 0 {
		errs.bad("assignment-cache-ttl", "must be positive, such as 30s")
	}
	if o.assignmentTimeout <= 0 {
		errs.bad("assignment-timeout", "must be positive, such as 2s")
	}
}

// keys reads the checkpoint signing key (a file, or the active version of
// a directory; with a directory the proxy loads it again when it starts)
// and the pseudonym key.
func (o *auditProxyOptions) keys(errs *flagErrors) (ed25519.PrivateKey, []byte) {
	var priv ed25519.PrivateKey
	switch {
	case o.signingKey != "" && o.signingKeyDir != "":
		errs.bad("signing-key-dir", "contradicts --signing-key: give one signing key file or one directory of versions")
	case o.signingKeyDir != "":
		if k, err := auditproxy.NewSigningKeySource(o.signingKeyDir, nil, nil).Load(); err != nil {
			errs.bad("signing-key-dir", "%v", err)
		} else {
			priv = k.Key
		}
	case o.signingKey == "":
		errs.bad("signing-key", "is required (or --signing-key-dir): the PEM Ed25519 private key that signs the audit log's checkpoints")
	default:
		if k, err := auditlog.ReadPrivateKeyFile(o.signingKey); err != nil {
			errs.bad("signing-key", "%v", err)
		} else {
			priv = k
		}
	}
	var pseudonymKey []byte
	if o.pseudonymKey == "" {
		errs.bad("pseudonym-key", "is required: the file with the key that pseudonymises dossier ids")
	} else if key, err := os.ReadFile(o.pseudonymKey); err != nil {
		errs.bad("pseudonym-key", "%v", err)
	} else if err := auditlog.CheckPseudonymKey(key); err != nil {
		errs.bad("pseudonym-key", "%s: %v", o.pseudonymKey, err)
	} else {
		pseudonymKey = key
	}
	return priv, pseudonymKey
}

// checkIssuer accepts an https URL, or http for a loopback host (tests and
// a local identity provider).
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an issuer URL such as https://login.example.nl/realms/gemeente", issuer)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("%q must be an https URL (http only for a loopback host)", issuer)
}

// isHeaderName reports whether s is an HTTP field name (an RFC 9110 token).
func isHeaderName(s string) bool { return httpguts.ValidHeaderFieldName(s) }

// checkLogbookShipping checks the flags of shipping to the logbook.
func (o *auditProxyOptions) checkLogbookShipping(errs *flagErrors) {
	u, err := url.Parse(o.logbookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.bad("logbook-url", "must be an http(s) URL such as http://dossierguard-logbook.dossierguard-system:4318")
	}
	if o.logbookSpool < 1 {
		errs.bad("logbook-max-pending", "must be at least 1")
	}
	if o.logbookAckTTL <= 0 {
		errs.bad("logbook-ack-timeout", "must be positive")
	}
	if o.logbookToken != "" {
		if _, err := os.Stat(o.logbookToken); err != nil {
			errs.bad("logbook-token-file", "%s cannot be read: the webhook mounts the pod's projected token there", o.logbookToken)
		}
	}
}

// logbook checks the flags of the chain's origin and the logbook.
func (o *auditProxyOptions) logbook(errs *flagErrors) (*auditlog.Chain, *auditlog.LogbookOptions) {
	if o.logbookToken != "" && o.logbookURL == "" {
		errs.bad("logbook-token-file", "needs --logbook-url")
	}
	if o.store == "" {
		if o.logbookURL != "" {
			errs.bad("logbook-url", "needs --store: the logbook accepts only chains that name their store")
		}
		return nil, nil
	}
	ns, name, ok := strings.Cut(o.store, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		errs.bad("store", "%q must be NAMESPACE/NAME", o.store)
	}
	if o.podName == "" {
		errs.bad("pod-name", "is required with --store (or set POD_NAME)")
	}
	chain := &auditlog.Chain{Store: o.store, Pod: o.podName}
	if o.logbookURL == "" {
		return chain, nil
	}
	o.checkLogbookShipping(errs)
	return chain, &auditlog.LogbookOptions{URL: o.logbookURL, MaxPending: o.logbookSpool, AckTimeout: o.logbookAckTTL, TokenFile: o.logbookToken}
}
