// Command dossierguard is the single binary of the dossierguard operator. Its
// subcommands are the roles the operator plays: the controller manager, the
// audit proxy sidecar, the logbook, the retention sweeper, the audit-log
// verifier and the auditor's compliance report.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(exitCodeOf(err))
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "dossierguard",
		Short: "Privacy controls for the case-management systems of municipal social services",
		Long: `dossierguard enforces privacy controls on the case-management systems of Dutch
municipal social services: encrypted dossier stores, need-to-know access roles,
consent- and time-bound sharing agreements and statutory retention.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newManagerCommand(), newAuditProxyCommand(), newEgressGatewayCommand(), newRetentionSweepCommand(), newAuditCommand(), newLogbookCommand(), newReportCommand(), newPseudonymCommand(), newDSRCommand(), newRegisterCommand(), newVersionCommand())
	return root
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version)
			return err
		},
	}
}
