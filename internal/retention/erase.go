package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// Erasure is the erasure of one dossier, named by its pseudonym, from the
// tables of a policy's rules.
type Erasure struct {
	// Rules of the policy; only those with a DossierColumn take part.
	Rules []v1alpha1.RetentionRule
	// Key is the store's pseudonym key.
	Key []byte
	// Dossier is the dossier's pseudonym: the lowercase hex HMAC-SHA-256
	// of the lower-cased dossier id under Key.
	Dossier string
	// Weighed is true when the child's-interest weighing is recorded: the
	// records whose statutory minimum has not passed are erased too.
	Weighed bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the erasure's transaction; 0 means
	// DefaultBatchTimeout.
	Timeout time.Duration
}

// ErasureReport is the proof of destruction of one dossier: counts per
// table and hashed record ids, no dossier id, no pseudonym, no personal
// data and no driver messages.
type ErasureReport struct {
	// Time of the erasure (its "now"), UTC.
	Time time.Time `json:"time"`
	// Result of the erasure.
	Result v1alpha1.ErasureResult `json:"result"`
	// Message explains a result other than Erased in plain words.
	Message string `json:"message,omitempty"`
	// Tables, one per rule with a dossier column, in the rules' order.
	Tables []ErasureTableReport `json:"tables"`
	// Skipped are the rules without a dossier column.
	Skipped []string `json:"skipped"`
}

// ErasureTableReport is what an erasure did in one rule's table.
type ErasureTableReport struct {
	Rule   string                   `json:"rule"`
	Table  string                   `json:"table"`
	Action v1alpha1.RetentionAction `json:"action"`
	// Destroyed and Anonymised records of the dossier.
	Destroyed  int64 `json:"destroyed"`
	Anonymised int64 `json:"anonymised"`
	// Held records of the dossier: under legal hold, or within the
	// statutory minimum without a weighing. Held records stop the whole
	// erasure.
	Held int64 `json:"held"`
	// RecordHashes are RecordHash(table, id) of every destroyed or
	// anonymised record, in id order.
	RecordHashes []string `json:"recordHashes"`
}

// Erase destroys (or, for Anonymise rules, anonymises) every record of one
// dossier in the tables of the rules that have a dossier column, in one
// transaction: all of it, or nothing.
//
// The dossier ids in the database are raw and the request holds only the
// pseudonym, so Erase reads the distinct dossier ids of each table, makes
// the pseudonym of each (lower-cased, keyed with Key, as the audit proxy
// does) and keeps the ids whose pseudonym matches. The key never leaves the
// process; the matched ids are only ever query parameters.
//
// Nothing is destroyed, and the result says why, when a record of the
// dossier is under legal hold (Held), or when its statutory minimum has not
// passed (its clock is empty or not before the rule's cutoff) and the
// weighing is not recorded (WeighingRequired). A record's extension column
// (a client-requested extension) does not stop an erasure the client asked
// for. A database failure gives Failed and an error that may wrap the
// driver's; the report never holds it.
func Erase(ctx context.Context, db DB, e Erasure) (ErasureReport, error) {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Timeout == 0 {
		e.Timeout = DefaultBatchTimeout
	}
	now := e.Now()
	rep := ErasureReport{Time: now.UTC(), Tables: []ErasureTableReport{}, Skipped: []string{}}
	if err := e.check(); err != nil {
		rep.Result, rep.Message = v1alpha1.ErasureFailed, "invalid erasure"
		return rep, err
	}
	var parts []erasurePart
	for _, r := range e.Rules {
		if r.DossierColumn == "" {
			rep.Skipped = append(rep.Skipped, r.Name)
			continue
		}
		parts = append(parts, erasurePart{q: newRuleSQL(r), cutoff: Cutoff(now, r.Period)})
		rep.Tables = append(rep.Tables, ErasureTableReport{Rule: r.Name, Table: string(r.Table), Action: action(r), RecordHashes: []string{}})
	}
	if len(parts) == 0 {
		rep.Result = v1alpha1.ErasureErased
		rep.Message = "no rule of the policy names a dossierColumn"
		return rep, nil
	}
	err := e.run(ctx, db, parts, &rep)
	if err != nil {
		for i := range rep.Tables {
			rep.Tables[i].Destroyed, rep.Tables[i].Anonymised, rep.Tables[i].RecordHashes = 0, 0, []string{}
		}
		rep.Result, rep.Message = v1alpha1.ErasureFailed, "nothing was destroyed: "+describe(err)
	}
	return rep, err
}

// check refuses an erasure that cannot be right.
func (e Erasure) check() error {
	var errs []error
	if len(e.Key) == 0 {
		errs = append(errs, errors.New("key: the store's pseudonym key is required"))
	}
	if len(e.Dossier) != 64 || strings.Trim(e.Dossier, "0123456789abcdef") != "" {
		errs = append(errs, errors.New("dossier: must be a pseudonym, 64 lowercase hex digits"))
	}
	errs = append(errs, validateRules("rules", e.Rules, false)...)
	return errors.Join(errs...)
}

// erasurePart is one rule's share of an erasure.
type erasurePart struct {
	q      ruleSQL
	cutoff time.Time
	ids    []string // the raw dossier ids that match, as text
}

// run is the erasure's transaction: find and lock the dossier's records,
// stop at a hold or an unweighed minimum, destroy, commit.
func (e Erasure) run(ctx context.Context, db DB, parts []erasurePart, rep *ErasureReport) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.Timeout)
	defer cancel()
	tx, err := db.BeginTx(tctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(tctx) }() // a no-op after Commit

	held, unweighed, err := e.lock(tctx, tx, parts, rep)
	switch {
	case err != nil:
		return err
	case held > 0:
		rep.Result = v1alpha1.ErasureHeld
		rep.Message = "a record of the dossier is under legal hold; nothing was destroyed"
		return nil
	case unweighed > 0 && !e.Weighed:
		rep.Result = v1alpha1.ErasureWeighingRequired
		rep.Message = "a statutory retention minimum still applies to a record of the dossier and no child's-interest weighing is recorded; nothing was destroyed"
		return nil
	}
	for i := range parts {
		if err := e.destroy(tctx, tx, &parts[i], &rep.Tables[i]); err != nil {
			return err
		}
	}
	if err := tx.Commit(tctx); err != nil {
		return fmt.Errorf("commit (outcome unknown): %w", err)
	}
	rep.Result = v1alpha1.ErasureErased
	return nil
}

// lock finds the dossier's ids in every part, locks its records and counts
// those under legal hold and those within their statutory minimum.
func (e Erasure) lock(ctx context.Context, tx pgx.Tx, parts []erasurePart, rep *ErasureReport) (held, unweighed int64, err error) {
	for i := range parts {
		p := &parts[i]
		if p.ids, err = e.match(ctx, tx, p.q); err != nil {
			return 0, 0, fmt.Errorf("rule %q: find the dossier: %w", p.q.rule.Name, err)
		}
		if len(p.ids) == 0 {
			continue
		}
		st := p.q.eraseCheck(p.ids, p.cutoff)
		var hold, minimum int64
		if err := tx.QueryRow(ctx, st.sql, st.args...).Scan(&hold, &minimum); err != nil {
			return 0, 0, fmt.Errorf("rule %q: check holds: %w", p.q.rule.Name, err)
		}
		rep.Tables[i].Held = hold
		if !e.Weighed {
			rep.Tables[i].Held += minimum
		}
		held += hold
		unweighed += minimum
	}
	return held, unweighed, nil
}

// destroy deletes or anonymises the part's records and counts them.
func (e Erasure) destroy(ctx context.Context, tx pgx.Tx, p *erasurePart, tr *ErasureTableReport) error {
	if len(p.ids) == 0 {
		return nil
	}
	st := p.q.erase(p.ids)
	rows, err := tx.Query(ctx, st.sql, st.args...)
	if err != nil {
		return fmt.Errorf("rule %q: erase: %w", p.q.rule.Name, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("rule %q: erase: %w", p.q.rule.Name, err)
	}
	for _, k := range keys {
		tr.RecordHashes = append(tr.RecordHashes, RecordHash(tr.Table, k))
	}
	if tr.Action == v1alpha1.ActionAnonymise {
		tr.Anonymised = int64(len(keys))
	} else {
		tr.Destroyed = int64(len(keys))
	}
	return nil
}

// match returns the distinct dossier ids of the rule's table whose
// pseudonym is the erasure's dossier.
func (e Erasure) match(ctx context.Context, tx pgx.Tx, q ruleSQL) ([]string, error) {
	return matchDossiers(ctx, tx, q, e.Key, func(p string) bool { return p == e.Dossier })
}

// DossierPseudonym is the pseudonym of a raw dossier id under key: the
// HMAC-SHA-256 of the lower-cased id, as the audit proxy makes it
// (auditproxy.DossierPseudonym).
func DossierPseudonym(key []byte, id string) string {
	return auditlog.Pseudonymise(key, strings.ToLower(id))
}

// dossierIDs is the statement that reads the distinct dossier ids of the
// table, as text.
func (q ruleSQL) dossierIDs() statement {
	c := quote(q.rule.DossierColumn)
	return statement{sql: "SELECT DISTINCT " + c + "::text FROM " + q.table + " WHERE " + c + " IS NOT NULL"}
}

// dossierRows is the predicate of the records of the dossier ids.
func (q ruleSQL) dossierRows(p *params, ids []string) string {
	return quote(q.rule.DossierColumn) + "::text = ANY(" + p.add(ids) + ")"
}

// eraseCheck is the statement that locks the dossier's records and counts
// those under legal hold and, of the others, those whose statutory minimum
// has not passed (an empty clock has not passed either).
func (q ruleSQL) eraseCheck(ids []string, cutoff time.Time) statement {
	var p params
	where := q.dossierRows(&p, ids)
	hold := "FALSE"
	if q.rule.LegalHoldColumn != "" {
		hold = quote(q.rule.LegalHoldColumn) + " IS TRUE"
	}
	minimum := "(" + quote(q.rule.Clock.Column) + " < " + p.add(cutoff) + ") IS NOT TRUE"
	sql := "WITH dossierguard_rows AS (SELECT " + hold + " AS held, " + minimum + " AS minimum FROM " + q.table +
		" WHERE " + where + " FOR UPDATE)" +
		" SELECT count(*) FILTER (WHERE held), count(*) FILTER (WHERE NOT held AND minimum) FROM dossierguard_rows"
	return statement{sql: sql, args: p.args}
}

// erase is the statement that deletes or anonymises the dossier's records
// and returns their keys as text, in id order.
func (q ruleSQL) erase(ids []string) statement {
	var p params
	where := " WHERE " + q.dossierRows(&p, ids) + " RETURNING " + q.id
	var change string
	if action(q.rule) == v1alpha1.ActionAnonymise {
		sets := make([]string, len(q.rule.AnonymiseColumns))
		for i, c := range q.rule.AnonymiseColumns {
			sets[i] = quote(c) + " = NULL"
		}
		change = "UPDATE " + q.table + " SET " + strings.Join(sets, ", ") + where
	} else {
		change = "DELETE FROM " + q.table + where
	}
	return statement{sql: "WITH dossierguard_done AS (" + change + ") SELECT " + q.id + "::text FROM dossierguard_done ORDER BY " + q.id, args: p.args}
}

// bytes is the report's JSON; deterministic, as the report holds no maps.
func (r ErasureReport) bytes() []byte {
	b, err := json.Marshal(r)
	if err != nil { // unreachable: only strings, numbers and times
		panic("retention: encoding the erasure report: " + err.Error())
	}
	return b
}

// WriteJSON writes the report as one JSON line.
func (r ErasureReport) WriteJSON(w io.Writer) error {
	_, err := w.Write(append(r.bytes(), '\n'))
	return err
}

// Digest is the hex SHA-256 of the report's JSON as WriteJSON writes it,
// without the final newline.
func (r ErasureReport) Digest() string {
	sum := sha256.Sum256(r.bytes())
	return hex.EncodeToString(sum[:])
}

// Summary maps the report into the API's status type for the policy.
func (r ErasureReport) Summary(policy string) v1alpha1.ErasureRun {
	run := v1alpha1.ErasureRun{
		Policy:      policy,
		Time:        metav1.NewTime(r.Time),
		Result:      r.Result,
		ProofDigest: r.Digest(),
	}
	for _, t := range r.Tables {
		run.Tables = append(run.Tables, v1alpha1.ErasureTable{Rule: t.Rule, Table: t.Table, Destroyed: t.Destroyed, Anonymised: t.Anonymised, Held: t.Held})
	}
	if len(r.Skipped) > 0 {
		run.SkippedRules = append([]string(nil), r.Skipped...)
	}
	return run
}
