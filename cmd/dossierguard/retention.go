package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/retention"
	"github.com/dossierguard/dossierguard/internal/scheme"
)

// sweepOptions are the flags of `dossierguard retention-sweep`.
type sweepOptions struct {
	policy    string
	namespace string
	dryRun    bool
	// erasuresOnly carries out the granted erasures and nothing else: no
	// sweep, and the policy's status.lastRun is left as it is.
	erasuresOnly bool
}

func newRetentionSweepCommand() *cobra.Command {
	opts := sweepOptions{}
	cmd := &cobra.Command{
		Use:   "retention-sweep",
		Short: "Destroy or anonymise what a RetentionPolicy says is due, and report the run",
		Long: `retention-sweep reads its RetentionPolicy, connects to the store's PostgreSQL
database with the libpq environment variables (PGHOST, PGPORT, PGDATABASE,
PGUSER, PGPASSWORD, PGSSLMODE), destroys or anonymises the records whose
retention has passed in batches, prints the proof of destruction as one JSON
line on stdout, and writes the run into the policy's status.lastRun. Granted erasures of one
dossier are carried out first; --erasures-only carries out only those.
SIGTERM finishes the current batch and stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("kubernetes configuration: %w", err)
			}
			return runSweep(ctx, cfg, opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.policy, "policy", "", "Name of the RetentionPolicy (required).")
	f.StringVar(&opts.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "Namespace of the policy (env POD_NAMESPACE).")
	f.BoolVar(&opts.dryRun, "dry-run", false, "Count what is due without changing anything, whatever the policy says.")
	f.BoolVar(&opts.erasuresOnly, "erasures-only", false, "Carry out the granted erasures only: no sweep, the policy's run statistics are left unchanged (the operator starts such a run when an erasure is granted).")
	return cmd
}

// runSweep runs one sweep and reports it. The database connection string
// is never printed; driver errors go to stderr only in a sanitised form.
func runSweep(ctx context.Context, cfg *rest.Config, opts sweepOptions, out io.Writer) error {
	if opts.policy == "" {
		return usageError{errors.New("--policy is required")}
	}
	if opts.namespace == "" {
		return usageError{errors.New("--namespace (or env POD_NAMESPACE) is required")}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	policy := &v1alpha1.RetentionPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: opts.namespace, Name: opts.policy}, policy); err != nil {
		return fmt.Errorf("read RetentionPolicy %s/%s: %w", opts.namespace, opts.policy, err)
	}
	sweepCfg, err := retention.ConfigFromSpec(policy.Spec)
	if err != nil {
		return err
	}
	if opts.dryRun {
		sweepCfg.DryRun = true
	}
	sweepCfg.Decisions = retentionDecisions(c, policy)
	// An empty connection string makes pgx read the PG* variables.
	pool, err := pgxpool.New(ctx, "")
	if err != nil {
		return errors.New("database connection settings are invalid; check the PG* variables from the credentials Secret")
	}
	defer pool.Close()

	// Granted erasures first: they are few and small, and a long sweep
	// that runs out of time must not hold them up.
	eraseErr := runErasures(ctx, c, policy, sweepCfg, pool, out)
	if opts.erasuresOnly {
		return eraseErr
	}

	report, runErr := retention.Run(ctx, pool, sweepCfg)
	if err := report.WriteJSON(out); err != nil {
		return fmt.Errorf("write the proof of destruction: %w", err)
	}
	// The status is written even when the sweep was interrupted or failed,
	// so that the policy shows it; a fresh context, as ctx may be cancelled.
	if err := reportRun(context.WithoutCancel(ctx), c, policy, report.Summary()); err != nil {
		return err
	}
	if runErr != nil {
		return errors.Join(fmt.Errorf("retention sweep failed: %s", report.Message), eraseErr)
	}
	return eraseErr
}

// reportRun writes the run into the policy's status.lastRun.
func reportRun(ctx context.Context, c client.Client, policy *v1alpha1.RetentionPolicy, run v1alpha1.RetentionRun) error {
	before := policy.DeepCopy()
	policy.Status.LastRun = &run
	if err := c.Status().Patch(ctx, policy, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("report the run in RetentionPolicy %s status: %w", policy.Name, err)
	}
	return nil
}

// usageError is a wrong invocation: exit code 2, like `audit verify`.
type usageError struct{ error }

func (usageError) ExitCode() int { return 2 }
