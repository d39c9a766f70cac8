// Package chart tests the Helm chart (charts/dossierguard), the kustomize
// configuration (config/default, config/certmanager) and hack/sync-chart.sh
// with the real Helm CLI, built from the Go module proxy into bin/helm, and,
// for the install test, a real kube-apiserver and etcd (KUBEBUILDER_ASSETS).
//
//	go test ./test/chart                  run
//	go test ./test/chart -run Golden -update   rewrite testdata/golden/*.yaml
package chart

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/internal/testenv"
)

// HelmVersion is the Helm release the tests and `make helm` build. The
// ldflags give it its version and Kubernetes 1.37 (its client-go) as the
// default for `helm template` and lint's deprecation checks, as Helm's own
// release build does.
const HelmVersion = "v3.22.0"

var helmLDFlags = strings.Join([]string{
	"-s", "-w",
	"-X", "helm.sh/helm/v3/internal/version.version=" + HelmVersion,
	"-X", "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
	"-X", "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37",
	"-X", "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
	"-X", "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
}, " ")

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var (
	root      = testenv.RepoRoot()
	chartDir  = filepath.Join(root, "charts", "dossierguard")
	helmBin   = filepath.Join(root, "bin", "helm")
	helmHome  string // HELM_*_HOME, so that the tests never touch ~/.config/helm
	namespace = "dossierguard-system"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if err := ensureHelm(); err != nil {
		fmt.Fprintln(os.Stderr, "test/chart:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "dossierguard-helm-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/chart:", err)
		os.Exit(1)
	}
	helmHome = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// ensureHelm builds bin/helm when it is missing or another version. It never
// skips: without Helm the chart is untested.
func ensureHelm() error {
	if out, err := exec.Command(helmBin, "version", "--template", "{{.Version}}").Output(); err == nil && strings.TrimSpace(string(out)) == HelmVersion {
		return nil
	}
	fmt.Fprintf(os.Stderr, "test/chart: building helm %s into bin/ from the Go module proxy (a few minutes the first time)\n", HelmVersion)
	cmd := exec.Command("go", "install", "-ldflags", helmLDFlags, "helm.sh/helm/v3/cmd/helm@"+HelmVersion)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(root, "bin"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot build helm %s (GOBIN=bin go install helm.sh/helm/v3/cmd/helm@%s): %w", HelmVersion, HelmVersion, err)
	}
	out, err := exec.Command(helmBin, "version", "--template", "{{.Version}}").Output()
	if err != nil || strings.TrimSpace(string(out)) != HelmVersion {
		return fmt.Errorf("bin/helm reports version %q after the build, want %s (err %v)", out, HelmVersion, err)
	}
	return nil
}

// helm runs bin/helm and returns stdout and stderr.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(helmBin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustHelm runs bin/helm and fails the test on an error.
func mustHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stderr, out)
	}
	return out
}

// templateArgs renders the chart as the release "dossierguard" in its
// namespace, for Kubernetes 1.37.
func templateArgs(extra ...string) []string {
	// helm template knows no cluster's kinds; a 1.37 API server serves the
	// MutatingAdmissionPolicy that the chart renders only where it exists.
	return append([]string{"template", "dossierguard", chartDir, "--namespace", namespace, "--kube-version", "1.37.1",
		"--api-versions", "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"}, extra...)
}

// kubectl is the kubectl next to kube-apiserver (KUBEBUILDER_ASSETS), or the
// one on PATH.
func kubectl(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		if p := filepath.Join(dir, "kubectl"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("no kubectl: set KUBEBUILDER_ASSETS (make test does, with hack/envtest-assets.sh kubectl) or put kubectl on PATH")
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// run runs a command in the repository root and fails the test on an error.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String()
}
