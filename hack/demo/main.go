// Command demo runs dossierguard on a local control plane built from the
// envtest binaries (kube-apiserver and etcd; no root, no cluster): it
// installs the CRDs, starts the manager, creates a StorageClass that is
// verified to encrypt at rest and one that is not, applies config/samples,
// waits for the stores, and prints what an auditor would read. Then it starts
// the logbook on the PostgreSQL `make demo` started, sends requests through
// an audit proxy of the wijkteam store that ships to it, and runs `audit
// verify --logbook` and `audit query` against it. It keeps the control plane
// and the logbook running until Ctrl-C or `make demo-down`, unless
// DEMO_EXIT=1.
package main

import (
	"context"

	"fmt"
	"go.uber.org/zap/zapcore"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/testenv"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	stateDir := filepath.Join(testenv.RepoRoot(), "bin", "demo")
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}

	step("Starting a local control plane (kube-apiserver and etcd from the envtest binaries)")
	env, err := testenv.StartWithReportCRDs()
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the control plane")
		_ = env.Stop()
		_ = os.Remove(filepath.Join(stateDir, "pid"))
	}()
	kubeconfig, err := writeKubeconfig(env, stateDir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stateDir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}

	// The logbook's address is chosen now: the manager checks the workload
	// pods against the audit proxy the webhook injects, which names it.
	lb, err := newLogbookDemo(env.Client, stateDir, kubeconfig)
	if err != nil {
		return err
	}
	defer lb.stopAll()

	step("Starting the dossierguard manager")
	mgr, err := newManager(ctx, env, stateDir, lb.proxyConfig())
	if err != nil {
		return err
	}
	mgrCtx, stopManager := context.WithCancel(ctx)
	defer stopManager()
	go func() {
		if err := mgr.Start(mgrCtx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()

	step("Creating StorageClass encrypted-ssd (AWS EBS, encrypted=true) and standard (no encryption evidence)")
	if err := createStorageClasses(ctx, env.Client); err != nil {
		return err
	}

	step("Applying config/samples: a youth and family centre, a neighbourhood team and Veilig Thuis")
	if err := applySamples(ctx, env.Client); err != nil {
		return err
	}

	step("Waiting for the stores to report their status")
	if err := waitForStores(ctx, env.Client, 4, 60*time.Second); err != nil {
		return err
	}

	kubectl := func(args ...string) {
		fmt.Printf("\n$ kubectl %s\n", joinArgs(args))
		cmd := exec.CommandContext(ctx, filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		_ = cmd.Run()
	}
	kubectl("get", "privacy", "-A")
	kubectl("get", "dossierstore", "cjg-dossiers", "-n", "cjg", "-o", auditorConditions)
	kubectl("get", "dossierstore", "cjg-dossiers", "-n", "cjg", "-o", auditorCompliance)
	kubectl("get", "dossierstore", "unverified-demo", "-n", "demo", "-o", auditorConditions)
	kubectl("get", "reports", "-A")
	kubectl("get", "report", "dossierstore-unverified-demo", "-n", "demo", "-o", auditorReport)

	if err := lb.show(ctx); err != nil {
		return err
	}

	fmt.Printf("\nThe control plane is running. Use it with:\n\n  export KUBECONFIG=%s\n  %s/kubectl get privacy -A\n\n", kubeconfig, os.Getenv("KUBEBUILDER_ASSETS"))
	if os.Getenv("DEMO_EXIT") == "1" {
		return nil
	}
	fmt.Println("Stop it with Ctrl-C or `make demo-down`.")
	<-ctx.Done()
	return nil
}

// auditorConditions and auditorCompliance print a store's status as rows.
const (
	auditorConditions = `jsonpath={range .status.conditions[*]}{.type}{"\t"}{.status}{"\t"}{.reason}{"\t"}{.message}{"\n"}{end}`
	auditorCompliance = `jsonpath={range .status.compliance[*]}{.control}{"\t"}{.result}{"\t"}{.reference}{"\t"}{.evidence}{"\n"}{end}`
	// auditorReport is a store's OpenReports Report, one line per result.
	auditorReport = `jsonpath={range .results[*]}{.policy}{"\t"}{.result}{"\t"}{.category}{"\t"}{.message}{"\n"}{end}`
)

// demoReports are the compliance reports the demo keeps: both CRDs are
// installed on its control plane.
var demoReports = controllers.ReportKinds{OpenReports: true, PolicyReports: true}

func step(msg string) { fmt.Printf("==> %s\n", msg) }

func joinArgs(args []string) string {
	out := ""
	for i, a := range args {
		if i > 0 {
			out += " "
		}
		if len(a) > 0 && (a[0] == 'j' && len(a) > 8 && a[:8] == "jsonpath") {
			a = "'" + a + "'"
		}
		out += a
	}
	return out
}

func writeKubeconfig(env *testenv.Env, dir string) (string, error) {
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("create demo user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

func createStorageClasses(ctx context.Context, c client.Client) error {
	classes := []*storagev1.StorageClass{
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "encrypted-ssd"},
			Provisioner: "ebs.csi.aws.com",
			Parameters:  map[string]string{"type": "gp3", "encrypted": "true", "kmsKeyId": "alias/dossierguard-demo"},
		},
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "standard"},
			Provisioner: "rancher.io/local-path",
		},
	}
	for _, sc := range classes {
		if err := c.Create(ctx, sc); err != nil {
			return fmt.Errorf("create StorageClass %s: %w", sc.Name, err)
		}
	}
	return nil
}

// applySamples creates config/samples and the store on the unverified class.
func applySamples(ctx context.Context, c client.Client) error {
	samples, err := testenv.Samples()
	if err != nil {
		return err
	}
	objs := make([]client.Object, 0, len(samples)+2)
	for _, s := range samples {
		objs = append(objs, s)
	}
	for _, obj := range append(objs, unverifiedStore()...) {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	}
	return nil
}

// unverifiedStore is a store on the class without encryption evidence, to
// show that dossierguard fails closed.
func unverifiedStore() []client.Object {
	objs, err := testenv.DecodeManifests([]byte(`
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: privacy.dossierguard.io/v1alpha1
kind: DossierStore
metadata: {name: unverified-demo, namespace: demo}
spec:
  service: SocialSupport
  organisation: Gemeente Voorbeeldstad
  dataCategories: [identity, contact]
  workload:
    selector: {matchLabels: {app: demo}}
    serviceAccountName: demo
    appPort: 8080
  storage: {storageClassName: standard, size: 1Gi}
`))
	if err != nil {
		panic(err)
	}
	out := make([]client.Object, len(objs))
	for i, o := range objs {
		out[i] = o
	}
	return out
}

func waitForStores(ctx context.Context, c client.Client, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		stores := &v1alpha1.DossierStoreList{}
		if err := c.List(ctx, stores); err != nil {
			return err
		}
		reported := 0
		for _, s := range stores.Items {
			if meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady) != nil {
				reported++
			}
		}
		if reported >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("stores did not report status within %s", timeout)
}

// newManager is the manager with every reconciler, and the operator's CA
// (which the manager's webhook setup makes in a cluster) to sign the audit
// proxies' serving certificates.
func newManager(ctx context.Context, env *testenv.Env, stateDir string, proxy webhook.Config) (ctrl.Manager, error) {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(demoReports),
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dossierguard-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	certs := &webhook.CertManager{Client: env.Client, Namespace: "dossierguard-system", SecretName: "dossierguard-webhook-tls",
		ServiceName: "dossierguard-webhook", WebhookConfigName: "dossierguard-sidecar-injector", CertDir: filepath.Join(stateDir, "certs")}
	if err := certs.Ensure(ctx); err != nil {
		return nil, err
	}
	if err := controllers.SetupAll(mgr, controllers.Options{Certs: certs, TrustNamespace: "dossierguard-system", Reports: demoReports, AuditProxy: &proxy}); err != nil {
		return nil, fmt.Errorf("set up reconcilers: %w", err)
	}
	return mgr, nil
}
