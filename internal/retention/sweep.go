package retention

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// DB is what the sweeper needs of a database: transactions. Both
// *pgxpool.Pool and *pgx.Conn implement it. The sweeper runs one
// transaction at a time.
type DB interface {
	BeginTx(ctx context.Context, txOptions pgx.TxOptions) (pgx.Tx, error)
}

// Run sweeps the database with cfg and returns the report.
//
// The error is nil unless the result is Failed: an invalid config, or a
// rule whose batch or count failed (the other rules are still swept). It may
// wrap driver errors; the report never holds them. A cancelled ctx or an
// exceeded MaxRunTime ends the sweep after the current batch, with the
// result Interrupted and a nil error; the held and overdue counts not taken
// by then stay Unknown, so that the report is out fast.
func Run(ctx context.Context, db DB, cfg Config) (Report, error) {
	start := time.Now()
	rep := Report{Start: start.UTC(), DryRun: cfg.DryRun}
	cfg, err := cfg.withDefaults()
	if err != nil {
		rep.End = time.Now().UTC()
		rep.Result = v1alpha1.RunFailed
		rep.Message = "invalid configuration"
		return rep, fmt.Errorf("invalid retention config: %w", err)
	}
	now := cfg.Now()
	rep.AsOf = now.UTC()
	rep.BatchSize = cfg.BatchSize

	s := sweep{db: db, cfg: cfg, start: start, now: now, report: &rep}
	kept, err := readKept(ctx, cfg, &s)
	if err != nil {
		// Fail closed: without the decisions to keep, nothing is destroyed.
		for _, rule := range cfg.Rules {
			rep.Rules = append(rep.Rules, RuleReport{Rule: rule.Name, Table: string(rule.Table), Action: action(rule), Period: rule.Period,
				Cutoff: Cutoff(now, rule.Period).UTC(), Held: Unknown, Overdue: Unknown, NoClock: Unknown, KeptByExtension: Unknown, RecordHashes: []string{}})
		}
		rep.End = time.Now().UTC()
		rep.Result = v1alpha1.RunFailed
		rep.Message = "the granted retention extensions could not be read; nothing was destroyed"
		return rep, fmt.Errorf("read the retention extension decisions: %w", err)
	}
	rep.ExtensionsInEffect = kept.Decisions
	var errs []error
	for i, rule := range cfg.Rules {
		rr := RuleReport{
			Rule:         rule.Name,
			Table:        string(rule.Table),
			Action:       action(rule),
			Period:       rule.Period,
			Cutoff:       Cutoff(now, rule.Period).UTC(),
			Held:         Unknown,
			Overdue:      Unknown,
			NoClock:      Unknown,
			RecordHashes: []string{},
		}
		rr.KeptByExtension = Unknown
		if err := s.rule(ctx, i, rule, kept, &rr); err != nil {
			errs = append(errs, fmt.Errorf("rule %q (rules[%d]): %w", rule.Name, i, err))
		}
		rep.Rules = append(rep.Rules, rr)
	}

	rep.End = time.Now().UTC()
	switch {
	case len(errs) > 0:
		rep.Result = v1alpha1.RunFailed
		rep.Message = fmt.Sprintf("%d of %d rules failed", len(errs), len(cfg.Rules))
		if s.stopped != "" {
			rep.Message += "; " + s.stopped
		}
	case s.stopped != "":
		rep.Result = v1alpha1.RunInterrupted
		rep.Message = s.stopped
	case cfg.DryRun:
		rep.Result = v1alpha1.RunDryRun
	default:
		rep.Result = v1alpha1.RunSucceeded
	}
	return rep, errors.Join(errs...)
}

// sweep is the state of one Run.
type sweep struct {
	db     DB
	cfg    Config
	start  time.Time
	now    time.Time
	report *Report
	// stopped says why no more batches (or counts) start; "" while they may.
	stopped string
}

// rule applies one rule: batches until nothing is due (unless a dry run),
// then the counts.
func (s *sweep) rule(ctx context.Context, index int, rule v1alpha1.RetentionRule, kept Kept, rr *RuleReport) error {
	q := newRuleSQL(rule)
	cutoff := Cutoff(s.now, rule.Period)
	if s.stop(ctx) {
		return nil
	}
	// The kept dossiers' ids first: a rule whose ids cannot be read
	// destroys nothing.
	var err error
	if q.kept, err = s.keptIDs(ctx, q, kept); err != nil {
		if ctx.Err() != nil {
			s.cancel()
			return nil
		}
		rr.Error = "kept dossiers lookup: " + describe(err)
		return fmt.Errorf("kept dossiers lookup: %w", err)
	}
	if !s.cfg.DryRun {
		if err := s.destroy(ctx, index, q, cutoff, rr); err != nil {
			return err
		}
	}
	// Once the sweep is cancelled or its time is up, counts are skipped too
	// (Unknown): the report must be out before the Job's deadline or the
	// kubelet's SIGKILL.
	if s.stop(ctx) {
		return nil
	}
	if err := s.count(ctx, q, cutoff, rr); err != nil {
		if ctx.Err() != nil {
			// Cancelled while counting: that is an interruption, not a
			// failure; the counts stay Unknown.
			s.cancel()
			return nil
		}
		rr.Error = "count: " + describe(err)
		return fmt.Errorf("count: %w", err)
	}
	if s.cfg.DryRun {
		if action(rule) == v1alpha1.ActionAnonymise {
			rr.WouldAnonymise = rr.Overdue
		} else {
			rr.WouldDestroy = rr.Overdue
		}
	}
	return nil
}

// destroy runs the batches of one rule. When they fail it says so in the
// report and counts what is left all the same, unless stopped.
func (s *sweep) destroy(ctx context.Context, index int, q ruleSQL, cutoff time.Time, rr *RuleReport) error {
	n, err := s.batches(ctx, index, q, cutoff, rr)
	var notDurable *notDurableError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notDurable):
		rr.Error = notDurable.describe(n)
	case n == 0:
		rr.Error = "table lookup: " + describe(err)
		return fmt.Errorf("table lookup: %w", err)
	default:
		rr.Error = fmt.Sprintf("batch %d: %s", n, describe(err))
		err = fmt.Errorf("batch %d: %w", n, err)
	}
	if !s.stop(ctx) {
		_ = s.count(ctx, q, cutoff, rr)
	}
	return err
}

// cancel records that the sweep was cancelled.
func (s *sweep) cancel() {
	if s.stopped == "" {
		s.stopped = "interrupted: the sweep was cancelled; every started batch was completed"
	}
}

// batches runs the batches of one rule, each over a range of keys, until
// the last key is passed, the sweep is cancelled or its time is up, and then
// makes their commits durable (see flush). On error it returns the number of
// the failed batch, 0 when the table lookup before the first failed; when
// the batches' commits could not be made durable, a *notDurableError, and
// the report keeps only the batches known durable.
func (s *sweep) batches(ctx context.Context, index int, q ruleSQL, cutoff time.Time, rr *RuleReport) (int, error) {
	if s.stop(ctx) {
		return 0, nil
	}
	byCtid, err := s.tableKind(ctx, q)
	if err != nil {
		if ctx.Err() != nil { // cancelled before the first batch
			s.cancel()
			return 0, nil
		}
		return 0, err
	}
	// The record hashes are computed while the next batch runs.
	texts := make(chan []string, 4)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for batch := range texts {
			for _, id := range batch {
				rr.RecordHashes = append(rr.RecordHashes, RecordHash(rr.Table, id))
			}
		}
	}()

	var w pending
	n, err := s.walk(ctx, index, q, cutoff, byCtid, rr, texts, &w)
	var lost error
	if w.batches > 0 {
		lost = s.flush(ctx)
	}
	close(texts)
	<-hashed
	if lost != nil {
		// Not known durable: a crash of the server may have undone them,
		// so the proof does not list them.
		rr.RecordHashes = rr.RecordHashes[:len(rr.RecordHashes)-w.records]
		rr.Batches -= w.batches
		if rr.Action == v1alpha1.ActionAnonymise {
			rr.Anonymised -= int64(w.records)
		} else {
			rr.Destroyed -= int64(w.records)
		}
		return n, &notDurableError{first: w.first, last: w.first + w.batches - 1, batchErr: err, err: lost}
	}
	return n, err
}

// pending are the batches committed since the last flush: not yet known
// durable.
type pending struct {
	first   int // the number of the first of them
	batches int
	records int
}

// notDurableError says that batches first to last committed but could not
// be made durable: their outcome is unknown, and the report leaves them out.
type notDurableError struct {
	first, last int
	batchErr    error // the failed batch's error, if a batch failed
	err         error // why the flush failed
}

func (e *notDurableError) Error() string {
	msg := fmt.Sprintf("batches %d to %d committed, but their commits could not be made durable (outcome unknown): %v", e.first, e.last, e.err)
	if e.batchErr != nil {
		msg = e.batchErr.Error() + "; " + msg
	}
	return msg
}

func (e *notDurableError) Unwrap() []error {
	if e.batchErr == nil {
		return []error{e.err}
	}
	return []error{e.batchErr, e.err}
}

// describe says what went wrong, as describe does for one error.
func (e *notDurableError) describe(n int) string {
	msg := fmt.Sprintf("batches %d to %d committed, but their commits could not be made durable (outcome unknown; left out of this report): %s",
		e.first, e.last, describe(e.err))
	if e.batchErr != nil {
		msg = fmt.Sprintf("batch %d: %s; %s", n, describe(e.batchErr), msg)
	}
	return msg
}

// walk runs the batches of one rule: see batches.
func (s *sweep) walk(ctx context.Context, index int, q ruleSQL, cutoff time.Time, byCtid bool, rr *RuleReport,
	texts chan<- []string, w *pending) (int, error) {
	var after any // the last key of the previous batch's range
	keys := s.cfg.BatchSize
	for n := 1; ; n++ {
		if n > 1 && s.stop(ctx) {
			return 0, nil
		}
		res, err := s.batch(ctx, index, n, q, cutoff, after, keys, byCtid)
		if err != nil {
			return n, err
		}
		s.report.BatchTime += res.took
		if res.took > s.report.LongestBatch {
			s.report.LongestBatch = res.took
		}
		if res.rolledBack { // more than BatchSize due: again, over fewer keys
			keys = rangeKeys(s.cfg.BatchSize, keys, len(res.texts))
			n--
			continue
		}
		if res.upper == nil { // no key after the previous range
			return 0, nil
		}
		rr.Batches++
		if w.batches == 0 {
			w.first = n
		}
		w.batches++
		w.records += len(res.texts)
		texts <- res.texts
		if rr.Action == v1alpha1.ActionAnonymise {
			rr.Anonymised += int64(len(res.texts))
		} else {
			rr.Destroyed += int64(len(res.texts))
		}
		if !res.full {
			return 0, nil
		}
		after = res.upper
		keys = rangeKeys(s.cfg.BatchSize, keys, len(res.texts))
	}
}

// flush makes the commits of the batches before it durable. A batch commits
// with synchronous_commit off: its COMMIT returns without waiting for the
// write-ahead log to reach the disk, so that the flush overlaps the next
// batch instead of stalling the sweep in every batch; its locks are released
// at COMMIT as before. flush then commits one transaction that writes a
// commit record (txid_current() assigns a transaction id), with the
// server's own synchronous_commit: its COMMIT returns once the log is
// durable up to its commit record (and replicated, when the server waits
// for standbys), so up to the commits of every batch before it. It runs on a
// context that ctx's cancellation does not reach, as a batch does: a
// cancelled sweep still confirms the batches it completed.
func (s *sweep) flush(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.BatchTimeout)
	defer cancel()
	tx, err := s.db.BeginTx(fctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(fctx) }() // a no-op after Commit
	var xid int64
	if err := tx.QueryRow(fctx, "SELECT txid_current()").Scan(&xid); err != nil {
		return err
	}
	if err := tx.Commit(fctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// maxRangeFactor bounds the keys one batch examines: at most this many
// times the batch size.
const maxRangeFactor = 8

// rangeKeys is the number of keys the next batch examines, after one that
// examined keys and changed changed records: as many as should hold about
// 90 % of batchSize due records at the density that batch found, at least
// batchSize (a range that cannot hold more than batchSize records) and at
// most maxRangeFactor times it, so that a batch stays short. With a quarter
// of the records due, a batch examines about 3.6 times batchSize keys and
// commits about 0.9 times batchSize records, instead of a quarter of it.
func rangeKeys(batchSize, keys, changed int) int {
	most := batchSize * maxRangeFactor
	if changed == 0 {
		return min(keys*4, most)
	}
	return max(batchSize, min(keys*batchSize*9/(changed*10), most))
}

// stop says whether no more batches may start: the sweep was cancelled or
// its time is up.
func (s *sweep) stop(ctx context.Context) bool {
	switch {
	case s.stopped != "":
	case ctx.Err() != nil:
		s.cancel()
	case s.cfg.MaxRunTime > 0 && time.Since(s.start) >= s.cfg.MaxRunTime:
		s.stopped = fmt.Sprintf("interrupted: maxRunTime %s exceeded; every started batch was completed", s.cfg.MaxRunTime)
	}
	return s.stopped != ""
}

// tableKind says whether a locking batch may find its rows by ctid.
func (s *sweep) tableKind(ctx context.Context, q ruleSQL) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.BatchTimeout)
	defer cancel()
	tx, err := s.db.BeginTx(cctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(cctx) }()
	st := q.tableKind()
	var byCtid bool
	if err := tx.QueryRow(cctx, st.sql, st.args...).Scan(&byCtid); err != nil {
		return false, err
	}
	return byCtid, tx.Commit(cctx)
}

// batchResult is what one batch did.
type batchResult struct {
	texts []string // the changed keys, as text, in the order changed
	full  bool     // the range held all the keys asked for: more may follow
	upper any      // the range's last key; nil when the range was empty
	// rolledBack says that the batch would have changed more than
	// BatchSize records and was rolled back: it changed nothing.
	rolledBack bool
	took       time.Duration
}

// batch runs one batch over the next keys keys after after: first without
// row locks, waiting at most lockWait for a row that another transaction
// holds locked; when that wait runs out, again with FOR UPDATE SKIP LOCKED,
// which skips such rows (see ruleSQL.batch). A batch over more than
// BatchSize keys that would change more than BatchSize records is rolled
// back (one over BatchSize keys cannot, unless records share a key).
func (s *sweep) batch(ctx context.Context, index, n int, q ruleSQL, cutoff time.Time, after any, keys int, byCtid bool) (batchResult, error) {
	most := 0
	if keys > s.cfg.BatchSize {
		most = s.cfg.BatchSize
	}
	res, err := s.batchTx(ctx, index, n, q.batch(cutoff, s.now, keys, after, byCtid, false), s.cfg.lockWait, most)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateLockNotAvailable {
		took := res.took
		res, err = s.batchTx(ctx, index, n, q.batch(cutoff, s.now, keys, after, byCtid, true), 0, most)
		res.took += took
	}
	return res, err
}

// sqlstateLockNotAvailable is PostgreSQL's lock_not_available, the error of
// an exceeded lock_timeout.
const sqlstateLockNotAvailable = "55P03"

// batchTx runs one batch statement in one transaction and returns what it
// changed and how long the transaction was open. A lockWait above zero
// bounds the statement's wait for row locks (lock_timeout). When most is
// above zero and the statement changed more records, it rolls back. It runs
// on a context that ctx's cancellation does not reach, bounded by
// BatchTimeout, so that a started batch is always completed or rolled back
// as a whole.
func (s *sweep) batchTx(ctx context.Context, index, n int, st statement, lockWait time.Duration, most int) (res batchResult, err error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.BatchTimeout)
	defer cancel()
	began := time.Now()
	defer func() { res.took = time.Since(began) }()
	// In the same round trip as BEGIN: the commit does not wait for the
	// log's flush (see flush) and, with a lockWait, the statement waits at
	// most lockWait for a row lock; the value is a number of milliseconds,
	// never outside input.
	opts := pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit = off"}
	if lockWait > 0 {
		opts.BeginQuery += "; SET LOCAL lock_timeout = '" + strconv.FormatInt(max(lockWait.Milliseconds(), 1), 10) + "ms'"
	}
	tx, err := s.db.BeginTx(bctx, opts)
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(bctx) }() // a no-op after Commit
	if err := tx.QueryRow(bctx, st.sql, st.args...).Scan(&res.full, &res.upper, &res.texts); err != nil {
		return res, err
	}
	if s.cfg.batchDelay > 0 {
		time.Sleep(s.cfg.batchDelay)
	}
	if s.cfg.afterBatch != nil {
		s.cfg.afterBatch(index, n)
	}
	if most > 0 && len(res.texts) > most {
		res.rolledBack = true
		if err := tx.Rollback(bctx); err != nil {
			return res, fmt.Errorf("rollback: %w", err)
		}
		return res, nil
	}
	if err := tx.Commit(bctx); err != nil {
		return res, fmt.Errorf("commit (outcome unknown): %w", err)
	}
	return res, nil
}

// count takes the held, overdue and no-clock counts of a rule in one
// read-only statement.
func (s *sweep) count(ctx context.Context, q ruleSQL, cutoff time.Time, rr *RuleReport) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.BatchTimeout)
	defer cancel()
	tx, err := s.db.BeginTx(cctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(cctx) }()
	st := q.count(cutoff, s.now)
	var byClock, due, keptByExtension, noClock int64
	if err := tx.QueryRow(cctx, st.sql, st.args...).Scan(&byClock, &due, &keptByExtension, &noClock); err != nil {
		return err
	}
	rr.Overdue = due
	rr.Held = byClock - due
	rr.NoClock = noClock
	rr.KeptByExtension = keptByExtension
	return tx.Commit(cctx)
}

// describe says what went wrong without the driver's message, which may
// quote data: the SQLSTATE of a PostgreSQL error, or the kind of failure.
func describe(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return "database error, SQLSTATE " + pgErr.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	default:
		return "database error"
	}
}
