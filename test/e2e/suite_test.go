//go:build e2e

// Package e2e is dossierguard's end-to-end suite in Go: Ginkgo stories that
// run against the cluster in KUBECONFIG, on which hack/e2e.sh has installed
// the chart with Helm (docs/e2e.md). The install story runs first
// (install_test.go: the operator's rollout, its leader and webhooks, the
// samples applied and Ready, the logbook's keys, the demo database) and
// stops the suite when it fails; then every story is one focusable spec
// (-ginkgo.focus, -ginkgo.label-filter): the webhook, traffic through the
// audit proxy and its audit log, sharing, data-subject rights, the logbook,
// retention, the network, the egress gateway, and deletion, which removes
// the installation and so runs alone (-ginkgo.label-filter=deletion). Waits
// are Eventually, never sleeps; when a story fails, its diagnostics (pods,
// events, NetworkPolicies, the dossierguard kinds, operator and audit-proxy
// logs) are written under bin/test-artefacts/e2e/.
//
// The suite builds no image: it creates its pods, agreements and requests
// from the images hack/e2e.sh imported (the demo app or the echo server,
// the demo database, test/e2e/netprobe, the egress story's stand-in partner
// test/e2e/partner) and removes them afterwards, but for the samples, the
// demo database and the workload pod e2e-wijkteam-app, which the stories
// share and hack/e2e.sh's clean-up removes. It is compiled only with the
// build tag e2e, so `make test` does not run it:
//
//	KUBECONFIG=... go test -tags e2e ./test/e2e -ginkgo.v -ginkgo.label-filter='!deletion' [-ginkgo.focus withdrawn -ginkgo.focus '^dossierguard end to end Install ']
package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// settings of one run, from the environment (docs/e2e.md).
type settings struct {
	operatorNamespace string        // E2E_OPERATOR_NAMESPACE: the release's namespace
	probeImage        string        // E2E_PROBE_IMAGE: test/e2e/netprobe's image on the nodes
	partnerImage      string        // E2E_PARTNER_IMAGE: test/e2e/partner's image on the nodes
	demoAppImage      string        // E2E_DEMO_APP_IMAGE: test/e2e/demoapp's image (the egress story's application)
	egressWindow      time.Duration // E2E_EGRESS_WINDOW (seconds): how long the egress story's expiring agreement is in force
	breakGlassGroup   string        // E2E_BREAK_GLASS_GROUP: the install's webhook.breakGlass.groups
	artefacts         string        // E2E_ARTEFACTS: where diagnostics and figures go
	netpolLog         string        // E2E_NETPOL_LOG: the network plugin's log, copied into diagnostics
	timeout           time.Duration // E2E_TIMEOUT (seconds): each wait
	root              string        // the repository
	appImage          string        // E2E_APP_IMAGE: the workload pod's application (the demo app or the echo server)
	demoApp           bool          // E2E_DEMO_APP=1: appImage is test/e2e/demoapp, on the demo database (test/e2e/demodb)
	podFSGroup        string        // E2E_POD_FSGROUP: the workload pod's fsGroup, none when empty
	cli               string        // E2E_CLI: the dossierguard binary (audit verify, pseudonym)
	helm              string        // E2E_HELM: Helm, for the deletion story's uninstall
	kubectl           string        // E2E_KUBECTL: kubectl, for the install's apply -k of the samples
	release           string        // E2E_RELEASE: the Helm release
	hostPG            string        // E2E_HOST_PG: host:port of the throwaway PostgreSQL on the pod bridge, empty when none
	logbook           bool          // E2E_LOGBOOK=1: the release runs the logbook, on database logbook of E2E_HOST_PG
	window            time.Duration // E2E_WINDOW_SECONDS: how long the sharing story's window agreement is open
}

// The sample store the network stories put their probe workload under
// (config/samples/neighbourhood-team.yaml).
const (
	storeNamespace = "wijkteam"
	storeName      = "wijkteam-dossiers"
)

var (
	cfg settings
	// restConfig is the admin's; responderConfig impersonates a member of
	// the break-glass group, as hack/e2e.sh does.
	restConfig, responderConfig *rest.Config
	k8s                         client.Client
	clientset                   kubernetes.Interface
	responder                   client.Client
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "dossierguard end to end")
}

func loadSettings() settings {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	s := settings{
		operatorNamespace: envOr("E2E_OPERATOR_NAMESPACE", "dossierguard-system"),
		probeImage:        envOr("E2E_PROBE_IMAGE", "local/netprobe:dev"),
		partnerImage:      envOr("E2E_PARTNER_IMAGE", "local/e2e-partner:dev"),
		demoAppImage:      envOr("E2E_DEMO_APP_IMAGE", "local/dossier-app:dev"),
		breakGlassGroup:   envOr("E2E_BREAK_GLASS_GROUP", "dossierguard:e2e-break-glass"),
		artefacts:         envOr("E2E_ARTEFACTS", filepath.Join(root, "bin", "test-artefacts", "e2e")),
		netpolLog:         os.Getenv("E2E_NETPOL_LOG"),
		timeout:           180 * time.Second,
		root:              root,
		appImage:          envOr("E2E_APP_IMAGE", "local/echo:dev"),
		demoApp:           os.Getenv("E2E_DEMO_APP") == "1",
		podFSGroup:        os.Getenv("E2E_POD_FSGROUP"),
		cli:               envOr("E2E_CLI", filepath.Join(root, "bin", "image", "dossierguard")),
		helm:              envOr("E2E_HELM", filepath.Join(root, "bin", "helm")),
		kubectl:           envOr("E2E_KUBECTL", "kubectl"),
		release:           envOr("E2E_RELEASE", "dossierguard"),
		hostPG:            os.Getenv("E2E_HOST_PG"),
		logbook:           os.Getenv("E2E_LOGBOOK") == "1",
		window:            150 * time.Second,
		egressWindow:      150 * time.Second,
	}
	s.timeout = seconds("E2E_TIMEOUT", s.timeout)
	s.window = seconds("E2E_WINDOW_SECONDS", s.window)
	s.egressWindow = seconds("E2E_EGRESS_WINDOW", s.egressWindow)
	return s
}

// seconds reads a setting of whole seconds.
func seconds(key string, fallback time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return fallback
	}
	d, err := time.ParseDuration(strings.TrimSpace(v) + "s")
	Expect(err).NotTo(HaveOccurred(), "%s: want whole seconds, got %q", key, v)
	return d
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

var _ = BeforeSuite(func() {
	cfg = loadSettings()
	Expect(os.Getenv("KUBECONFIG")).NotTo(BeEmpty(), "KUBECONFIG must name the cluster hack/e2e.sh set up")
	var err error
	restConfig, err = clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	Expect(err).NotTo(HaveOccurred())
	restConfig.QPS, restConfig.Burst = 50, 100
	Expect(v1alpha1.AddToScheme(clientgoscheme.Scheme)).To(Succeed())
	k8s, err = client.New(restConfig, client.Options{Scheme: clientgoscheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(restConfig)
	Expect(err).NotTo(HaveOccurred())
	responderConfig = rest.CopyConfig(restConfig)
	responderConfig.Impersonate = rest.ImpersonationConfig{
		UserName: "e2e-responder",
		Groups:   []string{cfg.breakGlassGroup, "system:masters"},
	}
	responder, err = client.New(responderConfig, client.Options{Scheme: clientgoscheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(cfg.artefacts, 0o755)).To(Succeed())
	// The install story (install_test.go) checks the rest, first.
})
