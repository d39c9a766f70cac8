package retention

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Kept are the dossiers a sweep keeps by granted retention extension
// decisions (RetentionExtension requests in effect), by pseudonym.
type Kept struct {
	// Key is the store's pseudonym key; required when Dossiers is not
	// empty.
	Key []byte
	// Dossiers are the pseudonyms of the kept dossiers: the lowercase hex
	// HMAC-SHA-256 of the lower-cased dossier id under Key.
	Dossiers map[string]bool
	// Decisions is the number of decisions in effect; several may keep one
	// dossier.
	Decisions int
}

// check refuses a Kept the sweep cannot honour.
func (k Kept) check() error {
	if len(k.Dossiers) > 0 && len(k.Key) == 0 {
		return errors.New("the store's pseudonym key is required to recognise the kept dossiers")
	}
	for p := range k.Dossiers {
		if len(p) != 64 || strings.Trim(p, "0123456789abcdef") != "" {
			return errors.New("a kept dossier is not a pseudonym of 64 lowercase hex digits")
		}
	}
	return nil
}

// readKept calls the config's Decisions and checks the answer.
func readKept(ctx context.Context, cfg Config, s *sweep) (Kept, error) {
	if cfg.Decisions == nil {
		return Kept{}, nil
	}
	kept, err := cfg.Decisions(ctx, s.now)
	if err != nil {
		return Kept{}, err
	}
	return kept, kept.check()
}

// keptIDs reads the distinct dossier ids of the rule's table and returns
// those whose pseudonym is a kept dossier, as text. It reads every id, not
// only those of due records, so that a kept dossier's record that becomes
// due during the sweep is kept too. The key never reaches the database.
func (s *sweep) keptIDs(ctx context.Context, q ruleSQL, kept Kept) ([]string, error) {
	if q.rule.DossierColumn == "" || len(kept.Dossiers) == 0 {
		return nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.BatchTimeout)
	defer cancel()
	tx, err := s.db.BeginTx(cctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(cctx) }()
	ids, err := matchDossiers(cctx, tx, q, kept.Key, func(p string) bool { return kept.Dossiers[p] })
	if err != nil {
		return nil, err
	}
	return ids, tx.Commit(cctx)
}

// matchDossiers returns the distinct dossier ids of the rule's table, as
// text, whose pseudonym under key is wanted. Erasure and retention
// extensions find their dossiers with it.
func matchDossiers(ctx context.Context, tx pgx.Tx, q ruleSQL, key []byte, wanted func(pseudonym string) bool) ([]string, error) {
	st := q.dossierIDs()
	rows, err := tx.Query(ctx, st.sql, st.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if wanted(DossierPseudonym(key, id)) {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}
