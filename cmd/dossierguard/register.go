package main

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/register"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// registerOptions are the flags of `dossierguard register export`.
type registerOptions struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
	format        string
	output        string
}

// newRegisterCommand returns `dossierguard register` and its subcommand.
func newRegisterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "register",
		Short: "The register of processing activities (AVG art. 30)",
		Args:  cobra.NoArgs,
	}
	opts := registerOptions{}
	export := &cobra.Command{
		Use:   "export [--namespace N | --all-namespaces] [--format csv] [--output FILE]",
		Short: "Write the register of processing activities from the cluster as CSV",
		Long: `register export reads the ProcessingActivities of a namespace (or of all
namespaces) and writes the register in the columns of the VNG model register:
activity, purpose, basis, categories, recipients, retention, measures. The
recipients and measures are those the operator derived into each activity's
status. docs/processing-register.md describes the register.`,
		Example: `  dossierguard register export --all-namespaces --output register.csv`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRegisterExport(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	f := export.Flags()
	f.StringVar(&opts.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).")
	f.StringVar(&opts.context, "context", "", "The kubeconfig context to use (default: the current context).")
	f.StringVarP(&opts.namespace, "namespace", "n", "", "Namespace to export (default: the context's namespace).")
	f.BoolVarP(&opts.allNamespaces, "all-namespaces", "A", false, "Export every namespace.")
	f.StringVar(&opts.format, "format", "csv", "Output format: csv.")
	f.StringVarP(&opts.output, "output", "o", "", "Write the register to FILE instead of stdout.")
	export.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%v; run '%s --help' for usage", err, c.CommandPath())}
	})
	cmd.AddCommand(export)
	return cmd
}

func runRegisterExport(ctx context.Context, opts registerOptions, stdout io.Writer) error {
	if opts.format != "csv" {
		return usageError{fmt.Errorf("--format %q is not supported: use csv", opts.format)}
	}
	cfg, kc, err := kubeConnect(opts.kubeconfig, opts.context)
	if err != nil {
		return err
	}
	namespace := opts.namespace
	if !opts.allNamespaces && namespace == "" {
		if namespace, _, err = kc.Namespace(); err != nil {
			return fmt.Errorf("the context's namespace: %w", err)
		}
	}
	if opts.allNamespaces {
		namespace = ""
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	var list v1alpha1.ProcessingActivityList
	var listOpts []client.ListOption
	if namespace != "" {
		listOpts = append(listOpts, client.InNamespace(namespace))
	}
	if err := c.List(ctx, &list, listOpts...); err != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("%w (the export needs list on processingactivities.privacy.dossierguard.io)", err)
		}
		return fmt.Errorf("list processing activities: %w", err)
	}
	var buf bytes.Buffer
	if err := register.WriteCSV(&buf, register.Rows(list.Items)); err != nil {
		return err
	}
	if opts.output == "" {
		_, err := buf.WriteTo(stdout)
		return err
	}
	return writeFileAtomic(opts.output, buf.Bytes())
}
