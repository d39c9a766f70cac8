package retention

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/dsr"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// extensionTables creates schema.dossiers (with a dossier column and a
// legal hold) and schema.audit_lines (without a dossier column), every
// record due by its clock under P15Y at any of the tests' moments, and
// returns the rules.
//
//	1, 2  D-1001 (in two spellings)   the extended dossier
//	3     D-1001, under legal hold     the extended dossier, held as well
//	4     D-2002                       due, no decision
//	5     no dossier id                due
func extensionTables(t *testing.T, pool *pgxpool.Pool, schema string) []v1alpha1.RetentionRule {
	t.Helper()
	execSQL(t, pool, "CREATE TABLE "+schema+".dossiers (id bigint PRIMARY KEY, dossier_id text, closed_at timestamptz, legal_hold boolean)")
	execSQL(t, pool, "CREATE TABLE "+schema+".audit_lines (id bigint PRIMARY KEY, written_at timestamptz)")
	long := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []struct {
		id      int64
		dossier any
		hold    any
	}{{1, "D-1001", nil}, {2, "d-1001", false}, {3, "D-1001", true}, {4, "D-2002", nil}, {5, nil, nil}} {
		execSQL(t, pool, "INSERT INTO "+schema+".dossiers VALUES ($1, $2, $3, $4)", r.id, r.dossier, long, r.hold)
	}
	execSQL(t, pool, "INSERT INTO "+schema+".audit_lines VALUES (1, $1)", long)
	return []v1alpha1.RetentionRule{
		{Name: "dossiers", Table: v1alpha1.SQLTableName(schema + ".dossiers"), DossierColumn: "dossier_id",
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_at"}, Period: "P15Y", LegalHoldColumn: "legal_hold"},
		{Name: "audit", Table: v1alpha1.SQLTableName(schema + ".audit_lines"),
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockCreation, Column: "written_at"}, Period: "P15Y"},
	}
}

// extensionRequest is a granted RetentionExtension request of store
// wijkteam on dossier id, decided on 1 June 2026, until the day.
func extensionRequest(id, until string) v1alpha1.DataSubjectRequest {
	decided := metav1.NewTime(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	return v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "langer-bewaren"},
		Spec: v1alpha1.DataSubjectRequestSpec{
			StoreRef: v1alpha1.StoreReference{Name: "wijkteam"}, Type: v1alpha1.RequestRetentionExtension,
			Dossier:            v1alpha1.DossierPseudonym(auditproxy.DossierPseudonym(erasureKey, id)),
			ReceivedAt:         metav1.NewTime(decided.Add(-24 * time.Hour)),
			RetentionExtension: &v1alpha1.RetentionExtensionSpec{Until: until, Reference: "brief 2026-118"},
			Decision:           &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: decided},
		},
	}
}

// decisionsOf is the Decisions of a sweep of store wijkteam under the cap,
// from the requests, as the sweeper command reads them.
func decisionsOf(list []v1alpha1.DataSubjectRequest, maxExtension v1alpha1.Period) func(context.Context, time.Time) (Kept, error) {
	return func(_ context.Context, now time.Time) (Kept, error) {
		dossiers, n, err := dsr.KeptDossiers(list, "wijkteam", maxExtension, now)
		return Kept{Key: erasureKey, Dossiers: dossiers, Decisions: n}, err
	}
}

// TestRetentionExtensionKeepsDossier: a due dossier with a granted
// extension is kept (in any spelling of its id) while another due dossier
// is destroyed; from the day after the end date it is destroyed, except
// its record under legal hold; the rule without a dossier column is swept
// as usual; the run counts what the extension kept.
func TestRetentionExtensionKeepsDossier(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "ext_")
	rules := extensionTables(t, pool, schema)
	dossiers := schema + ".dossiers"
	decisions := decisionsOf([]v1alpha1.DataSubjectRequest{extensionRequest("D-1001", "2028-12-31")}, "P5Y")

	// The last moment of 31 December 2028 in Amsterdam: still kept.
	lastDay := time.Date(2028, 12, 31, 22, 59, 59, 0, time.UTC)
	rep := mustRun(t, pool, Config{Rules: rules, Now: fixedNow(lastDay), Decisions: decisions})
	if got := ids(t, pool, dossiers); !sameIDs(got, []int64{1, 2, 3}) {
		t.Errorf("within the extension: dossiers left %v, want 1 2 3 (D-2002 and the record without a dossier destroyed)", keys(got))
	}
	d := rep.Rules[0]
	if d.Destroyed != 2 || d.KeptByExtension != 3 || d.Held != 3 || d.Overdue != 0 {
		t.Errorf("within the extension: %+v, want 2 destroyed, 3 kept by the extension and held, 0 overdue", d)
	}
	if rep.ExtensionsInEffect != 1 || rep.Rules[1].Destroyed != 1 || rep.Rules[1].KeptByExtension != 0 {
		t.Errorf("within the extension: %d decisions, audit %+v; want 1, and the audit line destroyed", rep.ExtensionsInEffect, rep.Rules[1])
	}
	sum := rep.Summary()
	if sum.KeptByExtension != 3 || sum.ExtensionsInEffect != 1 || sum.Rules[0].KeptByExtension != 3 {
		t.Errorf("summary %+v, want 3 kept by extension, 1 decision", sum)
	}
	for _, secret := range []string{"D-1001", "d-1001", auditproxy.DossierPseudonym(erasureKey, "D-1001")} {
		if strings.Contains(reportJSON(t, rep), secret) {
			t.Errorf("the report holds %q", secret)
		}
	}

	// From the start of 1 January 2029 in Amsterdam the extension has ended:
	// the dossier is due as normal; the legal hold still wins.
	rep = mustRun(t, pool, Config{Rules: rules, Now: fixedNow(lastDay.Add(time.Second)), Decisions: decisions})
	if got := ids(t, pool, dossiers); !sameIDs(got, []int64{3}) {
		t.Errorf("after the end date: dossiers left %v, want 3 (under legal hold)", keys(got))
	}
	if d := rep.Rules[0]; d.Destroyed != 2 || d.KeptByExtension != 0 || d.Held != 1 || rep.ExtensionsInEffect != 0 {
		t.Errorf("after the end date: %+v (%d decisions), want 2 destroyed, 1 held, none kept by extension", d, rep.ExtensionsInEffect)
	}
}

// TestRetentionExtensionCap: an end date beyond the store's cap is
// honoured only until the cap's last day, never beyond.
func TestRetentionExtensionCap(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "extcap_")
	rules := extensionTables(t, pool, schema)
	dossiers := schema + ".dossiers"
	// Decided 1 June 2026 with a cap of P1Y: kept until 1 June 2027 at most,
	// although the request asks until 2035.
	decisions := decisionsOf([]v1alpha1.DataSubjectRequest{extensionRequest("D-1001", "2035-01-01")}, "P1Y")
	mustRun(t, pool, Config{Rules: rules, Now: fixedNow(time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC)), Decisions: decisions})
	if got := ids(t, pool, dossiers); !sameIDs(got, []int64{1, 2, 3}) {
		t.Errorf("on the cap's last day: dossiers left %v, want 1 2 3", keys(got))
	}
	rep := mustRun(t, pool, Config{Rules: rules, Now: fixedNow(time.Date(2027, 6, 2, 12, 0, 0, 0, time.UTC)), Decisions: decisions})
	if got := ids(t, pool, dossiers); !sameIDs(got, []int64{3}) {
		t.Errorf("after the cap: dossiers left %v, want 3 (held): the end date beyond the cap is not honoured", keys(got))
	}
	if rep.ExtensionsInEffect != 0 {
		t.Errorf("after the cap: %d decisions in effect, want 0", rep.ExtensionsInEffect)
	}
}

// TestUnreadableDecisionsDestroyNothing: a sweep that cannot read the
// granted extensions, or cannot recognise the kept dossiers, destroys
// nothing, in any rule, and reports Failed with a plain message.
func TestUnreadableDecisionsDestroyNothing(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	schema := testenv.NewSchema(t, pool, "extfail_")
	rules := extensionTables(t, pool, schema)
	before := checksum(t, pool, schema+".dossiers") + checksum(t, pool, schema+".audit_lines")
	pseudonym := auditproxy.DossierPseudonym(erasureKey, "D-1001")
	for _, tc := range []struct {
		name      string
		decisions func(context.Context, time.Time) (Kept, error)
	}{
		{"the requests cannot be listed", func(context.Context, time.Time) (Kept, error) {
			return Kept{}, errors.New(`datasubjectrequests is forbidden: User "system:serviceaccount:wijkteam:sweeper" cannot list`)
		}},
		{"no key for the kept dossiers", func(context.Context, time.Time) (Kept, error) {
			return Kept{Dossiers: map[string]bool{pseudonym: true}, Decisions: 1}, nil
		}},
		{"a kept dossier that is no pseudonym", func(context.Context, time.Time) (Kept, error) {
			return Kept{Key: erasureKey, Dossiers: map[string]bool{"D-1001": true}, Decisions: 1}, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dry := range []bool{false, true} {
				rep, err := Run(context.Background(), pool, Config{Rules: rules, Now: fixedNow(testNow), Decisions: tc.decisions, DryRun: dry})
				if err == nil || rep.Result != v1alpha1.RunFailed {
					t.Fatalf("result %s, error %v; want Failed with an error", rep.Result, err)
				}
				if rep.Message != "the granted retention extensions could not be read; nothing was destroyed" {
					t.Errorf("message %q", rep.Message)
				}
				for _, rr := range rep.Rules {
					if rr.Destroyed != 0 || rr.Overdue != Unknown || rr.KeptByExtension != Unknown {
						t.Errorf("rule %+v, want nothing destroyed and the counts Unknown", rr)
					}
				}
				if js := reportJSON(t, rep); strings.Contains(js, "forbidden") || strings.Contains(js, "D-1001") {
					t.Errorf("the report holds the cause: %s", js)
				}
			}
			if after := checksum(t, pool, schema+".dossiers") + checksum(t, pool, schema+".audit_lines"); after != before {
				t.Error("the tables changed")
			}
		})
	}

	// A rule whose dossier ids cannot be read (the column is gone) destroys
	// nothing either; the rule without a dossier column is swept.
	broken := append([]v1alpha1.RetentionRule(nil), rules...)
	broken[0].DossierColumn = "no_such_column"
	rep, err := Run(context.Background(), pool, Config{Rules: broken, Now: fixedNow(testNow),
		Decisions: decisionsOf([]v1alpha1.DataSubjectRequest{extensionRequest("D-1001", "2028-12-31")}, "P5Y")})
	if err == nil || rep.Result != v1alpha1.RunFailed || rep.Rules[0].Destroyed != 0 || !strings.HasPrefix(rep.Rules[0].Error, "kept dossiers lookup: database error, SQLSTATE") {
		t.Errorf("broken dossier column: %s %+v, %v; want Failed, nothing destroyed, an SQLSTATE", rep.Result, rep.Rules[0], err)
	}
	if got := ids(t, pool, schema+".dossiers"); len(got) != 5 {
		t.Errorf("broken dossier column: dossiers left %v, want all 5", keys(got))
	}
	if rep.Rules[1].Destroyed != 1 {
		t.Errorf("broken dossier column: audit %+v, want its line destroyed", rep.Rules[1])
	}
}
