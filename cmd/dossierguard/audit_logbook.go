package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dossierguard/dossierguard/internal/auditlog"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/logbook"
)

// logbookSource are the flags that point `audit verify` and `audit query`
// at the logbook's database (libpq environment variables for the
// connection).
type logbookSource struct {
	enabled      bool
	schema       string
	store        string
	since, until string
}

func (s *logbookSource) flags(f *pflag.FlagSet) {
	f.BoolVar(&s.enabled, "logbook", false, "verify the chains in the logbook's database (PG* environment variables) instead of a file; needs --store")
	s.rangeFlags(f)
}

func (s *logbookSource) rangeFlags(f *pflag.FlagSet) {
	f.StringVar(&s.schema, "schema", logbook.DefaultSchema, "PostgreSQL schema of the logbook")
	f.StringVar(&s.store, "store", "", "the DossierStore, NAMESPACE/NAME")
	f.StringVar(&s.since, "since", "", "only what was written at or after this time (RFC 3339)")
	f.StringVar(&s.until, "until", "", "only what was written before this time (RFC 3339)")
}

// times parses --since and --until.
func (s *logbookSource) times() (since, until time.Time, err error) {
	for _, x := range []struct {
		flag, v string
		t       *time.Time
	}{{"since", s.since, &since}, {"until", s.until, &until}} {
		if x.v == "" {
			continue
		}
		if *x.t, err = time.Parse(time.RFC3339, x.v); err != nil {
			return since, until, auditUsageError("--%s: %q is not an RFC 3339 time such as 2026-09-01T00:00:00Z", x.flag, x.v)
		}
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, auditUsageError("--since must be before --until")
	}
	return since, until, nil
}

func (s *logbookSource) checkStore() error {
	ns, name, ok := strings.Cut(s.store, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return auditUsageError("--store: %q must be NAMESPACE/NAME", s.store)
	}
	return nil
}

// runLogbookVerify verifies every chain of a store in the logbook and prints
// one line per chain, then a summary.
func runLogbookVerify(cmd *cobra.Command, args []string, opts auditVerifyOptions) error {
	src := opts.logbook
	if len(args) > 0 || len(opts.publicKeys) > 0 {
		return auditUsageError("--logbook verifies the logbook's database with the keys it holds; give no FILE and no --public-key")
	}
	if err := src.checkStore(); err != nil {
		return err
	}
	since, until, err := src.times()
	if err != nil {
		return err
	}
	pool, err := logbookPool(cmd.Context(), src.schema)
	if err != nil {
		return auditUsageError("%v", err)
	}
	defer pool.Close()
	verdicts, err := logbook.VerifyChains(cmd.Context(), pool, logbook.VerifyFilter{Store: src.store, Since: since, Until: until,
		MaxUnsignedAge: opts.checkpointInterval})
	if err != nil {
		return auditUsageError("%v", err)
	}
	out := cmd.OutOrStdout()
	broken := 0
	for _, v := range verdicts {
		removed := ""
		if v.Removed > 0 {
			removed = fmt.Sprintf(" (seq 2 to %d removed by retention, signed)", v.Removed+1)
		}
		_, _ = fmt.Fprintf(out, "chain %s (pod %s, started %s): %s%s\n", v.ChainID, v.Pod, v.Started.UTC().Format(time.RFC3339), v.Result, removed)
		if !v.Result.OK {
			broken++
		}
	}
	_, _ = fmt.Fprintf(out, "%d chains of store %s, %d broken\n", len(verdicts), src.store, broken)
	if broken > 0 {
		return &auditExitError{code: exitAuditBroken, err: fmt.Errorf("%d of %d chains of store %s are broken", broken, len(verdicts), src.store)}
	}
	return nil
}

// auditQueryOptions are the flags of `dossierguard audit query`.
type auditQueryOptions struct {
	src          logbookSource
	dossier      string
	pseudonymKey string
	output       string
}

func newAuditQueryCommand() *cobra.Command {
	var opts auditQueryOptions
	cmd := &cobra.Command{
		Use:   "query --store NAMESPACE/NAME --dossier ID --pseudonym-key FILE",
		Short: "List every access to and disclosure of one dossier, from the logbook",
		Long: `List, oldest first, every processing of one dossier that the logbook holds:
when, who (actor and roles), what (action and data categories), on which
processing activity, with what outcome, and whether break-glass was used; for
a disclosure to a partner also the sharing agreement, the partner organisation,
the legal basis (with its article of law), the consent found and whether the
family must be told afterwards. This is the input of the data subject's access
report (AVG art. 15).

The dossier id is pseudonymised with the store's pseudonym key in this command;
only the pseudonym is sent to the database. Connection from the libpq
environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD).`,
		Example: `  dossierguard audit query --store wijkteam/dossiers --dossier 123456782 --pseudonym-key pseudonym.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuditQuery(cmd, opts)
		},
	}
	f := cmd.Flags()
	opts.src.rangeFlags(f)
	f.StringVar(&opts.dossier, "dossier", "", "the dossier (data subject) id as it appears in the application's URLs; pseudonymised as the proxy does it, letters in lower case (required)")
	f.StringVar(&opts.pseudonymKey, "pseudonym-key", "", "file with the store's pseudonym key (required)")
	f.StringVarP(&opts.output, "output", "o", "table", "table or json (one JSON object per line)")
	return cmd
}

func runAuditQuery(cmd *cobra.Command, opts auditQueryOptions) error {
	if err := opts.src.checkStore(); err != nil {
		return err
	}
	if opts.dossier == "" {
		return auditUsageError("--dossier is required")
	}
	if opts.output != "table" && opts.output != "json" {
		return auditUsageError("--output: %q must be table or json", opts.output)
	}
	if opts.pseudonymKey == "" {
		return auditUsageError("--pseudonym-key is required: the file with the store's pseudonym key")
	}
	key, err := readPseudonymKeyFile(opts.pseudonymKey)
	if err != nil {
		return err
	}
	since, until, err := opts.src.times()
	if err != nil {
		return err
	}
	accesses, err := queryLogbook(cmd.Context(), opts.src.schema, logbook.QueryFilter{
		Store: opts.src.store, DataSubject: auditproxy.DossierPseudonym(key, opts.dossier), Since: since, Until: until,
	})
	if err != nil {
		return err
	}
	return writeAccesses(cmd.OutOrStdout(), opts.output, accesses)
}

// readPseudonymKeyFile reads and checks a store's pseudonym key from a file.
func readPseudonymKeyFile(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, auditUsageError("read pseudonym key: %v", err)
	}
	if err := auditlog.CheckPseudonymKey(key); err != nil {
		return nil, auditUsageError("--pseudonym-key: %v", err)
	}
	return key, nil
}

// queryLogbook lists the accesses of one dossier (by pseudonym) from the
// logbook's database (PG* environment variables), as `audit query` and
// `dsr report` read them.
func queryLogbook(ctx context.Context, schema string, f logbook.QueryFilter) ([]logbook.Access, error) {
	pool, err := logbookPool(ctx, schema)
	if err != nil {
		return nil, auditUsageError("%v", err)
	}
	defer pool.Close()
	accesses, err := logbook.QueryDossier(ctx, pool, f)
	if err != nil {
		return nil, auditUsageError("%v", err)
	}
	return accesses, nil
}

// accessJSON is one access as `audit query -o json` prints it.
type accessJSON struct {
	Time                 string   `json:"time"`
	Actor                string   `json:"actor"`
	Roles                []string `json:"roles"`
	Action               string   `json:"action"`
	Categories           []string `json:"categories"`
	Outcome              string   `json:"outcome"`
	HTTPStatus           int      `json:"http_status"`
	Route                string   `json:"route"`
	ProcessingActivityID string   `json:"processing_activity_id"`
	BreakGlass           bool     `json:"break_glass"`
	BreakGlassReason     string   `json:"break_glass_reason,omitempty"`
	// Sharing is present for a partner's request (a disclosure, or its
	// denial) and absent for staff.
	Sharing *sharingJSON `json:"sharing,omitempty"`
	Pod     string       `json:"pod"`
	ChainID string       `json:"chain_id"`
	Seq     uint64       `json:"seq"`
}

// sharingJSON is what an access records of the agreement a partner's
// request was decided under.
type sharingJSON struct {
	Agreement      string `json:"agreement"`
	Partner        string `json:"partner"`
	LegalBasis     string `json:"legal_basis"`
	LegalReference string `json:"legal_reference,omitempty"`
	ConsentMode    string `json:"consent_mode,omitempty"`
	Consent        string `json:"consent"`
	Purpose        string `json:"purpose,omitempty"`
	NoticeRequired bool   `json:"notice_required"`
}

func sharingOf(ev *auditlog.Event) *sharingJSON {
	sh := ev.Sharing
	if sh == nil {
		return nil
	}
	return &sharingJSON{Agreement: sh.Agreement, Partner: sh.Partner, LegalBasis: sh.LegalBasis, LegalReference: sh.LegalReference,
		ConsentMode: sh.ConsentMode, Consent: string(sh.Consent), Purpose: sh.Purpose, NoticeRequired: sh.NoticeRequired}
}

// sharingColumns are the table's AGREEMENT, PARTNER and BASIS of an access,
// "-" for staff; the basis carries its article of law and, where the family
// must be told afterwards, says so.
func sharingColumns(ev *auditlog.Event) (agreement, partner, basis string) {
	sh := ev.Sharing
	if sh == nil {
		return "-", "-", "-"
	}
	agreement, partner, basis = orDash(sh.Agreement), orDash(sh.Partner), orDash(sh.LegalBasis)
	if sh.LegalReference != "" {
		basis += " (" + sh.LegalReference + ")"
	}
	basis += "; consent " + string(sh.Consent)
	if sh.NoticeRequired {
		basis += "; notice required"
	}
	return agreement, partner, basis
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeAccesses(w io.Writer, format string, accesses []logbook.Access) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, a := range accesses {
			if err := enc.Encode(accessJSON{
				Time: a.Time.UTC().Format(auditlog.TimeLayout), Actor: a.Actor, Roles: a.Roles, Action: string(a.Action),
				Categories: a.Categories, Outcome: string(a.Outcome), HTTPStatus: a.Status, Route: a.Route,
				ProcessingActivityID: a.ProcessingActivityID, BreakGlass: a.BreakGlass, BreakGlassReason: a.BreakGlassReason,
				Sharing: sharingOf(&a.Event), Pod: a.Pod, ChainID: a.ChainID, Seq: a.Seq,
			}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "TIME\tACTOR\tROLES\tACTION\tCATEGORIES\tOUTCOME\tROUTE\tPROCESSING ACTIVITY\tAGREEMENT\tPARTNER\tBASIS\tBREAK-GLASS")
	for _, a := range accesses {
		bg := "-"
		if a.BreakGlass {
			bg = "yes: " + a.BreakGlassReason
		}
		agreement, partner, basis := sharingColumns(&a.Event)
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.UTC().Format(time.RFC3339), a.Actor,
			strings.Join(a.Roles, ","), a.Action, strings.Join(a.Categories, ","), a.Outcome, a.Route, a.ProcessingActivityID,
			agreement, partner, basis, bg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d accesses\n", len(accesses))
	return err
}
