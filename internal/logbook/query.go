package logbook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// Access is one processing of one dossier as the logbook holds it: an event
// line, decoded, and where it is in its chain.
type Access struct {
	ChainID string
	Seq     uint64
	Pod     string
	auditlog.Event
}

// QueryFilter selects the accesses QueryDossier lists.
type QueryFilter struct {
	// Store is namespace/name; required.
	Store string
	// DataSubject is the pseudonym of the dossier (auditlog.Pseudonymise
	// with the store's key); required. The identifier itself never reaches
	// the logbook.
	DataSubject string
	// Since and Until, when set, bound the event time: [Since, Until).
	Since, Until time.Time
}

// QueryDossier lists every access to and disclosure of one dossier of a
// store, allowed and denied, oldest first. Each line is checked against its
// hash as it is read; a line that does not match is an error, not a result.
func QueryDossier(ctx context.Context, db querier, f QueryFilter) ([]Access, error) {
	if f.Store == "" || f.DataSubject == "" {
		return nil, errors.New("query: a store and the pseudonym of a dossier are required")
	}
	q := `SELECT r.chain_id, r.seq, c.pod, r.line FROM logbook_records r JOIN logbook_chains c USING (chain_id)
		WHERE r.store = $1 AND r.data_subject_id = $2`
	args := []any{f.Store, f.DataSubject}
	q, args = andTime(q, args, "r.time >=", f.Since)
	q, args = andTime(q, args, "r.time <", f.Until)
	rows, err := db.Query(ctx, q+" ORDER BY r.time, r.chain_id, r.seq", args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Access, error) {
		var a Access
		var seq int64
		var line string
		if err := r.Scan(&a.ChainID, &seq, &a.Pod, &line); err != nil {
			return a, fmt.Errorf("query: %w", err)
		}
		a.Seq = uint64(seq)
		rec, err := auditlog.ParseRecord([]byte(line))
		if err != nil || rec.Event == nil || rec.Seq != a.Seq {
			return a, fmt.Errorf("query: the stored line at seq %d of chain %s is not a valid event line (%v): run `dossierguard audit verify --logbook`", seq, short(a.ChainID), err)
		}
		a.Event = *rec.Event
		return a, nil
	})
}

// andTime adds the condition "AND <cond> $n" to the query q, with t as its
// argument n, when t is set; cond is a column and a comparison, never input.
func andTime(q string, args []any, cond string, t time.Time) (string, []any) {
	if t.IsZero() {
		return q, args
	}
	args = append(args, t)
	return q + fmt.Sprintf(" AND %s $%d", cond, len(args)), args
}
