// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) with the dossierguard CRDs installed, for tests of the API and the
// reconcilers. The binaries come from hack/envtest-assets.sh through
// KUBEBUILDER_ASSETS, which `make test` sets.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dossierguard/dossierguard/internal/scheme"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
}

// RepoRoot is the module's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Start starts kube-apiserver and etcd and installs the CRDs and the
// admission policies an installation has (config/admission). It fails with
// a clear message when the binaries are not available.
func Start() (*Env, error) { return StartWithWebhooks() }

// StartWithReportCRDs also installs the CRDs of the compliance reports: the
// OpenReports Report CRD from the github.com/openreports/reports-api module
// that dossierguard's go.mod pins, and the wg-policy PolicyReport CRD
// (crds/ beside this file).
func StartWithReportCRDs() (*Env, error) {
	paths, err := ReportCRDPaths()
	if err != nil {
		return nil, err
	}
	return startWith(envtest.WebhookInstallOptions{}, paths...)
}

// OpenReportsModule is the module whose CRDs the report tests install.
const OpenReportsModule = "github.com/openreports/reports-api"

// ReportCRDPaths are the CRD files of the compliance reports: the Report CRD
// of the OpenReports module in the module cache, at the version go.mod
// pins, and the PolicyReport CRD kept here.
func ReportCRDPaths() ([]string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", OpenReportsModule)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return nil, fmt.Errorf("find the module %s (go mod download): %v", OpenReportsModule, err)
	}
	return []string{
		filepath.Join(dir, "config", "crd", "openreports.io_reports.yaml"),
		filepath.Join(RepoRoot(), "internal", "testenv", "crds", "wgpolicyk8s.io_policyreports.yaml"),
	}, nil
}

// StartWithWebhooks also installs mutating webhook configurations, pointed
// by envtest at a local webhook server (see WebhookInstallOptions).
func StartWithWebhooks(hooks ...*admissionregistrationv1.MutatingWebhookConfiguration) (*Env, error) {
	return start(envtest.WebhookInstallOptions{MutatingWebhooks: hooks})
}

// StartWithWebhookManifests installs the webhook configurations of the
// given manifest files (relative to the repository's root), pointed by
// envtest at a local webhook server, so that tests exercise the registration
// the operator ships.
func StartWithWebhookManifests(paths ...string) (*Env, error) {
	abs := make([]string, 0, len(paths))
	for _, p := range paths {
		abs = append(abs, filepath.Join(RepoRoot(), p))
	}
	return start(envtest.WebhookInstallOptions{Paths: abs})
}

func start(hooks envtest.WebhookInstallOptions) (*Env, error) { return startWith(hooks) }

func startWith(hooks envtest.WebhookInstallOptions, crdPaths ...string) (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds kube-apiserver and etcd with hack/envtest-assets.sh")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     append([]string{filepath.Join(RepoRoot(), "config", "crd", "bases")}, crdPaths...),
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme.New(),
		WebhookInstallOptions: hooks,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("create client: %w", err)
	}
	if err := installAdmissionPolicies(context.Background(), c); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Environment: env, Config: cfg, Client: c}, nil
}

// Kinds lists the dossierguard kinds, for tests that walk all of them.
var Kinds = []string{"DossierStore", "AccessRole", "SharingAgreement", "RetentionPolicy", "DataSubjectRequest", "ProcessingActivity"}
