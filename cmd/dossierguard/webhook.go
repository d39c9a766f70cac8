package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// webhookOptions are the manager's flags for the sidecar-injection webhook.
type webhookOptions struct {
	enabled        bool
	port           int
	certDir        string
	certManagement string
	namespace      string
	serviceName    string
	secretName     string
	configName     string
	validatingName string
	proxyImage     string
	nativeSidecar  bool
	breakGlass     []string
	breakGlassMax  time.Duration
	proxyIssuer    controllers.ProxyIssuerRef
	logbookURL     string
	logSizeLimit   string
}

func (o *webhookOptions) bindFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.enabled, "enable-webhook", true, "Serve the webhook that injects the audit proxy into dossier store pods.")
	f.IntVar(&o.port, "webhook-port", 9443, "Port of the webhook server.")
	f.StringVar(&o.certDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Folder with the webhook's tls.crt and tls.key.")
	f.StringVar(&o.certManagement, "webhook-cert-management", "operator", "Who provides the webhook's certificate: operator (self-signed CA, rotated, injected) or cert-manager.")
	f.StringVar(&o.namespace, "operator-namespace", os.Getenv("POD_NAMESPACE"), "The operator's namespace, never mutated (env POD_NAMESPACE).")
	f.StringVar(&o.serviceName, "webhook-service-name", "dossierguard-webhook", "Service in front of the webhook server.")
	f.StringVar(&o.secretName, "webhook-secret-name", "dossierguard-webhook-tls", "Secret with the webhook's certificate.")
	f.StringVar(&o.configName, "webhook-config-name", "dossierguard-sidecar-injector", "MutatingWebhookConfiguration whose CA the operator injects.")
	f.StringVar(&o.validatingName, "validating-webhook-config-name", "dossierguard-pod-guard", "ValidatingWebhookConfiguration whose CA the operator injects.")
	f.StringSliceVar(&o.breakGlass, "break-glass-groups", nil, "Groups whose members may open a break-glass window on a store's pod and then exec, attach, port-forward or debug into it; empty disables break-glass.")
	f.DurationVar(&o.breakGlassMax, "break-glass-max-window", webhook.DefaultBreakGlassMaxWindow, "Longest break-glass window.")
	f.StringVar(&o.proxyIssuer.Name, "proxy-cert-issuer-name", "", "With --webhook-cert-management=cert-manager: the cert-manager issuer of the audit proxies' serving certificates (required there).")
	f.StringVar(&o.proxyIssuer.Kind, "proxy-cert-issuer-kind", "ClusterIssuer", "Kind of --proxy-cert-issuer-name: ClusterIssuer, or Issuer (which then must exist in every store's namespace).")
	f.StringVar(&o.proxyIssuer.Group, "proxy-cert-issuer-group", "cert-manager.io", "API group of --proxy-cert-issuer-name.")
	f.StringVar(&o.proxyImage, "audit-proxy-image", "", "Image of the injected audit proxy (default: the sweeper image, which is the operator's).")
	f.StringVar(&o.logbookURL, "logbook-url", "", "Base URL of the logbook the injected proxies ship their audit chains to, such as http://dossierguard-logbook.dossierguard-system:4318; empty means none.")
	f.StringVar(&o.logSizeLimit, "audit-log-size-limit", webhook.DefaultLogSizeLimit.String(), "sizeLimit of the injected proxy's audit log emptyDir, at least 16Mi, or 0 for none; the proxy refuses every request with 503 once its log reaches 15/16 of it (docs/audit-proxy.md).")
	f.BoolVar(&o.nativeSidecar, "native-sidecar", true, "Inject the audit proxy as a native sidecar (an init container with restartPolicy Always).")
}

func (o *webhookOptions) validate() error {
	if !o.enabled {
		return nil
	}
	switch o.certManagement {
	case "operator", "cert-manager":
	default:
		return fmt.Errorf("--webhook-cert-management %q must be operator or cert-manager", o.certManagement)
	}
	if o.namespace == "" {
		return fmt.Errorf("--operator-namespace (or env POD_NAMESPACE) is required when the webhook is enabled: the operator's own namespace is never mutated")
	}
	if err := checkLogbookURL(o.logbookURL); err != nil {
		return err
	}
	if _, err := o.logLimit(); err != nil {
		return err
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("--webhook-port %d must be between 1 and 65535", o.port)
	}
	if o.certManagement == "cert-manager" && o.proxyIssuer.Name == "" {
		return fmt.Errorf("--proxy-cert-issuer-name is required with --webhook-cert-management=cert-manager: cert-manager then issues the audit proxies' serving certificates")
	}
	if o.proxyIssuer.Kind != "ClusterIssuer" && o.proxyIssuer.Kind != "Issuer" {
		return fmt.Errorf("--proxy-cert-issuer-kind %q must be ClusterIssuer or Issuer", o.proxyIssuer.Kind)
	}
	return o.validateBreakGlass()
}

// validateBreakGlass checks the break-glass flags.
func (o *webhookOptions) validateBreakGlass() error {
	if o.breakGlassMax < time.Minute || o.breakGlassMax > 8*time.Hour {
		return fmt.Errorf("--break-glass-max-window %s must be between 1m and 8h", o.breakGlassMax)
	}
	for _, g := range o.breakGlass {
		if strings.TrimSpace(g) == "" {
			return fmt.Errorf("--break-glass-groups: an empty group name; name the groups that may use break-glass")
		}
	}
	return nil
}

func (o *webhookOptions) server() crwebhook.Server {
	if !o.enabled {
		return nil
	}
	return crwebhook.NewServer(crwebhook.Options{Port: o.port, CertDir: o.certDir})
}

// setup registers the webhooks and, when the operator manages the
// certificate, issues it before the webhook server starts. It returns the
// operator's CA (nil with cert-manager or without the webhook), which also
// signs the audit proxies' serving certificates.
func (o *webhookOptions) setup(ctx context.Context, mgr ctrl.Manager, defaultImage string) (*webhook.CertManager, error) {
	if !o.enabled {
		return nil, nil
	}
	webhook.Register(mgr, o.proxyConfig(defaultImage), o.namespace)
	if o.certManagement != "operator" {
		return nil, nil
	}
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, err
	}
	certs := &webhook.CertManager{
		Client: direct, Namespace: o.namespace, SecretName: o.secretName,
		ServiceName: o.serviceName, WebhookConfigName: o.configName, ValidatingConfigName: o.validatingName, CertDir: o.certDir,
	}
	if err := certs.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("webhook certificate: %w", err)
	}
	return certs, mgr.Add(certs)
}

// proxyIssuerRef is the cert-manager issuer of the proxies' certificates,
// nil when the operator's CA issues them.
func (o *webhookOptions) proxyIssuerRef() *controllers.ProxyIssuerRef {
	if !o.enabled || o.certManagement != "cert-manager" {
		return nil
	}
	ref := o.proxyIssuer
	return &ref
}

// proxyConfig is what the webhook injects and checks; the reconcilers'
// AuditActive control checks the same.
func (o *webhookOptions) proxyConfig(defaultImage string) webhook.Config {
	image := o.proxyImage
	if image == "" {
		image = defaultImage
	}
	limit, _ := o.logLimit() // checked in validate
	return webhook.Config{Image: image, NativeSidecar: o.nativeSidecar, LogbookURL: o.logbookURL,
		BreakGlassGroups: o.breakGlass, BreakGlassMaxWindow: o.breakGlassMax, LogSizeLimit: limit}
}

// minLogSizeLimit is the smallest --audit-log-size-limit.
var minLogSizeLimit = resource.MustParse("16Mi")

// logLimit parses --audit-log-size-limit; zero means none.
func (o *webhookOptions) logLimit() (resource.Quantity, error) {
	q, err := resource.ParseQuantity(o.logSizeLimit)
	if err != nil || (!q.IsZero() && q.Cmp(minLogSizeLimit) < 0) {
		return resource.Quantity{}, fmt.Errorf("--audit-log-size-limit %q must be a quantity of at least 16Mi, such as 1Gi, or 0 for no limit", o.logSizeLimit)
	}
	return q, nil
}

// checkLogbookURL checks --logbook-url: empty, or an http(s) URL.
func checkLogbookURL(s string) error {
	if s == "" {
		return nil
	}
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--logbook-url %q must be an http(s) URL such as http://dossierguard-logbook.dossierguard-system:4318", s)
	}
	return nil
}
