package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// pseudonymOptions are the flags of `dossierguard pseudonym`.
type pseudonymOptions struct {
	store        string
	pseudonymKey string
}

func newPseudonymCommand() *cobra.Command {
	var opts pseudonymOptions
	cmd := &cobra.Command{
		Use:   "pseudonym --store NAMESPACE/NAME [--pseudonym-key FILE] < dossier-id",
		Short: "Print a dossier's pseudonym, as the audit proxy records it and a DataSubjectRequest names it",
		Long: `Print the keyed pseudonym of one dossier id: the lowercase hex HMAC-SHA-256 of
the id (lower-cased) under the store's pseudonym key, exactly as the audit proxy
records it. A DataSubjectRequest names its dossier by this pseudonym only.

The dossier id is read from standard input (one line), so that it stays out of
the shell's history and the process list. The key is read from the store's
Secret with the current kubeconfig (get on that Secret is needed), or from
--pseudonym-key FILE. Neither the id nor the key is printed or logged.`,
		Example: `  printf '%s' D-1001 | dossierguard pseudonym --store wijkteam/wijkteam-dossiers`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPseudonym(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.store, "store", "", "the DossierStore, as NAMESPACE/NAME (required)")
	f.StringVar(&opts.pseudonymKey, "pseudonym-key", "", "file with the store's pseudonym key, instead of reading the store's Secret")
	return cmd
}

func runPseudonym(cmd *cobra.Command, opts pseudonymOptions) error {
	namespace, name, ok := strings.Cut(opts.store, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return auditUsageError("--store must be NAMESPACE/NAME, got %q", opts.store)
	}
	id, err := readDossierID(cmd.InOrStdin())
	if err != nil {
		return auditUsageError("%v", err)
	}
	var key []byte
	if opts.pseudonymKey != "" {
		if key, err = readPseudonymKeyFile(opts.pseudonymKey); err != nil {
			return err
		}
	} else if key, err = storePseudonymKey(cmd, namespace, name); err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), auditproxy.DossierPseudonym(key, id))
	return err
}

// readDossierID reads one line, without surrounding white space.
func readDossierID(in io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the dossier id from standard input: %v", err)
	}
	id := strings.TrimSpace(line)
	if id == "" {
		return "", errors.New("no dossier id on standard input: pipe it in, such as printf '%s' D-1001 | dossierguard pseudonym --store NAMESPACE/NAME")
	}
	return id, nil
}

// storePseudonymKey reads the store's pseudonym key from its Secret.
func storePseudonymKey(cmd *cobra.Command, namespace, name string) ([]byte, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, auditUsageError("no cluster configuration (kubeconfig or in-cluster): %v", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	store := &v1alpha1.DossierStore{}
	if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: namespace, Name: name}, store); err != nil {
		return nil, fmt.Errorf("read DossierStore %s/%s: %w", namespace, name, err)
	}
	return readStorePseudonymKey(cmd.Context(), c, store)
}

// readStorePseudonymKey reads a store's pseudonym key from its Secret.
func readStorePseudonymKey(ctx context.Context, c client.Reader, store *v1alpha1.DossierStore) ([]byte, error) {
	secretName, _ := resources.PseudonymKeyRef(store)
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: store.Namespace, Name: secretName}, secret); err != nil {
		return nil, fmt.Errorf("read Secret %s/%s: %w", store.Namespace, secretName, err)
	}
	return resources.ReadPseudonymKey(store, secret)
}
