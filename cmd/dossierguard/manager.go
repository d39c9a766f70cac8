package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"

	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// managerOptions are the flags of `dossierguard manager`.
type managerOptions struct {
	metricsAddr             string
	probeAddr               string
	pprofAddr               string
	memoryLimitRatio        float64
	leaderElect             bool
	leaderElectionNamespace string
	sweeperImage            string
	retentionStatutes       string
	workers                 int
	egressTokenReviewRole   string
	egressReplicas          int32
	trustNamespace          string
	openReports             bool
	policyReports           bool
	webhook                 webhookOptions
	network                 networkOptions
	zap                     zap.Options
}

func newManagerCommand() *cobra.Command {
	opts := managerOptions{zap: zap.Options{Development: false}}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the controller manager (reconcilers, webhooks, metrics, health probes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runManager(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	f.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	f.StringVar(&opts.pprofAddr, "pprof-bind-address", "0", "Address the Go profiler (/debug/pprof/, no authentication) binds to, for measuring the manager's CPU and memory, such as 127.0.0.1:6060; 0 disables it.")
	f.BoolVar(&opts.leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles at a time.")
	f.StringVar(&opts.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (default: the pod's namespace).")
	f.StringVar(&opts.sweeperImage, "sweeper-image", envOr("DOSSIERGUARD_IMAGE", controllers.DefaultSweeperImage), "Image of the retention sweeper's CronJobs (env DOSSIERGUARD_IMAGE).")
	f.Float64Var(&opts.memoryLimitRatio, "go-memory-limit-ratio", 0.9, "Share of the container's memory limit (its cgroup's) that the Go runtime keeps the manager's memory under (GOMEMLIMIT), by collecting garbage sooner; 0 leaves the runtime's default. A GOMEMLIMIT in the environment wins.")
	f.IntVar(&opts.workers, "max-concurrent-reconciles", controllers.DefaultWorkers, "Concurrent reconciles per kind.")
	f.StringVar(&opts.retentionStatutes, "retention-statutes", "", "YAML file with the statutory retention per service, replacing the built-in table (see docs/retention.md).")
	f.StringVar(&opts.egressTokenReviewRole, "egress-tokenreview-clusterrole", "dossierguard-egress-gateway", "ClusterRole (installed with the operator, allowing only the creation of TokenReviews) that each store's egress gateway is bound to, to verify its callers; empty binds none and the gateways refuse every request.")
	f.Int32Var(&opts.egressReplicas, "egress-gateway-replicas", resources.DefaultEgressReplicas, "Pods of each store's egress gateway; with more than one, a PodDisruptionBudget lets a drain take one at a time. Each pod keeps its own audit chain.")
	f.StringVar(&opts.trustNamespace, "audit-trust-namespace", envOr("POD_NAMESPACE", "dossierguard-system"), "Namespace of the ConfigMap "+resources.AuditTrustName+" that keeps every public checkpoint key of every store, for the logbook (env POD_NAMESPACE).")
	f.BoolVar(&opts.openReports, "open-reports", true, "Keep an OpenReports Report (openreports.io/v1alpha1) of every resource's compliance, when its CRD is installed (docs/openreports.md).")
	f.BoolVar(&opts.policyReports, "policy-reports", false, "Also keep a wg-policy PolicyReport (wgpolicyk8s.io/v1alpha2) of every resource's compliance, when its CRD is installed, for tools that read only that format.")
	opts.webhook.bindFlags(f)
	opts.network.bindFlags(f)
	zapFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	opts.zap.BindFlags(zapFlags)
	f.AddGoFlagSet(zapFlags)
	return cmd
}

func runManager(cmd *cobra.Command, opts managerOptions) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	log := ctrl.Log.WithName("setup")

	if err := opts.webhook.validate(); err != nil {
		return err
	}
	if err := setGoMemoryLimit(opts.memoryLimitRatio, log); err != nil {
		return err
	}
	if opts.egressReplicas < 1 {
		return fmt.Errorf("--egress-gateway-replicas: %d must be at least 1", opts.egressReplicas)
	}
	if err := opts.network.validate(opts.webhook.logbookURL, opts.webhook.namespace); err != nil {
		return err
	}
	// How long the manager's calls to the API server take, by method
	// (rest_client_request_duration_seconds, opt-in in controller-runtime):
	// what a reconcile waits for.
	crmetrics.RegisterRESTClientMetrics(crmetrics.MetricRequestLatency)
	cfg := ctrl.GetConfigOrDie()
	reports, err := detectReports(cfg, controllers.ReportKinds{OpenReports: opts.openReports, PolicyReports: opts.policyReports}, log)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		WebhookServer:           opts.webhook.server(),
		Scheme:                  scheme.New(),
		Metrics:                 metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress:  opts.probeAddr,
		PprofBindAddress:        opts.pprofAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        "dossierguard.privacy.dossierguard.io",
		LeaderElectionNamespace: opts.leaderElectionNamespace,
		Cache:                   controllers.CacheOptions(reports),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	statutes, err := loadStatutes(opts.retentionStatutes)
	if err != nil {
		return err
	}
	ca, err := opts.webhook.setup(cmd.Context(), mgr, opts.sweeperImage)
	if err != nil {
		return err
	}
	proxy := opts.webhook.proxyConfig(opts.sweeperImage)
	copts := controllers.Options{SweeperImage: opts.sweeperImage, Statutes: statutes, Workers: opts.workers, AuditProxy: &proxy,
		ProxyIssuer: opts.webhook.proxyIssuerRef(), TrustNamespace: opts.trustNamespace, Reports: reports,
		Isolation: opts.network.extras(opts.webhook.namespace), EgressTokenReviewRole: opts.egressTokenReviewRole,
		EgressReplicas: opts.egressReplicas}
	if ca != nil {
		copts.Certs = ca
	}
	if err := controllers.SetupAll(mgr, copts); err != nil {
		return fmt.Errorf("set up reconcilers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add ready check: %w", err)
	}

	log.Info("Starting manager", "version", version, "leaderElect", opts.leaderElect)
	return mgr.Start(cmd.Context())
}

// detectReports asks the API server which of the wanted compliance
// reports it has the CRD of.
func detectReports(cfg *rest.Config, want controllers.ReportKinds, log logr.Logger) (controllers.ReportKinds, error) {
	if !want.Any() {
		return want, nil
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return controllers.ReportKinds{}, fmt.Errorf("compliance reports: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return controllers.ReportKinds{}, fmt.Errorf("compliance reports: %w", err)
	}
	return controllers.DetectReportKinds(mapper, want, log)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// loadStatutes reads the statutory retention table; nil keeps the built-in one.
func loadStatutes(path string) (map[v1alpha1.Service]compliance.Statute, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--retention-statutes: %w", err)
	}
	table := map[v1alpha1.Service]compliance.Statute{}
	if err := yaml.UnmarshalStrict(data, &table); err != nil {
		return nil, fmt.Errorf("--retention-statutes %s: %w", path, err)
	}
	return table, compliance.ValidateStatutes(table)
}
