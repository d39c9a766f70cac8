package logbook

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// VerifyFilter selects the chains VerifyChains checks.
type VerifyFilter struct {
	// Store is namespace/name; required.
	Store string
	// Since and Until, when set, select the chains with lines in
	// [Since, Until): started before Until and last written at or after
	// Since.
	Since, Until time.Time
	// MaxUnsignedAge, when positive, is the writers' checkpoint interval:
	// a chain whose unsigned tail starts longer ago than that is broken
	// (auditlog.ReasonUnsigned). A live proxy signs within it; a chain that
	// never gets a checkpoint (a proxy killed before it could sign, or lines
	// sent by someone without the key) is not authenticated.
	MaxUnsignedAge time.Duration
	// Now is the clock for MaxUnsignedAge; nil means time.Now.
	Now func() time.Time
}

// ChainVerdict is the outcome of verifying one chain in the logbook.
type ChainVerdict struct {
	ChainID     string
	Pod         string
	Incarnation string
	Started     time.Time
	// HeadSeq is the seq of the chain's head as the logbook recorded it.
	HeadSeq uint64
	// Removed is the number of lines retention removed (seq 2 to
	// Removed+1), each range with a signed removal record.
	Removed uint64
	// Result is the verification of the stored lines, as
	// `dossierguard audit verify` checks a file, with the logbook's own
	// checks on top: the lines must reach the head, and a chain for which
	// the logbook refused a line is broken at the first refused seq.
	Result auditlog.Result
}

// VerifyChains verifies every chain of a store (in the time range) with the
// public keys the logbook holds for the store. Lines after the last
// checkpoint are allowed (a live chain, or the chain of a pod that was
// killed) and counted as unsigned in the result.
func VerifyChains(ctx context.Context, db querier, f VerifyFilter) ([]ChainVerdict, error) {
	if f.Store == "" {
		return nil, errors.New("verify: a store is required")
	}
	keys, err := loadKeys(ctx, db, f.Store)
	if err != nil {
		return nil, err
	}
	pubs := make([]ed25519.PublicKey, 0, len(keys))
	for _, k := range keys {
		pubs = append(pubs, k)
	}
	q := `SELECT chain_id, pod, incarnation, started_at, head_seq FROM logbook_chains WHERE store = $1`
	args := []any{f.Store}
	q, args = andTime(q, args, "started_at <", f.Until)
	q, args = andTime(q, args, "updated_at >=", f.Since)
	rows, err := db.Query(ctx, q+" ORDER BY started_at, chain_id", args...)
	if err != nil {
		return nil, fmt.Errorf("verify: read chains: %w", err)
	}
	verdicts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChainVerdict, error) {
		var v ChainVerdict
		var head int64
		err := r.Scan(&v.ChainID, &v.Pod, &v.Incarnation, &v.Started, &head)
		v.HeadSeq = uint64(head)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("verify: read chains: %w", err)
	}
	for i := range verdicts {
		v := &verdicts[i]
		if len(pubs) == 0 {
			v.Result = auditlog.Result{BrokenSeq: 1, Reason: auditlog.ReasonBadSignature,
				Detail: "the logbook holds no public key of store " + f.Store}
			continue
		}
		if err := verifyOne(ctx, db, v, pubs, &f); err != nil {
			return nil, err
		}
	}
	return verdicts, nil
}

// verifyOne verifies one chain: its removal records, its genesis line when
// retention removed what follows it, the stored lines, that they reach the
// head, and that nothing of it was refused.
func verifyOne(ctx context.Context, db querier, v *ChainVerdict, pubs []ed25519.PublicKey, f *VerifyFilter) error {
	start, removed, err := removals(ctx, db, v.ChainID)
	var re *removalError
	if errors.As(err, &re) {
		v.Result = auditlog.Result{BrokenSeq: re.seq, Reason: re.reason, Detail: re.detail}
		return nil
	}
	if err != nil {
		return err
	}
	v.Removed = removed
	var res auditlog.Result
	if start != nil {
		res, err = verifyGenesis(ctx, db, v.ChainID)
	}
	if err == nil && (start == nil || res.OK) {
		res, err = verifyChain(ctx, db, v.ChainID, pubs, start, f)
	}
	if err != nil {
		return err
	}
	if res.OK && res.LastSeq != v.HeadSeq {
		res.OK, res.BrokenSeq, res.Reason = false, res.LastSeq+1, auditlog.ReasonTruncated
		res.Detail = fmt.Sprintf("the stored lines end at seq %d, but the logbook stored up to seq %d: lines were removed from the database", res.LastSeq, v.HeadSeq)
	}
	if res.OK {
		var seq int64
		var reason, detail string
		err := db.QueryRow(ctx, `SELECT seq, reason, detail FROM logbook_refusals WHERE chain_id = $1 ORDER BY id LIMIT 1`, v.ChainID).Scan(&seq, &reason, &detail)
		switch {
		case err == nil:
			res.OK, res.BrokenSeq, res.Reason = false, uint64(seq), auditlog.Reason(reason)
			res.Detail = "the logbook refused this line on receipt: " + detail
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("verify: read refusals: %w", err)
		}
	}
	v.Result = res
	return nil
}

// verifyChain streams the stored lines of a chain, in seq order, into the
// file verifier.
func verifyChain(ctx context.Context, db querier, chainID string, pubs []ed25519.PublicKey, start *auditlog.ChainPoint, f *VerifyFilter) (auditlog.Result, error) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		from := uint64(1)
		if start != nil {
			from = start.Seq
		}
		err := streamLines(ctx, db, chainID, from, pw)
		pw.CloseWithError(err)
		readErr <- err
	}()
	res, verr := auditlog.VerifyWithOptions(pr, auditlog.VerifyOptions{PublicKeys: pubs, AllowUnsignedTail: true, Start: start,
		MaxUnsignedAge: f.MaxUnsignedAge, Now: f.Now})
	pr.CloseWithError(io.ErrClosedPipe) // stop the reader when the verifier stopped early
	cancel()
	rerr := <-readErr
	if rerr != nil && !errors.Is(rerr, io.ErrClosedPipe) && !errors.Is(rerr, context.Canceled) {
		return res, fmt.Errorf("verify: read lines of chain %s: %w", short(chainID), rerr)
	}
	if verr != nil {
		return res, fmt.Errorf("verify chain %s: %w", short(chainID), verr)
	}
	return res, nil
}

func streamLines(ctx context.Context, db querier, chainID string, from uint64, w io.Writer) error {
	rows, err := db.Query(ctx, "SELECT line FROM logbook_records WHERE chain_id = $1 AND seq >= $2 ORDER BY seq", chainID, int64(from))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if _, err := w.Write(rows.RawValues()[0]); err != nil {
			return err
		}
		if _, err := w.Write(newline); err != nil {
			return err
		}
	}
	return rows.Err()
}

var newline = []byte{'\n'}

// verifyGenesis checks the genesis line of a chain whose next lines were
// removed by retention: it must be stored and its hash must be the chain id.
func verifyGenesis(ctx context.Context, db querier, chainID string) (auditlog.Result, error) {
	var line string
	err := db.QueryRow(ctx, "SELECT line FROM logbook_records WHERE chain_id = $1 AND seq = 1", chainID).Scan(&line)
	if errors.Is(err, pgx.ErrNoRows) {
		return auditlog.Result{BrokenSeq: 1, Reason: auditlog.ReasonDeleted, Detail: "the genesis line (seq 1) is missing; retention keeps it"}, nil
	}
	if err != nil {
		return auditlog.Result{}, fmt.Errorf("verify: read the genesis line: %w", err)
	}
	rec, err := auditlog.ParseRecord([]byte(line))
	if err != nil || rec.Type != auditlog.TypeGenesis || rec.Hash != chainID {
		return auditlog.Result{BrokenSeq: 1, Reason: auditlog.ReasonEdited, Detail: "the stored genesis line is not the one whose hash is the chain id"}, nil
	}
	return auditlog.Result{OK: true}, nil
}
