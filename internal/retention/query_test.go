package retention

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestStatementsHoldNoValues: the statements' text holds quoted identifiers
// and placeholders only; every value (cutoff, now, limit, last key) is an
// argument.
func TestStatementsHoldNoValues(t *testing.T) {
	cutoff := time.Date(2011, 11, 11, 11, 11, 11, 0, time.UTC)
	now := time.Date(2033, 3, 3, 3, 3, 3, 0, time.UTC)
	const limit = 4321
	after := "x'); DROP TABLE clients; --"
	rules := map[string]v1alpha1.RetentionRule{
		"delete": dossierRule("jeugd.dossiers"),
		"anonymise": {
			Name: "contacts", Table: "contacts", IDColumn: "contact_id",
			Clock:  v1alpha1.RetentionClock{Event: v1alpha1.ClockClosure, Column: "closed_at"},
			Period: "P6M", Action: v1alpha1.ActionAnonymise,
			AnonymiseColumns: []v1alpha1.SQLIdentifier{"name", "phone"},
		},
		"no hold or extension": {
			Name: "logs", Table: "logs", Period: "P30D",
			Clock: v1alpha1.RetentionClock{Event: v1alpha1.ClockCreation, Column: "created_at"},
		},
	}
	placeholder := regexp.MustCompile(`\$([0-9]+)`)
	for name, rule := range rules {
		t.Run(name, func(t *testing.T) {
			q := newRuleSQL(rule)
			all := []statement{
				q.batch(cutoff, now, limit, nil, false, false),
				q.batch(cutoff, now, limit, after, false, false),
				q.batch(cutoff, now, limit, nil, true, false),
				q.batch(cutoff, now, limit, after, true, false),
				q.batch(cutoff, now, limit, nil, false, true),
				q.batch(cutoff, now, limit, after, false, true),
				q.batch(cutoff, now, limit, nil, true, true),
				q.batch(cutoff, now, limit, after, true, true),
			}
			for _, st := range append(all, q.count(cutoff, now)) {
				for _, v := range []string{"2011", "2033", "4321", "DROP", "clients", "'"} {
					if strings.Contains(st.sql, v) {
						t.Errorf("statement holds the value %q:\n%s", v, st.sql)
					}
				}
				// Every argument is used, and only those.
				seen := map[string]bool{}
				for _, m := range placeholder.FindAllStringSubmatch(st.sql, -1) {
					seen[m[1]] = true
				}
				if len(seen) != len(st.args) {
					t.Errorf("%d placeholders for %d arguments:\n%s", len(seen), len(st.args), st.sql)
				}
				// Identifiers are quoted.
				if c := `"` + string(rule.Clock.Column) + `" < $`; !strings.Contains(st.sql, c) {
					t.Errorf("statement lacks the quoted clock column %s:\n%s", c, st.sql)
				}
			}
			for i, st := range all {
				if id := "ORDER BY " + `"` + string(idColumn(rule)) + `"`; !strings.Contains(st.sql, id) {
					t.Errorf("batch statement lacks the quoted key %s:\n%s", id, st.sql)
				}
				// Row locks only in the fallback.
				locking := i >= 4
				if locking != strings.Contains(st.sql, "FOR UPDATE SKIP LOCKED") {
					t.Errorf("locking %v:\n%s", locking, st.sql)
				}
				// The change holds the due predicate; with locking the
				// selection holds it too, and the change repeats it.
				want := 1
				if locking {
					want = 2
				}
				if c := `"` + string(rule.Clock.Column) + `" < $`; strings.Count(st.sql, c) != want {
					t.Errorf("the clock condition %s is not %d times in the statement (locking %v):\n%s", c, want, locking, st.sql)
				}
				// The change is bounded by the batch's range of keys.
				if r := "dossierguard_t." + quote(idColumn(rule)) + " <= (SELECT dossierguard_upper FROM dossierguard_range)"; !locking && !strings.Contains(st.sql, r) {
					t.Errorf("the change is not bounded by the range (%s):\n%s", r, st.sql)
				}
				// By ctid only with locking, in that one table, never its
				// children.
				if byCtid := locking && i%4 >= 2; byCtid != strings.Contains(st.sql, "ONLY "+quoteTable(rule.Table)) ||
					byCtid != strings.Contains(st.sql, "dossierguard_t.ctid = ANY") {
					t.Errorf("byCtid %v:\n%s", byCtid, st.sql)
				}
			}
			st := q.batch(cutoff, now, limit, after, true, false)
			var hasCutoff, hasLimit, hasAfter bool
			for _, a := range st.args {
				switch v := a.(type) {
				case time.Time:
					hasCutoff = hasCutoff || v.Equal(cutoff)
				case int:
					hasLimit = hasLimit || v == limit
				case string:
					hasAfter = hasAfter || v == after
				}
			}
			if !hasCutoff || !hasLimit || !hasAfter {
				t.Errorf("arguments %v lack cutoff %v, limit %v or last key %v", st.args, hasCutoff, hasLimit, hasAfter)
			}
		})
	}
}

func TestQuoteTable(t *testing.T) {
	tests := map[v1alpha1.SQLTableName]string{
		"dossiers":              `"dossiers"`,
		"jeugd.dossiers":        `"jeugd"."dossiers"`,
		"order":                 `"order"`,
		`we"ird.t"able`:         `"we""ird"."t""able"`,
		`x; DROP TABLE clients`: `"x; DROP TABLE clients"`,
	}
	for in, want := range tests {
		if got := quoteTable(in); got != want {
			t.Errorf("quoteTable(%q) = %s; want %s", in, got, want)
		}
	}
}
