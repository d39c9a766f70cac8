package retention

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// quoteTable quotes a table name, splitting schema.table on the dot.
func quoteTable(t v1alpha1.SQLTableName) string {
	return pgx.Identifier(strings.SplitN(string(t), ".", 2)).Sanitize()
}

// quote quotes one identifier.
func quote(c v1alpha1.SQLIdentifier) string {
	return pgx.Identifier{string(c)}.Sanitize()
}

// statement is SQL text with its arguments. Values are only ever arguments
// ($1, $2, ...), never part of the text.
type statement struct {
	sql  string
	args []any
}

// params numbers the arguments of a statement as they are added.
type params struct{ args []any }

func (p *params) add(v any) string {
	p.args = append(p.args, v)
	return fmt.Sprintf("$%d", len(p.args))
}

// ruleSQL builds the statements of one rule.
type ruleSQL struct {
	rule  v1alpha1.RetentionRule
	table string // quoted
	id    string // quoted
	// kept are the raw dossier ids, as text, whose records are kept by a
	// retention extension; only for a rule with a dossier column.
	kept []string
}

func newRuleSQL(r v1alpha1.RetentionRule) ruleSQL {
	return ruleSQL{rule: r, table: quoteTable(r.Table), id: quote(idColumn(r))}
}

// byClock is the part of the predicate that selects records whose clock has
// passed the cutoff and that the action still applies to.
func (q ruleSQL) byClock(p *params, cutoff time.Time) string {
	conds := []string{quote(q.rule.Clock.Column) + " < " + p.add(cutoff)}
	if action(q.rule) == v1alpha1.ActionAnonymise {
		var left []string
		for _, c := range q.rule.AnonymiseColumns {
			left = append(left, quote(c)+" IS NOT NULL")
		}
		conds = append(conds, "("+strings.Join(left, " OR ")+")")
	}
	return strings.Join(conds, " AND ")
}

// notHeld is the part of the predicate that excludes records under legal
// hold or extension (the extension column, or a dossier kept by a retention
// extension decision): NULL hold counts as not held, NULL extension as
// none, a NULL dossier as not kept.
func (q ruleSQL) notHeld(p *params, now time.Time) string {
	var conds []string
	if len(q.kept) > 0 {
		d := quote(q.rule.DossierColumn)
		conds = append(conds, "("+d+" IS NULL OR "+d+"::text <> ALL("+p.add(q.kept)+"))")
	}
	if q.rule.LegalHoldColumn != "" {
		conds = append(conds, quote(q.rule.LegalHoldColumn)+" IS NOT TRUE")
	}
	if q.rule.ExtensionColumn != "" {
		e := quote(q.rule.ExtensionColumn)
		conds = append(conds, "("+e+" IS NULL OR "+e+" < "+p.add(now)+")")
	}
	if len(conds) == 0 {
		return "TRUE"
	}
	return strings.Join(conds, " AND ")
}

// due is the full predicate of a due record.
func (q ruleSQL) due(p *params, cutoff, now time.Time) string {
	return q.byClock(p, cutoff) + " AND " + q.notHeld(p, now)
}

// batch is the statement of one batch. It bounds the batch by a range of
// keys: the next limit keys after the key after (from the first key when
// after is nil), found by a walk of the key's index that reads no table row,
// and deletes or anonymises the due records among them. So a batch never
// runs the due predicate over more than its own range. It returns one row:
// whether the range is full (limit keys, so that records may follow it),
// the range's last key (when it is not full, the greatest key after after;
// NULL when there is none, and then the range is empty) and the changed
// keys as text, in the order they were changed (an array, NULL when
// nothing changed; one row instead of one per key spares the protocol and
// the client a row's overhead per key). A full batch is followed by the
// next, after its last key.
//
// Without locking, the change itself finds its records: one DELETE (or
// UPDATE) with the range and the whole due predicate in its WHERE, which
// the planner may serve by a bitmap scan of the range (the table's pages in
// physical order) or an index scan, and which takes no lock before it
// changes a row. In READ COMMITTED PostgreSQL re-checks that WHERE against
// the newest version of a row that another transaction changed after the
// statement's snapshot (EvalPlanQual). So a legal hold or extension set, or
// a date moved, while the batch runs keeps the row. The statement waits for
// a row that another transaction holds locked; the caller bounds that wait
// with lock_timeout and then runs the batch again with locking.
//
// With locking, the due records of the range are first selected with FOR
// UPDATE SKIP LOCKED, as a fallback: rows another transaction holds locked
// are skipped and stay overdue. It writes a lock into every selected row
// before the change, which is why it is not the default. byCtid finds the
// selected rows again by their physical address (ctid), which saves a
// second index lookup per row. It is only correct for a table that is one
// relation: ONLY keeps child tables out, and the caller uses it only for an
// ordinary table without children (see tableKind). Otherwise the rows are
// found by their key. The change repeats the due predicate, which keeps a
// row that became held after the selection.
//
// A record is examined by the batch whose range holds its key when the
// batch runs: one that the application updates during the sweep keeps its
// key and is still examined (unless its key changes); one inserted with a
// key behind the sweep's position is left to the next sweep.
func (q ruleSQL) batch(cutoff, now time.Time, limit int, after any, byCtid, locking bool) statement {
	var p params
	due := q.due(&p, cutoff, now)
	// The range: (after, upper], upper the limit-th key after after or, when
	// there are fewer, the greatest.
	var lower string // the range's lower bound, for the key column of any table alias
	if after != nil {
		lower = " > " + p.add(after)
	}
	inRange := func(key string) string {
		if lower == "" {
			return key + " <= (SELECT dossierguard_upper FROM dossierguard_range)"
		}
		return key + lower + " AND " + key + " <= (SELECT dossierguard_upper FROM dossierguard_range)"
	}
	afterWhere := "" // the WHERE of the walk
	if lower != "" {
		afterWhere = " WHERE " + q.id + lower
	}
	// UNION ALL with LIMIT 1 runs the second part only when the first finds
	// no key: the greatest key is looked up for the last batch only (by the
	// index backwards; max() is not defined for every key type, uuid).
	rng := "(SELECT " + q.id + " AS dossierguard_upper, true AS dossierguard_full FROM " + q.table + afterWhere +
		" ORDER BY " + q.id + " OFFSET " + p.add(limit) + " - 1 LIMIT 1)" +
		" UNION ALL (SELECT " + q.id + ", false FROM " + q.table + afterWhere + " ORDER BY " + q.id + " DESC LIMIT 1) LIMIT 1"

	from, key := q.table, "dossierguard_t."+q.id
	var where, locked string
	if locking {
		ref := q.id
		if byCtid {
			from, ref = "ONLY "+q.table, "ctid"
		}
		// "= ANY (ARRAY(...))" finds the locked rows through the ctid or
		// the key's index; a join with them would make the planner scan
		// the whole table.
		locked = ", dossierguard_locked AS (SELECT " + ref + " AS dossierguard_ref FROM " + from + " WHERE " + inRange(q.id) +
			" AND " + due + " FOR UPDATE SKIP LOCKED)"
		where = " WHERE dossierguard_t." + ref + " = ANY (ARRAY(SELECT dossierguard_ref FROM dossierguard_locked))"
	} else {
		where = " WHERE " + inRange(key)
	}
	where += " AND " + due + " RETURNING " + key
	var change string
	if action(q.rule) == v1alpha1.ActionAnonymise {
		sets := make([]string, len(q.rule.AnonymiseColumns))
		for i, c := range q.rule.AnonymiseColumns {
			sets[i] = quote(c) + " = NULL"
		}
		change = "UPDATE " + from + " AS dossierguard_t SET " + strings.Join(sets, ", ") + where
	} else {
		change = "DELETE FROM " + from + " AS dossierguard_t" + where
	}
	sql := "WITH dossierguard_range AS MATERIALIZED (" + rng + ")" + locked + ", dossierguard_done AS (" + change + ")" +
		" SELECT coalesce((SELECT dossierguard_full FROM dossierguard_range), false), (SELECT dossierguard_upper FROM dossierguard_range)," +
		" (SELECT array_agg(" + q.id + "::text) FROM dossierguard_done)"
	return statement{sql: sql, args: p.args}
}

// tableKind is the statement that says whether the table is an ordinary
// table without child tables (not partitioned, no inheritance children, not
// a view): only then may a batch find its rows by ctid. The table name is
// an argument, parsed by PostgreSQL as a quoted identifier.
func (q ruleSQL) tableKind() statement {
	return statement{
		sql:  "SELECT coalesce((SELECT relkind = 'r' AND NOT relhassubclass FROM pg_catalog.pg_class WHERE oid = to_regclass($1)), false)",
		args: []any{q.table},
	}
}

// count is the statement that counts, in one scan of the table, the
// records due by their clock (and not yet anonymised), of those the ones
// that are due, that is not held, and the ones whose dossier a retention
// extension keeps, and the records whose clock column is empty: never due
// by the period, so shown rather than silently kept. A B-tree index on the
// clock column serves both halves of its WHERE (IS NULL is indexable) once
// those records are a small part of the table; right after a large
// destruction PostgreSQL scans the whole table all the same (see "Indexes
// to create" in docs/retention.md).
func (q ruleSQL) count(cutoff, now time.Time) statement {
	var p params
	byClock := q.byClock(&p, cutoff)
	notHeld := q.notHeld(&p, now)
	kept := "FALSE"
	if len(q.kept) > 0 {
		kept = quote(q.rule.DossierColumn) + "::text = ANY(" + p.add(q.kept) + ")"
	}
	clock := quote(q.rule.Clock.Column)
	byClock = "(" + byClock + ")"
	sql := "SELECT count(*) FILTER (WHERE " + byClock + "), count(*) FILTER (WHERE " + byClock + " AND " + notHeld + ")," +
		" count(*) FILTER (WHERE " + byClock + " AND " + kept + "), count(*) FILTER (WHERE " + clock + " IS NULL)" +
		" FROM " + q.table + " WHERE " + byClock + " OR " + clock + " IS NULL"
	return statement{sql: sql, args: p.args}
}
