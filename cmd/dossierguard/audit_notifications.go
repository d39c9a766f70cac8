package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// auditNotificationsOptions are the flags of `dossierguard audit notifications`.
type auditNotificationsOptions struct {
	publicKeys        []string
	allowUnsignedTail bool
	since, until      string
	subject           string
	output            string
}

// notice is one disclosure without consent that awaits notice to the client.
type notice struct {
	DataSubject    string    `json:"dataSubject"`
	Time           time.Time `json:"time"`
	Agreement      string    `json:"agreement"`
	Partner        string    `json:"partner"`
	LegalBasis     string    `json:"legalBasis"`
	LegalReference string    `json:"legalReference,omitempty"`
	Purpose        string    `json:"purpose"`
	Route          string    `json:"route"`
	Categories     []string  `json:"categories"`
	OperationID    string    `json:"operationID"`
}

func newAuditNotificationsCommand() *cobra.Command {
	var opts auditNotificationsOptions
	cmd := &cobra.Command{
		Use:   "notifications FILE --public-key PATH [--since TIME] [--until TIME] [--subject PSEUDONYM]",
		Short: "List the disclosures without consent that the client must be told about, per dossier pseudonym",
		Long: `List every disclosure to a partner made without consent (legal obligation, vital
interest, public task) that the audit proxy recorded as needing notice to the
client, grouped per dossier pseudonym: when, to which partner, under which
agreement, legal basis and legal reference, for which purpose and which data
categories. The professional tells the family, as the privacy statement
promises ("we tell you afterwards why").

The log is verified first (as 'audit verify' does) and nothing is listed from a
log that is broken. --since and --until (RFC 3339, or a date such as
2026-12-01) limit the period: since is inclusive, until exclusive. --subject
limits the list to one dossier pseudonym (see docs/audit-log.md for how to
compute it from a dossier id).

Exit codes: 0 listed (possibly nothing), 1 the log is broken, 2 wrong usage or
the log or a key could not be read.`,
		Example: `  dossierguard audit notifications /var/log/dossierguard/audit.log --public-key audit-signing.pub.pem --since 2026-12-01
  dossierguard audit notifications audit.log --public-key key.pub --subject 9c7f... -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return auditUsageError("%s takes one FILE (the log is read twice: to verify, then to list)", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runAuditNotifications(cmd, args[0], opts) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.publicKeys, "public-key", nil, "PEM file with the Ed25519 public key (PKIX) that signs the checkpoints; repeat it across a key rotation (required)")
	f.BoolVar(&opts.allowUnsignedTail, "allow-unsigned-tail", false, "accept a log that ends with events after its last checkpoint, such as a live log")
	f.StringVar(&opts.since, "since", "", "list disclosures at or after this time (RFC 3339 or YYYY-MM-DD, UTC)")
	f.StringVar(&opts.until, "until", "", "list disclosures before this time (RFC 3339 or YYYY-MM-DD, UTC)")
	f.StringVar(&opts.subject, "subject", "", "list only this dossier pseudonym (64 hex digits)")
	f.StringVarP(&opts.output, "output", "o", "text", "text or json")
	return cmd
}

// parsePeriodBound reads an RFC 3339 time or a date (midnight UTC).
func parsePeriodBound(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, auditUsageError("--%s %q must be an RFC 3339 time such as 2026-12-01T09:00:00Z or a date such as 2026-12-01", flag, v)
}

// noticeFilter is the period and dossier a listing is limited to.
type noticeFilter struct {
	since, until time.Time
	subject      string
}

// parseNoticeFilter checks the filter flags.
func parseNoticeFilter(opts auditNotificationsOptions) (noticeFilter, error) {
	var f noticeFilter
	var err error
	if f.since, err = parsePeriodBound("since", opts.since); err != nil {
		return f, err
	}
	if f.until, err = parsePeriodBound("until", opts.until); err != nil {
		return f, err
	}
	if !f.since.IsZero() && !f.until.IsZero() && !f.until.After(f.since) {
		return f, auditUsageError("--until must be after --since")
	}
	if opts.subject != "" && (len(opts.subject) != 64 || strings.Trim(opts.subject, "0123456789abcdef") != "") {
		return f, auditUsageError("--subject must be a dossier pseudonym: 64 lowercase hex digits")
	}
	f.subject = opts.subject
	return f, nil
}

// admits reports whether an event falls within the filter.
func (f noticeFilter) admits(ev auditlog.Event) bool {
	return (f.since.IsZero() || !ev.Time.Before(f.since)) && (f.until.IsZero() || ev.Time.Before(f.until)) &&
		(f.subject == "" || ev.DataSubject == f.subject)
}

func runAuditNotifications(cmd *cobra.Command, path string, opts auditNotificationsOptions) error {
	if len(opts.publicKeys) == 0 {
		return auditUsageError("--public-key is required: the log is verified before anything is listed")
	}
	if opts.output != "text" && opts.output != "json" {
		return auditUsageError("--output must be text or json")
	}
	filter, err := parseNoticeFilter(opts)
	if err != nil {
		return err
	}
	keys, err := readPublicKeys(opts.publicKeys)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return auditUsageError("open audit log: %w", err)
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose on close
	res, err := auditlog.VerifyWithOptions(f, auditlog.VerifyOptions{PublicKeys: keys, AllowUnsignedTail: opts.allowUnsignedTail})
	if err != nil {
		return auditUsageError("%s: %w", path, err)
	}
	if !res.OK {
		_, _ = fmt.Fprintln(cmd.ErrOrStderr(), res.String())
		return &auditExitError{code: exitAuditBroken, err: fmt.Errorf("audit log %s is broken at seq %d (%s); nothing is listed", path, res.BrokenSeq, res.Reason)}
	}
	if _, err := f.Seek(0, 0); err != nil {
		return auditUsageError("read audit log again: %w", err)
	}
	notices, err := collectNotices(f, filter)
	if err != nil {
		return auditUsageError("%s: %w", path, err)
	}
	if opts.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(notices)
	}
	return printNotices(cmd.OutOrStdout(), notices)
}

// collectNotices reads the disclosures awaiting notice within filter, once
// per request (a decision and its completion share the operation id),
// sorted per pseudonym and then by time.
func collectNotices(r io.Reader, filter noticeFilter) ([]notice, error) {
	notices := []notice{}
	seen := map[string]bool{}
	err := auditlog.ReadEvents(r, func(rec *auditlog.Record) error {
		ev := *rec.Event
		s := ev.Sharing
		if s == nil || !s.NoticeRequired || ev.Outcome != auditlog.OutcomeAllowed || seen[ev.OperationID] || !filter.admits(ev) {
			return nil
		}
		seen[ev.OperationID] = true
		notices = append(notices, notice{
			DataSubject: ev.DataSubject, Time: ev.Time, Agreement: s.Agreement, Partner: s.Partner,
			LegalBasis: s.LegalBasis, LegalReference: s.LegalReference, Purpose: s.Purpose,
			Route: ev.Route, Categories: ev.Categories, OperationID: ev.OperationID,
		})
		return nil
	})
	sort.SliceStable(notices, func(i, j int) bool {
		if notices[i].DataSubject != notices[j].DataSubject {
			return notices[i].DataSubject < notices[j].DataSubject
		}
		return notices[i].Time.Before(notices[j].Time)
	})
	return notices, err
}

// printNotices writes the notices as a table and a summary line.
func printNotices(out io.Writer, notices []notice) error {
	if len(notices) == 0 {
		_, err := fmt.Fprintln(out, "No disclosures await notice.")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "DATA SUBJECT\tTIME\tPARTNER\tAGREEMENT\tBASIS\tREFERENCE\tROUTE\tCATEGORIES\tPURPOSE")
	subjects := map[string]bool{}
	for _, n := range notices {
		subjects[n.DataSubject] = true
		subject := n.DataSubject
		if subject == "" {
			subject = "(no single dossier)"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", subject, n.Time.UTC().Format(time.RFC3339), n.Partner, n.Agreement,
			n.LegalBasis, n.LegalReference, n.Route, strings.Join(n.Categories, ","), n.Purpose)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "%d disclosure(s) for %d dossier(s) await notice.\n", len(notices), len(subjects))
	return err
}
