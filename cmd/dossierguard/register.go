package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/register"
	"github.com/dossierguard/dossierguard/internal/report"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// registerOptions are the flags of `dossierguard register export`.
type registerOptions struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
	format        string
	lang          string
	output        string
	now           func() time.Time
}

// newRegisterCommand returns `dossierguard register` and its subcommand.
func newRegisterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "register",
		Short: "The register of processing activities (AVG art. 30)",
		Args:  cobra.NoArgs,
	}
	opts := registerOptions{now: time.Now}
	export := &cobra.Command{
		Use:   "export [--namespace N | --all-namespaces] [--format csv|html] [--lang nl|en] [--output FILE]",
		Short: "Write the register of processing activities from the cluster as CSV or HTML",
		Long: `register export reads the ProcessingActivities of a namespace (or of all
namespaces) and writes the register in the columns of the VNG model register:
activity, purpose, basis, categories, recipients, retention, measures. The
recipients and measures are those the operator derived into each activity's
status. --format html writes the same rows as one printable page in the
layout of the reports, in the language of --lang. docs/processing-register.md
describes the register.`,
		Example: `  dossierguard register export --all-namespaces --output register.csv
  dossierguard register export --all-namespaces --format html --lang en --output register.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRegisterExport(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	f := export.Flags()
	f.StringVar(&opts.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).")
	f.StringVar(&opts.context, "context", "", "The kubeconfig context to use (default: the current context).")
	f.StringVarP(&opts.namespace, "namespace", "n", "", "Namespace to export (default: the context's namespace).")
	f.BoolVarP(&opts.allNamespaces, "all-namespaces", "A", false, "Export every namespace.")
	f.StringVar(&opts.format, "format", "csv", "Output format: csv or html.")
	f.StringVar(&opts.lang, "lang", string(report.LangNL), "Language of the HTML page: nl or en.")
	f.StringVarP(&opts.output, "output", "o", "", "Write the register to FILE instead of stdout.")
	export.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%v; run '%s --help' for usage", err, c.CommandPath())}
	})
	cmd.AddCommand(export)
	return cmd
}

func runRegisterExport(ctx context.Context, opts registerOptions, stdout io.Writer) error {
	if opts.format != "csv" && opts.format != "html" {
		return usageError{fmt.Errorf("--format %q is not supported: use csv or html", opts.format)}
	}
	lang, err := report.ParseLang(opts.lang)
	if err != nil {
		return usageError{fmt.Errorf("--lang: %v", err)}
	}
	cfg, kc, err := kubeConnect(opts.kubeconfig, opts.context)
	if err != nil {
		return err
	}
	namespace, err := targetNamespace(kc, opts.namespace, opts.allNamespaces)
	if err != nil {
		return err
	}
	activities, err := listActivities(ctx, cfg, namespace)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	rows := register.Rows(activities)
	if opts.format == "html" {
		meta := report.Meta{
			Lang: lang, GeneratedAt: opts.now().UTC(), Cluster: clusterName(kc, opts.context),
			Server: cfg.Host, Namespace: namespace, Version: version,
		}
		if meta.GeneratedBy, err = whoAmI(ctx, cfg); err != nil {
			return err
		}
		err = register.WriteHTML(&buf, rows, meta)
	} else {
		err = register.WriteCSV(&buf, rows)
	}
	if err != nil {
		return err
	}
	if opts.output == "" {
		_, err := buf.WriteTo(stdout)
		return err
	}
	return writeFileAtomic(opts.output, buf.Bytes())
}

// listActivities reads the ProcessingActivities of namespace, or of every
// namespace when it is empty.
func listActivities(ctx context.Context, cfg *rest.Config, namespace string) ([]v1alpha1.ProcessingActivity, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	var list v1alpha1.ProcessingActivityList
	var listOpts []client.ListOption
	if namespace != "" {
		listOpts = append(listOpts, client.InNamespace(namespace))
	}
	if err := c.List(ctx, &list, listOpts...); err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("%w (the export needs list on processingactivities.privacy.dossierguard.io)", err)
		}
		return nil, fmt.Errorf("list processing activities: %w", err)
	}
	return list.Items, nil
}
