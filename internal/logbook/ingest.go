package logbook

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// Reason says why the logbook refused a line.
type Reason string

// The reasons of a refusal.
const (
	// ReasonGap: the line's seq is beyond the chain's head + 1 (lines are
	// missing), or the first line of an unknown chain is not its genesis.
	ReasonGap Reason = "gap"
	// ReasonFork: a different line with the seq of a stored one.
	ReasonFork Reason = "fork"
	// ReasonSubstitution: the line has the next seq but does not follow
	// the chain's head (its prev is another hash), or it claims a chain of
	// another store or was sent by another (authenticated) pod than the
	// chain's.
	ReasonSubstitution Reason = "substitution"
	// ReasonBadSignature: a checkpoint whose signature does not verify with
	// the store's keys.
	ReasonBadSignature Reason = "bad-signature"
	// ReasonEdited: the line does not match its hash.
	ReasonEdited Reason = "edited"
	// ReasonMalformed: not a line of the format, or a span whose attributes
	// disagree with its line.
	ReasonMalformed Reason = "malformed"
	// ReasonAfterBreak: the line follows a refused line of the same request.
	ReasonAfterBreak Reason = "after-break"
)

// Refusal is one refused line.
type Refusal struct {
	ChainID string
	Seq     uint64
	Reason  Reason
	Detail  string
}

func (r Refusal) String() string {
	return fmt.Sprintf("chain %s seq %d: %s: %s", short(r.ChainID), r.Seq, r.Reason, r.Detail)
}

// IngestResult is the outcome of one export request.
type IngestResult struct {
	// Stored lines were new and are now durable.
	Stored int
	// Duplicates were stored before (redelivery) and are acknowledged.
	Duplicates int
	// Refused lines are not stored; the first of each chain is recorded in
	// logbook_refusals.
	Refused []Refusal
}

// Config configures a Logbook.
type Config struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Logbook receives, verifies and stores the chains of the audit proxies.
type Logbook struct {
	db  *pgxpool.Pool
	now func() time.Time
	// senders, when set, authenticates the sender of every export request.
	senders SenderAuthenticator

	keysMu sync.Mutex
	keys   map[string]map[string]ed25519.PublicKey // store -> key id -> key
}

// New returns a logbook on db, whose search_path must lead to a schema
// migrated by Migrate; New checks its version.
func New(ctx context.Context, db *pgxpool.Pool, cfg Config) (*Logbook, error) {
	if err := checkSchema(ctx, db); err != nil {
		return nil, err
	}
	l := &Logbook{db: db, now: cfg.Now, keys: map[string]map[string]ed25519.PublicKey{}}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// TrustKey adds a checkpoint public key of a store. Keys are kept for good:
// the chains of a store can be verified after its Secrets are gone.
func (l *Logbook) TrustKey(ctx context.Context, store string, pub ed25519.PublicKey) error {
	pemKey, err := auditlog.EncodePublicKeyPEM(pub)
	if err != nil {
		return err
	}
	_, err = l.db.Exec(ctx, `INSERT INTO logbook_keys (store, key_id, public_key) VALUES ($1, $2, $3)
		ON CONFLICT (store, key_id) DO NOTHING`, store, auditlog.KeyID(pub), string(pemKey))
	if err != nil {
		return fmt.Errorf("store public key: %w", err)
	}
	l.keysMu.Lock()
	delete(l.keys, store)
	l.keysMu.Unlock()
	return nil
}

// storeKeys returns the public keys of a store, from the cache or the table.
func (l *Logbook) storeKeys(ctx context.Context, q querier, store string) (map[string]ed25519.PublicKey, error) {
	l.keysMu.Lock()
	keys, ok := l.keys[store]
	l.keysMu.Unlock()
	if ok {
		return keys, nil
	}
	keys, err := loadKeys(ctx, q, store)
	if err != nil {
		return nil, err
	}
	l.keysMu.Lock()
	l.keys[store] = keys
	l.keysMu.Unlock()
	return keys, nil
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func loadKeys(ctx context.Context, q querier, store string) (map[string]ed25519.PublicKey, error) {
	rows, err := q.Query(ctx, "SELECT public_key FROM logbook_keys WHERE store = $1", store)
	if err != nil {
		return nil, fmt.Errorf("read public keys: %w", err)
	}
	pems, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read public keys: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(pems))
	for _, p := range pems {
		pub, err := auditlog.DecodePublicKeyPEM([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("a public key of store %s in logbook_keys: %w", store, err)
		}
		keys[auditlog.KeyID(pub)] = pub
	}
	return keys, nil
}

// incoming is one span of a request, decoded.
type incoming struct {
	rec   *auditlog.Record
	store string
	pod   string // the authenticated pod the request was sent as; "" unchecked
	err   error  // a *auditlog.RecordError
}

// Ingest checks and stores the lines an export request carries. Lines are
// grouped by chain, in the order of the request; each chain is handled in
// one transaction that locks its head, so a line is stored only when it
// continues what is stored. The error is for a failure of the database: then
// nothing of the chains not yet committed is acknowledged and the sender
// must retry. Refused lines are in the result, not an error.
func (l *Logbook) Ingest(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (IngestResult, error) {
	return l.ingest(ctx, req, false)
}

// ingest is Ingest; with bySender, the request's pod was authenticated
// and every chain must be that pod's (its genesis line names it).
func (l *Logbook) ingest(ctx context.Context, req *coltracepb.ExportTraceServiceRequest, bySender bool) (IngestResult, error) {
	var res IngestResult
	var order []string
	chains := map[string][]incoming{}
	for _, rs := range req.GetResourceSpans() {
		store, _ := auditlog.Attr(rs.GetResource().GetAttributes(), auditlog.AttrStore)
		pod := ""
		if bySender {
			pod, _ = auditlog.Attr(rs.GetResource().GetAttributes(), auditlog.AttrPod)
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				rec, chainID, err := auditlog.RecordOfSpan(sp)
				if _, seen := chains[chainID]; !seen {
					order = append(order, chainID)
				}
				chains[chainID] = append(chains[chainID], incoming{rec: rec, store: store, pod: pod, err: err})
			}
		}
	}
	for _, id := range order {
		stored, dups, refused, err := l.ingestChain(ctx, id, chains[id])
		if err != nil {
			return res, err
		}
		res.Stored += stored
		res.Duplicates += dups
		res.Refused = append(res.Refused, refused...)
	}
	return res, nil
}

// head is the last stored line of a chain.
type head struct {
	store   string
	pod     string
	seq     uint64
	hash    string
	typ     string
	cpSeq   uint64
	cpTime  *time.Time
	known   bool // the chain has a row
	changed bool
}

// ingestChain stores the lines of one chain in one transaction. It stops at
// the first line that does not continue the chain, records that refusal and
// refuses the rest of the chain's lines in this request.
func (l *Logbook) ingestChain(ctx context.Context, chainID string, in []incoming) (stored, dups int, refused []Refusal, err error) {
	err = pgx.BeginFunc(ctx, l.db, func(tx pgx.Tx) error {
		stored, dups, refused = 0, 0, nil
		h, err := readHead(ctx, tx, chainID)
		if err != nil {
			return err
		}
		storedHash, err := storedHashes(ctx, tx, chainID, &h, in)
		if err != nil {
			return err
		}

		var batch []*auditlog.Record
		var store string
		for i, x := range in {
			ref, err := l.check(ctx, tx, chainID, &h, storedHash, x)
			if err != nil {
				return err
			}
			if ref != nil {
				refused = append(refused, *ref)
				for _, y := range in[i+1:] {
					refused = append(refused, Refusal{ChainID: chainID, Seq: seqOf(y), Reason: ReasonAfterBreak,
						Detail: fmt.Sprintf("follows the refused seq %d", ref.Seq)})
				}
				if err := l.recordRefusal(ctx, tx, *ref, x); err != nil {
					return err
				}
				break
			}
			if x.rec.Seq <= h.seq {
				dups++
				continue
			}
			// x continues the chain.
			if x.rec.Type == auditlog.TypeGenesis {
				store = x.rec.Chain.Store
				h.store, h.pod = store, x.rec.Chain.Pod
			}
			batch = append(batch, x.rec)
			storedHash[x.rec.Seq] = x.rec.Hash
			h.seq, h.hash, h.typ, h.changed = x.rec.Seq, x.rec.Hash, x.rec.Type, true
			if x.rec.Type == auditlog.TypeCheckpoint {
				t := x.rec.Time
				h.cpSeq, h.cpTime = x.rec.Seq, &t
			}
		}
		if len(batch) == 0 {
			return nil
		}
		if err := l.store(ctx, tx, chainID, &h, batch); err != nil {
			return err
		}
		stored = len(batch)
		return nil
	})
	return stored, dups, refused, err
}

// readHead reads and locks the head of a chain; an unknown chain has the
// genesis value as its head hash.
func readHead(ctx context.Context, tx pgx.Tx, chainID string) (head, error) {
	h := head{hash: auditlog.Genesis}
	if chainID == "" {
		return h, nil
	}
	var hs, cs int64
	err := tx.QueryRow(ctx, `SELECT store, pod, head_seq, head_hash, head_type, checkpoint_seq, checkpoint_at
		FROM logbook_chains WHERE chain_id = $1 FOR UPDATE`, chainID).Scan(&h.store, &h.pod, &hs, &h.hash, &h.typ, &cs, &h.cpTime)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		h.hash = auditlog.Genesis
		return h, nil
	case err != nil:
		return h, fmt.Errorf("read chain head: %w", err)
	}
	h.known, h.seq, h.cpSeq = true, uint64(hs), uint64(cs)
	return h, nil
}

// storedHashes reads the hashes of the stored lines that the request
// carries again.
func storedHashes(ctx context.Context, tx pgx.Tx, chainID string, h *head, in []incoming) (map[uint64]string, error) {
	var again []int64
	for _, x := range in {
		if x.rec != nil && h.known && x.rec.Seq <= h.seq {
			again = append(again, int64(x.rec.Seq))
		}
	}
	m := map[uint64]string{}
	if len(again) == 0 {
		return m, nil
	}
	rows, err := tx.Query(ctx, "SELECT seq, hash FROM logbook_records WHERE chain_id = $1 AND seq = ANY($2)", chainID, again)
	if err != nil {
		return nil, fmt.Errorf("read stored lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		var hash string
		if err := rows.Scan(&s, &hash); err != nil {
			return nil, fmt.Errorf("read stored lines: %w", err)
		}
		m[uint64(s)] = hash
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stored lines: %w", err)
	}
	return m, nil
}

func seqOf(x incoming) uint64 {
	if x.rec != nil {
		return x.rec.Seq
	}
	return 0
}

// originMismatch says how x was sent for another store, or by another
// authenticated pod, than its chain's; "" when it was not.
func originMismatch(h *head, x incoming) string {
	r := x.rec
	switch {
	case h.store != "" && x.store != h.store:
		return fmt.Sprintf("the chain belongs to store %s, but the line was sent for store %s", h.store, x.store)
	case r.Type == auditlog.TypeGenesis && x.store != r.Chain.Store:
		return fmt.Sprintf("the genesis line names store %s, but it was sent for store %s", r.Chain.Store, x.store)
	case x.pod != "" && h.pod != "" && x.pod != h.pod:
		return fmt.Sprintf("the chain belongs to pod %s, but the line was sent as pod %s", h.pod, x.pod)
	case x.pod != "" && r.Type == auditlog.TypeGenesis && x.pod != r.Chain.Pod:
		return fmt.Sprintf("the genesis line names pod %s, but it was sent as pod %s", r.Chain.Pod, x.pod)
	}
	return ""
}

// check decides whether x continues the chain at h, is a harmless
// redelivery of a stored line, or is refused.
func (l *Logbook) check(ctx context.Context, tx pgx.Tx, chainID string, h *head, storedHash map[uint64]string, x incoming) (*Refusal, error) {
	ref := func(seq uint64, r Reason, format string, args ...any) (*Refusal, error) {
		return &Refusal{ChainID: chainID, Seq: seq, Reason: r, Detail: fmt.Sprintf(format, args...)}, nil
	}
	if x.err != nil {
		return undecodable(chainID, x.err), nil
	}
	r := x.rec
	if detail := originMismatch(h, x); detail != "" {
		return ref(r.Seq, ReasonSubstitution, "%s", detail)
	}
	switch {
	case r.Seq <= h.seq:
		// A line at or below the head was stored before (or earlier in this
		// request). The same line again is a redelivery; another is a fork.
		// A line no longer stored was removed by retention and is
		// acknowledged again without being stored.
		if stored, ok := storedHash[r.Seq]; ok && stored != r.Hash {
			return ref(r.Seq, ReasonFork, "a different line with seq %d (hash %s) is stored; this one has hash %s", r.Seq, short(stored), short(r.Hash))
		}
		return nil, nil
	case r.Seq > h.seq+1:
		if h.seq == 0 {
			return ref(r.Seq, ReasonGap, "the logbook has no line of this chain; its first line must be its genesis line (seq 1)")
		}
		return ref(r.Seq, ReasonGap, "seq %d to %d are missing: the chain's head is seq %d", h.seq+1, r.Seq-1, h.seq)
	case !r.Follows(h.seq, h.hash):
		return ref(r.Seq, ReasonSubstitution, "seq %d does not follow the stored seq %d: its prev is %s, the head's hash is %s", r.Seq, h.seq, short(r.Prev), short(h.hash))
	case r.Type == auditlog.TypeCheckpoint:
		return l.checkSignature(ctx, tx, chainID, h.store, r)
	}
	return nil, nil
}

// checkSignature verifies a checkpoint with the keys of the chain's store.
// A failure to read the keys is an error (the sender retries), not a
// refusal.
func (l *Logbook) checkSignature(ctx context.Context, tx pgx.Tx, chainID, store string, r *auditlog.Record) (*Refusal, error) {
	keys, err := l.storeKeys(ctx, tx, store)
	if err != nil {
		return nil, err
	}
	if err := r.VerifySignature(keys); err != nil {
		return &Refusal{ChainID: chainID, Seq: r.Seq, Reason: ReasonBadSignature, Detail: err.Error()}, nil
	}
	return nil, nil
}

// undecodable is the refusal of a span whose line could not be decoded.
func undecodable(chainID string, err error) *Refusal {
	var re *auditlog.RecordError
	if errors.As(err, &re) && re.Reason == auditlog.ReasonEdited {
		return &Refusal{ChainID: chainID, Reason: ReasonEdited, Detail: re.Detail}
	}
	return &Refusal{ChainID: chainID, Reason: ReasonMalformed, Detail: err.Error()}
}

// recordRefusal keeps a refused line for the auditor, never as a record.
func (l *Logbook) recordRefusal(ctx context.Context, tx pgx.Tx, r Refusal, x incoming) error {
	var hash, line string
	if x.rec != nil {
		hash, line = x.rec.Hash, string(x.rec.Line)
	}
	_, err := tx.Exec(ctx, `INSERT INTO logbook_refusals (chain_id, store, seq, reason, detail, hash, line)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.ChainID, x.store, int64(r.Seq), string(r.Reason), r.Detail, hash, line)
	if err != nil {
		return fmt.Errorf("record refusal: %w", err)
	}
	return nil
}

// store inserts the lines of batch, which continue the chain, and moves its
// head.
func (l *Logbook) store(ctx context.Context, tx pgx.Tx, chainID string, h *head, batch []*auditlog.Record) error {
	if !h.known {
		g := batch[0].Chain // check made sure the first line is the genesis
		if _, err := tx.Exec(ctx, `INSERT INTO logbook_chains (chain_id, store, pod, incarnation, started_at, head_seq, head_hash, head_type)
			VALUES ($1, $2, $3, $4, $5, 1, $1, 'genesis')`, chainID, g.Store, g.Pod, g.Incarnation, g.Started); err != nil {
			return fmt.Errorf("insert chain: %w", err)
		}
	}
	n := len(batch)
	seqs, types, hashes, prevs := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	times, subjects, lines := make([]time.Time, n), make([]*string, n), make([]string, n)
	for i, r := range batch {
		seqs[i], types[i], hashes[i], prevs[i], times[i], lines[i] = int64(r.Seq), r.Type, r.Hash, r.Prev, r.Time, string(r.Line)
		if r.Event != nil && r.Event.DataSubject != "" {
			s := r.Event.DataSubject
			subjects[i] = &s
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO logbook_records (chain_id, seq, type, hash, prev, time, store, data_subject_id, line)
		SELECT $1, s, t, h, p, tm, $2, d, ln
		FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[]) AS u(s, t, h, p, tm, d, ln)`,
		chainID, h.store, seqs, types, hashes, prevs, times, subjects, lines); err != nil {
		return fmt.Errorf("insert lines: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE logbook_chains SET head_seq = $2, head_hash = $3, head_type = $4,
		checkpoint_seq = $5, checkpoint_at = $6, updated_at = now() WHERE chain_id = $1`,
		chainID, int64(h.seq), h.hash, h.typ, int64(h.cpSeq), h.cpTime); err != nil {
		return fmt.Errorf("move chain head: %w", err)
	}
	return nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "..."
	}
	return h
}
