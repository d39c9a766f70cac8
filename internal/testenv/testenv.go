// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) with the dossierguard CRDs installed, for tests of the API and the
// reconcilers. The binaries come from hack/envtest-assets.sh through
// KUBEBUILDER_ASSETS, which `make test` sets.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

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

// Start starts kube-apiserver and etcd and installs the CRDs. It fails with
// a clear message when the binaries are not available.
func Start() (*Env, error) { return StartWithWebhooks() }

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

func start(hooks envtest.WebhookInstallOptions) (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds kube-apiserver and etcd with hack/envtest-assets.sh")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
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
	return &Env{Environment: env, Config: cfg, Client: c}, nil
}

// Kinds lists the dossierguard kinds, for tests that walk all of them.
var Kinds = []string{"DossierStore", "AccessRole", "SharingAgreement", "RetentionPolicy"}
