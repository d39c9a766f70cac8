package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/internal/report"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// reportOptions are the flags of `dossierguard report`.
type reportOptions struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
	lang          string
	output        string
	// now is the clock of the report's "generated at"; time.Now outside tests.
	now func() time.Time
}

func newReportCommand() *cobra.Command {
	opts := reportOptions{now: time.Now}
	cmd := &cobra.Command{
		Use:   "report [--namespace N | --all-namespaces] [--lang nl|en] [--output FILE]",
		Short: "Write the auditor's compliance report as HTML (printable to PDF)",
		Long: `report reads every DossierStore of a namespace (or of all namespaces) with the
AccessRoles, SharingAgreements and RetentionPolicies that refer to them and
writes one self-contained HTML document for an auditor: per store its controls
with result, AVG/BIO reference and evidence, its roles, its agreements with
their legal basis and window, and its retention runs. The report says when it
was generated, by whom (the user the API server authenticates, from a
SelfSubjectReview) and from which cluster. It holds no personal data and no
dossier identifiers. Print it to PDF from a browser, or with
'chromium --headless --print-to-pdf=report.pdf report.html'.

The kubeconfig is found as kubectl finds it (--kubeconfig, KUBECONFIG,
~/.kube/config, or the pod's service account). docs/reports.md describes the
report and the permissions it needs.`,
		Example: `  dossierguard report --namespace wijkteam --output wijkteam.html
  dossierguard report --all-namespaces --lang en --output compliance.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReport(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).")
	f.StringVar(&opts.context, "context", "", "The kubeconfig context to use (default: the current context).")
	f.StringVarP(&opts.namespace, "namespace", "n", "", "Namespace to report on (default: the context's namespace).")
	f.BoolVarP(&opts.allNamespaces, "all-namespaces", "A", false, "Report on every namespace.")
	f.StringVar(&opts.lang, "lang", string(report.LangNL), "Language of the report: nl or en.")
	f.StringVarP(&opts.output, "output", "o", "", "Write the report to FILE instead of stdout.")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%v; run '%s --help' for usage", err, c.CommandPath())}
	})
	return cmd
}

// validate checks the flags before anything is read.
func (o reportOptions) validate() (report.Lang, error) {
	lang, err := report.ParseLang(o.lang)
	if err != nil {
		return "", usageError{fmt.Errorf("--lang: %w", err)}
	}
	if o.allNamespaces && o.namespace != "" {
		return "", usageError{errors.New("--namespace and --all-namespaces exclude each other: give one")}
	}
	if o.namespace != "" {
		if errs := validation.IsDNS1123Label(o.namespace); len(errs) > 0 {
			return "", usageError{fmt.Errorf("--namespace %q: must be a namespace name: %s", o.namespace, strings.Join(errs, "; "))}
		}
	}
	if o.output != "" {
		if fi, err := os.Stat(o.output); err == nil && fi.IsDir() {
			return "", usageError{fmt.Errorf("--output %q: is a directory; name the file to write", o.output)}
		}
		if fi, err := os.Stat(filepath.Dir(o.output)); err != nil || !fi.IsDir() {
			return "", usageError{fmt.Errorf("--output %q: the directory %q does not exist", o.output, filepath.Dir(o.output))}
		}
	}
	return lang, nil
}

func runReport(ctx context.Context, opts reportOptions, stdout io.Writer) error {
	lang, err := opts.validate()
	if err != nil {
		return err
	}
	cfg, kc, err := kubeConnect(opts.kubeconfig, opts.context)
	if err != nil {
		return err
	}
	namespace, err := targetNamespace(kc, opts.namespace, opts.allNamespaces)
	if err != nil {
		return err
	}
	meta := report.Meta{
		Lang: lang, GeneratedAt: opts.now().UTC(), Cluster: clusterName(kc, opts.context),
		Server: cfg.Host, Namespace: namespace, Version: version,
	}
	if meta.GeneratedBy, err = whoAmI(ctx, cfg); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	in, err := report.List(ctx, c, namespace)
	if err != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("%w (the report needs get and list on the privacy.dossierguard.io resources; see docs/reports.md)", err)
		}
		return err
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, report.Build(in, meta)); err != nil {
		return err
	}
	if opts.output == "" {
		_, err := buf.WriteTo(stdout)
		return err
	}
	return writeFileAtomic(opts.output, buf.Bytes())
}

// kubeConnect finds the kubeconfig as kubectl does (--kubeconfig,
// KUBECONFIG, ~/.kube/config, the pod's service account) with the
// targetNamespace is the namespace a command reads: the one given, the
// kubeconfig context's when none is, or "" (every namespace) with all.
func targetNamespace(kc clientcmd.ClientConfig, namespace string, all bool) (string, error) {
	if all {
		return "", nil
	}
	if namespace != "" {
		return namespace, nil
	}
	namespace, _, err := kc.Namespace()
	if err != nil {
		return "", fmt.Errorf("the context's namespace: %w", err)
	}
	return namespace, nil
}

// context chosen.
func kubeConnect(kubeconfig, context string) (*rest.Config, clientcmd.ClientConfig, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := kc.ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes configuration: %w", err)
	}
	return cfg, kc, nil
}

// whoAmI is the user name the API server authenticates the caller as.
func whoAmI(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("kubernetes client: %w", err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("establish who generates the report with a SelfSubjectReview (the report names its author): %w", err)
	}
	if review.Status.UserInfo.Username == "" {
		return "", errors.New("the API server's SelfSubjectReview named no user; the report names its author")
	}
	return review.Status.UserInfo.Username, nil
}

// clusterName is the kubeconfig's name of the context's cluster, or
// "in-cluster" when running with a pod's service account.
func clusterName(kc clientcmd.ClientConfig, context string) string {
	raw, err := kc.RawConfig()
	if err != nil {
		return "in-cluster"
	}
	if context == "" {
		context = raw.CurrentContext
	}
	if c, ok := raw.Contexts[context]; ok && c.Cluster != "" {
		return c.Cluster
	}
	return "in-cluster"
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so that a failed write never leaves half a report.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--output %q: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("--output %q: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("--output %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--output %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--output %q: %w", path, err)
	}
	return nil
}
