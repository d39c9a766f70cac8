package logbook

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// DefaultRetention is how long the logbook keeps the audit trail: 20 years,
// the retention of the youth-care dossier (Jeugdwet art. 7.3.8) and of the
// medical record (WGBO, BW art. 7:454), because the trail of who accessed a
// dossier must be answerable as long as the dossier exists (NEN 7513 asks
// that logging is kept at least as long as the record it concerns). Set a
// shorter period only where the store's own retention is shorter.
const DefaultRetention v1alpha1.Period = "P20Y"

// DefaultRetentionBatch is how many lines one removal transaction removes.
const DefaultRetentionBatch = 5000

// removalDomain starts the message a removal record's signature covers.
const removalDomain = "dossierguard-logbook-removal-v1\n"

// RetentionConfig configures RemoveExpired.
type RetentionConfig struct {
	// Period is how long lines are kept; "" means DefaultRetention.
	Period v1alpha1.Period
	// SigningKey signs the removal records. Required.
	SigningKey ed25519.PrivateKey
	// BatchSize is the most lines removed per transaction; 0 means
	// DefaultRetentionBatch.
	BatchSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Removal is a signed record of lines removed from a chain.
type Removal struct {
	ChainID  string
	FromSeq  uint64
	ToSeq    uint64
	Count    uint64
	LastHash string // the hash of the line at ToSeq
	Cutoff   time.Time
	Removed  time.Time
	KeyID    string
	Sig      string
}

// message is what the signature of a removal record covers.
func (r *Removal) message() []byte {
	m := []byte(removalDomain)
	for _, s := range []string{r.ChainID, strconv.FormatUint(r.FromSeq, 10), strconv.FormatUint(r.ToSeq, 10),
		strconv.FormatUint(r.Count, 10), r.LastHash, r.Cutoff.UTC().Format(auditlog.TimeLayout),
		r.Removed.UTC().Format(auditlog.TimeLayout), r.KeyID} {
		m = append(m, s...)
		m = append(m, '\n')
	}
	return m
}

// RetentionReport is the outcome of RemoveExpired.
type RetentionReport struct {
	Cutoff   time.Time
	Chains   int // chains with lines removed
	Removed  uint64
	Removals []Removal
}

// RemoveExpired removes the lines whose retention has passed, in batches,
// each in a transaction with its signed removal record. Lines are removed
// per chain up to its last checkpoint older than the cutoff, which is kept
// with the genesis line: the rest of the chain stays verifiable from the
// removal record and that checkpoint (see VerifyChains). Lines after that
// checkpoint wait for the next one to pass the cutoff. A run stopped midway
// leaves whole batches removed, each with its record.
func RemoveExpired(ctx context.Context, db interface {
	querier
	Begin(ctx context.Context) (pgx.Tx, error)
}, cfg RetentionConfig) (RetentionReport, error) {
	var rep RetentionReport
	if len(cfg.SigningKey) != ed25519.PrivateKeySize {
		return rep, errors.New("retention: an Ed25519 signing key for the removal records is required")
	}
	period := cfg.Period
	if period == "" {
		period = DefaultRetention
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = DefaultRetentionBatch
	}
	start := now()
	cutoff, err := period.SubtractFrom(start)
	if err != nil {
		return rep, fmt.Errorf("retention period: %w", err)
	}
	// PostgreSQL keeps microseconds; sign what it keeps.
	cutoff = cutoff.Truncate(time.Microsecond)
	rep.Cutoff = cutoff
	pub := cfg.SigningKey.Public().(ed25519.PublicKey)
	keyID := auditlog.KeyID(pub)
	pemKey, _ := auditlog.EncodePublicKeyPEM(pub)
	if _, err := db.Exec(ctx, "INSERT INTO logbook_signers (key_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING", keyID, string(pemKey)); err != nil {
		return rep, fmt.Errorf("retention: record the signing key: %w", err)
	}

	// Per chain: the last checkpoint older than the cutoff, and where the
	// removed part ends so far.
	rows, err := db.Query(ctx, `SELECT c.chain_id, max(r.seq),
			coalesce((SELECT max(to_seq) FROM logbook_removals m WHERE m.chain_id = c.chain_id), 1)
		FROM logbook_chains c JOIN logbook_records r ON r.chain_id = c.chain_id
		WHERE r.type = 'checkpoint' AND r.time < $1
		GROUP BY c.chain_id ORDER BY c.chain_id`, cutoff)
	if err != nil {
		return rep, fmt.Errorf("retention: find expired lines: %w", err)
	}
	type todo struct {
		chain       string
		cp, removed int64
	}
	chains, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (todo, error) {
		var t todo
		return t, r.Scan(&t.chain, &t.cp, &t.removed)
	})
	if err != nil {
		return rep, fmt.Errorf("retention: find expired lines: %w", err)
	}
	for _, c := range chains {
		from, last := c.removed+1, c.cp-1 // keep the checkpoint
		if from > last {
			continue
		}
		rep.Chains++
		for a := from; a <= last; a += int64(batch) {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			b := min(a+int64(batch)-1, last)
			rm := Removal{ChainID: c.chain, FromSeq: uint64(a), ToSeq: uint64(b), Count: uint64(b - a + 1),
				Cutoff: cutoff, Removed: now().Truncate(time.Microsecond), KeyID: keyID}
			err := removeBatch(ctx, db, &rm, cfg.SigningKey)
			if err != nil {
				return rep, fmt.Errorf("retention: %w", err)
			}
			rep.Removed += rm.Count
			rep.Removals = append(rep.Removals, rm)
		}
	}
	return rep, nil
}

// removeBatch removes the lines of rm in one transaction with its signed
// record.
func removeBatch(ctx context.Context, db interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}, rm *Removal, key ed25519.PrivateKey) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		a, b := int64(rm.FromSeq), int64(rm.ToSeq)
		if err := tx.QueryRow(ctx, "SELECT hash FROM logbook_records WHERE chain_id = $1 AND seq = $2", rm.ChainID, b).Scan(&rm.LastHash); err != nil {
			return fmt.Errorf("read the last line of the batch: %w", err)
		}
		tag, err := tx.Exec(ctx, "DELETE FROM logbook_records WHERE chain_id = $1 AND seq BETWEEN $2 AND $3", rm.ChainID, a, b)
		if err != nil {
			return fmt.Errorf("remove lines: %w", err)
		}
		if uint64(tag.RowsAffected()) != rm.Count {
			return fmt.Errorf("chain %s: %d lines in seq %d to %d, want %d: the chain has a hole; verify it", short(rm.ChainID), tag.RowsAffected(), a, b, rm.Count)
		}
		rm.Sig = hex.EncodeToString(ed25519.Sign(key, rm.message()))
		_, err = tx.Exec(ctx, `INSERT INTO logbook_removals (chain_id, from_seq, to_seq, count, last_hash, cutoff, removed_at, key_id, sig)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, rm.ChainID, a, b, int64(rm.Count), rm.LastHash, rm.Cutoff, rm.Removed, rm.KeyID, rm.Sig)
		return err
	})
}

// removals reads the removal records of a chain and checks them: signed by
// a key in logbook_signers, contiguous from seq 2. It returns where the
// stored lines after them start, or nil when nothing was removed.
func removals(ctx context.Context, db querier, chainID string) (*auditlog.ChainPoint, uint64, error) {
	rows, err := db.Query(ctx, `SELECT m.from_seq, m.to_seq, m.count, m.last_hash, m.cutoff, m.removed_at, m.key_id, m.sig, coalesce(s.public_key, '')
		FROM logbook_removals m LEFT JOIN logbook_signers s USING (key_id) WHERE m.chain_id = $1 ORDER BY m.from_seq`, chainID)
	if err != nil {
		return nil, 0, fmt.Errorf("verify: read removals: %w", err)
	}
	type row struct {
		Removal
		pem string
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var f, t, n int64
		err := r.Scan(&f, &t, &n, &x.LastHash, &x.Cutoff, &x.Removed, &x.KeyID, &x.Sig, &x.pem)
		x.ChainID, x.FromSeq, x.ToSeq, x.Count = chainID, uint64(f), uint64(t), uint64(n)
		return x, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("verify: read removals: %w", err)
	}
	if len(list) == 0 {
		return nil, 0, nil
	}
	next, total := uint64(2), uint64(0)
	var last string
	for _, x := range list {
		if x.FromSeq != next || x.Count != x.ToSeq-x.FromSeq+1 {
			return nil, 0, &removalError{x.FromSeq, auditlog.ReasonDeleted, fmt.Sprintf("the removal records are not contiguous from seq 2: one starts at seq %d where seq %d was expected", x.FromSeq, next)}
		}
		pub, err := auditlog.DecodePublicKeyPEM([]byte(x.pem))
		sig, _ := hex.DecodeString(x.Sig)
		if x.pem == "" || err != nil || !ed25519.Verify(pub, x.message(), sig) {
			return nil, 0, &removalError{x.FromSeq, auditlog.ReasonBadSignature, fmt.Sprintf("the removal record of seq %d to %d is not signed by a logbook key (key %s)", x.FromSeq, x.ToSeq, x.KeyID)}
		}
		next, last, total = x.ToSeq+1, x.LastHash, total+x.Count
	}
	return &auditlog.ChainPoint{Seq: next, Prev: last}, total, nil
}

// removalError is a removal record that does not verify.
type removalError struct {
	seq    uint64
	reason auditlog.Reason
	detail string
}

func (e *removalError) Error() string { return e.detail }
