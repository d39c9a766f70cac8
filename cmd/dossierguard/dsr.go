package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
	"github.com/dossierguard/dossierguard/internal/report"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// newDSRCommand returns `dossierguard dsr` and its subcommands.
func newDSRCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dsr",
		Short: "Work with DataSubjectRequests (a family's requests to exercise their rights)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDSRReportCommand())
	return cmd
}

// dsrReportOptions are the flags of `dossierguard dsr report`.
type dsrReportOptions struct {
	kubeconfig   string
	context      string
	namespace    string
	dossier      string
	pseudonymKey string
	schema       string
	lang         string
	output       string
	now          func() time.Time
	// query reads the dossier's accesses from the logbook; queryLogbook
	// outside tests.
	query func(ctx context.Context, schema string, f logbook.QueryFilter) ([]logbook.Access, error)
}

func newDSRReportCommand() *cobra.Command {
	opts := dsrReportOptions{now: time.Now, query: queryLogbook}
	cmd := &cobra.Command{
		Use:   "report NAME [--namespace N] [--dossier ID | < dossier-id] [--output FILE]",
		Short: "Write the access report (AVG art. 15) of an Access request for the family, as HTML",
		Long: `report writes the answer to an Access DataSubjectRequest as one self-contained
HTML document for the family, in Dutch (printable to PDF): the categories of
data the store holds, who accessed or received the dossier's data, when, for
which purpose and on which legal basis (from the logbook, as 'audit query'
reads it), the retention rules of the store, and the family's rights.

Staff are shown by their role and organisation, never by name; a disclosure
by the partner organisation and the sharing agreement. The report holds no
dossier identifier, not even its pseudonym.

The dossier id is read from --dossier or, when that is left out, from standard
input (one line, so that it stays out of the shell's history), and is
pseudonymised with the store's pseudonym key in this command: it must give the
request's spec.dossier, or the command refuses and writes nothing. The key is
read from the store's Secret (get on it is needed) or from --pseudonym-key.
The logbook is reached with the libpq environment variables (PGHOST, PGPORT,
PGDATABASE, PGUSER, PGPASSWORD). docs/data-subject-rights.md describes it.`,
		Example: `  printf '%s' D-1001 | dossierguard dsr report inzage-2026-041 -n wijkteam -o inzage.html`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDSRReport(cmd.Context(), opts, args[0], cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).")
	f.StringVar(&opts.context, "context", "", "The kubeconfig context to use (default: the current context).")
	f.StringVarP(&opts.namespace, "namespace", "n", "", "Namespace of the DataSubjectRequest (default: the context's namespace).")
	f.StringVar(&opts.dossier, "dossier", "", "the dossier id (default: read from standard input)")
	f.StringVar(&opts.pseudonymKey, "pseudonym-key", "", "file with the store's pseudonym key, instead of reading the store's Secret")
	f.StringVar(&opts.schema, "schema", logbook.DefaultSchema, "PostgreSQL schema of the logbook")
	f.StringVar(&opts.lang, "lang", string(report.LangNL), "Language of the report: nl or en.")
	f.StringVarP(&opts.output, "output", "o", "", "Write the report to FILE instead of stdout.")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%v; run '%s --help' for usage", err, c.CommandPath())}
	})
	return cmd
}

// errDossierMismatch is the refusal when the dossier id given is not the
// request's dossier; it names neither.
var errDossierMismatch = errors.New("the dossier id given is not the dossier of this request (its pseudonym under the store's key differs from spec.dossier); no report written")

func runDSRReport(ctx context.Context, opts dsrReportOptions, name string, stdin io.Reader, stdout io.Writer) error {
	lang, err := reportOptions{lang: opts.lang, namespace: opts.namespace, output: opts.output}.validate()
	if err != nil {
		return err
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return usageError{fmt.Errorf("NAME %q: must be the name of a DataSubjectRequest: %s", name, strings.Join(errs, "; "))}
	}
	id := strings.TrimSpace(opts.dossier)
	if id == "" {
		if id, err = readDossierID(stdin); err != nil {
			return usageError{fmt.Errorf("--dossier not given and %v", err)}
		}
	}
	var key []byte
	if opts.pseudonymKey != "" {
		if key, err = readPseudonymKeyFile(opts.pseudonymKey); err != nil {
			return usageError{err}
		}
	}
	cfg, kc, err := kubeConnect(opts.kubeconfig, opts.context)
	if err != nil {
		return err
	}
	namespace, err := targetNamespace(kc, opts.namespace, false)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	meta := report.Meta{
		Lang: lang, GeneratedAt: opts.now().UTC(), Cluster: clusterName(kc, opts.context),
		Server: cfg.Host, Namespace: namespace, Version: version,
	}
	var buf bytes.Buffer
	if err := accessReport(ctx, c, opts, namespace, name, id, key, meta, &buf); err != nil {
		return err
	}
	if opts.output == "" {
		_, err := buf.WriteTo(stdout)
		return err
	}
	return writeFileAtomic(opts.output, buf.Bytes())
}

// accessReport reads the request, its store with roles and retention
// policies, and the dossier's accesses, and renders the access report into
// w. The dossier id is pseudonymised here and must be the request's
// dossier; only the pseudonym goes to the logbook. key is the store's
// pseudonym key, or nil to read it from the store's Secret.
func accessReport(ctx context.Context, c client.Reader, opts dsrReportOptions, namespace, name, id string, key []byte, meta report.Meta, w io.Writer) error {
	var in report.AccessInput
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &in.Request); err != nil {
		return kubeReadError("DataSubjectRequest "+namespace+"/"+name, err)
	}
	req := &in.Request
	if req.Spec.Type != v1alpha1.RequestAccess {
		return usageError{fmt.Errorf("DataSubjectRequest %s/%s is a %s request; the access report answers an Access request", namespace, name, req.Spec.Type)}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: req.Spec.StoreRef.Name}, &in.Store); err != nil {
		return kubeReadError("DossierStore "+namespace+"/"+req.Spec.StoreRef.Name, err)
	}
	if key == nil {
		var err error
		if key, err = readStorePseudonymKey(ctx, c, &in.Store); err != nil {
			return err
		}
	}
	pseudonym := auditproxy.DossierPseudonym(key, id)
	if !hmac.Equal([]byte(pseudonym), []byte(req.Spec.Dossier)) {
		return usageError{errDossierMismatch}
	}
	var roles v1alpha1.AccessRoleList
	var policies v1alpha1.RetentionPolicyList
	for kind, list := range map[string]client.ObjectList{"AccessRoles": &roles, "RetentionPolicies": &policies} {
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return kubeReadError(kind+" in "+namespace, err)
		}
	}
	in.Roles, in.Policies = roles.Items, policies.Items
	accesses, err := opts.query(ctx, opts.schema, logbook.QueryFilter{Store: namespace + "/" + in.Store.Name, DataSubject: pseudonym})
	if err != nil {
		return err
	}
	for _, a := range accesses {
		in.Events = append(in.Events, a.Event)
	}
	// The report names the handler of the request (a team or function
	// account, spec.handler), never the account that ran the command.
	meta.GeneratedBy = req.Spec.Handler
	return report.RenderAccess(w, report.BuildAccess(in, meta))
}

// kubeReadError says what could not be read, with a hint for a refusal.
func kubeReadError(what string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("read %s: %w (see docs/data-subject-rights.md for the permissions)", what, err)
	}
	return fmt.Errorf("read %s: %w", what, err)
}
