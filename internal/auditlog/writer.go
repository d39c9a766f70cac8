package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
	DefaultMaxDeferral        = 10 * time.Millisecond
	defaultMaxBatch           = 1024
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log writer is closed")

// ErrLogFull stops a Writer whose file reached Options.MaxBytes.
var ErrLogFull = errors.New("the audit log file reached its size limit; no more events are accepted until the pod is replaced")

// checkpointRoom is the part of Options.MaxBytes kept for the final
// checkpoint, which is about 300 bytes.
const checkpointRoom = 1024

// Options configure a Writer.
type Options struct {
	// Path of the log file. It is created (mode 0600) if it does not exist,
	// and continued if it does. The directory must exist.
	Path string
	// Mirror receives a copy of every line after it is durable in the file,
	// typically os.Stdout for the cluster's log collection. Nil means none.
	Mirror io.Writer
	// SigningKey signs the checkpoints. Required.
	SigningKey ed25519.PrivateKey
	// CheckpointEvery is the number of events after which a checkpoint is
	// written. 0 means DefaultCheckpointEvery; negative means never.
	CheckpointEvery int
	// CheckpointInterval is the longest an event waits for a checkpoint.
	// 0 means DefaultCheckpointInterval; negative means never.
	CheckpointInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Chain, when set, names the origin of the log: a new log starts with a
	// genesis line holding it, and an existing log is continued only when
	// its genesis line names the same store.
	Chain *Chain
	// Logbook, when set, ships every line to the logbook and makes Append
	// wait for its acknowledgement (see LogbookOptions). Needs Chain.
	Logbook *LogbookOptions
	// DrainTimeout is how long Close waits for the logbook to acknowledge
	// what is left; 0 means 10 seconds.
	DrainTimeout time.Duration
	// MaxDeferral is the longest a deferred event (WithDeferredCommit)
	// waits for a commit that another Append asks for before it is
	// committed on its own. 0 means DefaultMaxDeferral.
	MaxDeferral time.Duration
	// ObserveCommit, when set, is called by the committer after every
	// durable write of the file (a group commit, or a checkpoint or genesis
	// line alone) with what it held and how long its fsync took
	// (benchmarks and metrics); it must return quickly.
	ObserveCommit func(Commit)
	// Preallocate, when positive, grows the file in segments of this many
	// bytes (at least 64 KiB), written as zeros and fsynced once, and makes
	// each commit durable with fdatasync, which then needs no journal
	// commit: the write overwrites zeros in place and the file's size does
	// not change (see segment.go). Until Close the file ends with a run of
	// zero bytes after the last line, which every reader of this package
	// treats as the end of the log. A segment is cut short at MaxBytes.
	// 0 means off: each commit appends and fsyncs.
	Preallocate int64
	// MaxBytes bounds the file (the proxy's log volume has a size limit,
	// past which the kubelet would evict the pod). A commit that would grow
	// the file past MaxBytes less the room for a final checkpoint is not
	// written: its Appends fail with ErrLogFull, the writer writes that
	// final checkpoint (so the chain ends signed) and stops, and every
	// later Append fails with ErrLogFull. 0 means no bound.
	MaxBytes int64
}

// Commit is what Options.ObserveCommit is told of one durable write.
type Commit struct {
	// Events is the number of events it made durable; 0 for a checkpoint
	// or genesis line written alone.
	Events int
	// Bytes is the number of bytes written.
	Bytes int
	// Sync is how long its fsync (fdatasync with Preallocate) took.
	Sync time.Duration
	// Start is when the committer began writing it: the lines were built
	// (hashed) and written in Write, then synced in Sync.
	Start time.Time
	// Write is how long building its lines and the write took.
	Write time.Duration
}

// logFile is the file the Writer appends to: an *os.File, or a
// *segmentFile with Options.Preallocate.
type logFile interface {
	io.Writer
	Sync() error
	Close() error
}

// request is one Append waiting for its group commit.
type request struct {
	body []byte  // the event's members after the header, a JSON object
	ev   *Event  // the event, for the logbook (only when shipping)
	done outcome // where the outcome of the commit goes
	// deferred asks for no commit of its own (WithDeferredCommit).
	deferred bool
}

// deferKey is the context key of WithDeferredCommit.
type deferKey struct{}

// WithDeferredCommit returns ctx marking an Append as one that need not be
// committed at once: its event is written with the next commit that an
// Append without the mark asks for, or after Options.MaxDeferral at the
// latest, and Append returns once that commit is durable, as always. It is
// for events nothing waits on, such as the completion of a request whose
// response is already on its way: at low concurrency the next request's
// decision then carries it in the same fsync, instead of waiting behind its
// own. A crash of the node loses the deferred events not yet committed (at
// most MaxDeferral's worth); Close commits them.
func WithDeferredCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferKey{}, true)
}

// CommitDeferred reports whether ctx carries WithDeferredCommit.
func CommitDeferred(ctx context.Context) bool {
	d, _ := ctx.Value(deferKey{}).(bool)
	return d
}

// Writer appends events to a log file and its mirror, hash-chained and with
// signed checkpoints. It is safe for concurrent use. Appends that arrive
// while a commit is in progress are written and fsynced together in the
// next one (group commit).
type Writer struct {
	path   string
	file   logFile
	mirror io.Writer
	// key signs the checkpoints; SetSigningKey swaps it.
	key      atomic.Pointer[signer]
	every    int
	interval time.Duration
	now      func() time.Time
	maxBatch int
	maxDefer time.Duration
	observe  func(Commit)

	mu     sync.RWMutex // guards closed and sending on reqs
	closed bool
	reqs   chan *request
	// keys carries SetSigningKey's new keys to the committer.
	keys   chan keyChange
	exited chan struct{} // closed when the committer has stopped
	// closeErr is the outcome of Close, set by the committer before exited.
	closeErr error

	errMu  sync.Mutex
	failed error // sticky: set on the first write, sync or mirror error

	// chainID is the hash of the genesis line, "" for a log without one.
	chainID string
	// ship sends the lines to the logbook; nil when not configured.
	ship  *shipper
	drain time.Duration
	// maxBytes bounds the file, 0 for none; size is its size, owned by
	// the committer once it runs.
	maxBytes int64
	size     int64

	// State of the chain, owned by the committer goroutine.
	seq      uint64
	prev     [64]byte
	lastType string
	unsigned int // events since the last checkpoint
	buf      []byte
	// start is when the commit being written began (Commit.Start).
	start time.Time
}

// NewWriter opens or creates the log file at opts.Path and starts the
// writer. An existing file is continued: its last line must be intact (a
// complete line that matches its hash and follows the line before it), or
// NewWriter refuses it, because appending to a broken chain would hide the
// break. Only one Writer may have a file open at a time.
func NewWriter(opts Options) (*Writer, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	w := &Writer{
		path:     opts.Path,
		mirror:   opts.Mirror,
		every:    opts.CheckpointEvery,
		interval: opts.CheckpointInterval,
		now:      opts.Now,
		maxBatch: defaultMaxBatch,
		maxDefer: opts.MaxDeferral,
		observe:  opts.ObserveCommit,
		reqs:     make(chan *request, defaultMaxBatch),
		keys:     make(chan keyChange),
		exited:   make(chan struct{}),
		maxBytes: opts.MaxBytes,
	}
	w.key.Store(newSigner(opts.SigningKey))
	w.setDefaults()

	_, statErr := os.Stat(opts.Path)
	created := errors.Is(statErr, os.ErrNotExist)
	flags := os.O_RDWR | os.O_CREATE
	if opts.Preallocate == 0 {
		flags |= os.O_APPEND
	}
	f, err := os.OpenFile(opts.Path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: open: %w", err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close() // the lock error is the one to report
		return nil, fmt.Errorf("audit log %s is in use by another writer: %w", opts.Path, err)
	}
	if created {
		// Make the new directory entry durable too.
		if err := syncDir(filepath.Dir(opts.Path)); err != nil {
			_ = f.Close() // the sync error is the one to report
			return nil, fmt.Errorf("audit log: sync directory: %w", err)
		}
	}
	end, err := w.resume(f)
	if err != nil {
		_ = f.Close() // the resume error is the one to report
		return nil, fmt.Errorf("audit log %s: %w", opts.Path, err)
	}
	w.file, w.size = f, end
	if opts.Preallocate > 0 {
		w.file = newSegmentFile(f, end, opts.Preallocate, opts.MaxBytes)
	}
	if err := w.openChain(f, opts.Chain); err != nil {
		_ = w.file.Close()
		return nil, fmt.Errorf("audit log %s: %w", opts.Path, err)
	}
	if opts.Logbook != nil {
		if err := w.startShipper(f, opts); err != nil {
			_ = w.file.Close()
			return nil, err
		}
	}
	go w.run()
	return w, nil
}

// setDefaults fills in the defaults of the options left zero.
func (w *Writer) setDefaults() {
	if w.every == 0 {
		w.every = DefaultCheckpointEvery
	}
	if w.interval == 0 {
		w.interval = DefaultCheckpointInterval
	}
	if w.maxDefer == 0 {
		w.maxDefer = DefaultMaxDeferral
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.mirror == nil {
		w.mirror = io.Discard
	}
}

// checkOptions refuses what NewWriter cannot work with.
func checkOptions(opts Options) error {
	if opts.Path == "" {
		return errors.New("audit log: no file path given")
	}
	if len(opts.SigningKey) != ed25519.PrivateKeySize {
		return fmt.Errorf("audit log: the signing key must be an Ed25519 private key of %d bytes", ed25519.PrivateKeySize)
	}
	if opts.MaxDeferral < 0 {
		return fmt.Errorf("audit log: the longest deferral %s must be 0 (the default) or positive", opts.MaxDeferral)
	}
	if opts.MaxBytes < 0 || (opts.MaxBytes > 0 && opts.MaxBytes < 4*checkpointRoom) {
		return fmt.Errorf("audit log: the size limit %d bytes must be 0 (none) or at least %d", opts.MaxBytes, 4*checkpointRoom)
	}
	if opts.Preallocate < 0 || (opts.Preallocate > 0 && opts.Preallocate < minPreallocate) {
		return fmt.Errorf("audit log: the preallocated segment (Preallocate) of %d bytes must be 0 (off) or at least %d", opts.Preallocate, minPreallocate)
	}
	return nil
}

// Append records ev and returns once it is durable in the file (written and
// fsynced) and copied to the mirror. If it returns an error the event may not
// be recorded and the caller must deny the request it describes. The event
// is validated first (see Event); invalid events are refused.
//
// When ctx ends while the event waits for its commit, Append returns the
// context's error, and the event may still be written: the log can hold an
// event for a request that was then denied, never the reverse.
func (w *Writer) Append(ctx context.Context, ev Event) error {
	return w.Begin(ctx, ev)()
}

// Begin is Append in two steps: it validates ev and hands it to the
// committer, then returns at once with the function that waits for the
// outcome, which is Append's (an error of the first step included). Call
// that function once. A caller that has other work to do while its event
// is being made durable (the audit proxy forwarding a safe request) needs
// no goroutine of its own to wait: the committer's answer wakes the caller
// directly.
func (w *Writer) Begin(ctx context.Context, ev Event) (wait func() error) {
	done := outcome{ch: make(chan error, 1)}
	ackTimeout, err := w.enqueue(ctx, ev, done, w.ship != nil)
	if err != nil {
		return func() error { return err }
	}
	return func() error {
		var ack <-chan time.Time
		if ackTimeout != nil {
			defer ackTimeout.Stop()
			ack = ackTimeout.C
		}
		select {
		case err := <-done.ch:
			return commitError(err)
		case <-ctx.Done():
			return fmt.Errorf("audit event not confirmed (it may still be written): %w", ctx.Err())
		case <-ack:
			return w.notAcknowledged()
		}
	}
}

// Queue is Append for an event nothing waits on, such as the completion of
// a request whose response is already on its way: it validates ev and hands
// it to the committer as Begin does, and instead of a function to wait
// with, done is called once with what Append would have returned: nil once
// the event is durable (and acknowledged by the logbook when shipping),
// else the error. done is called in the caller's goroutine when the event
// is refused at once, else in the committer's, the shipper's or, when the
// logbook does not acknowledge it within its timeout, a timer's; it must
// not block. The caller needs no goroutine to wait, and the committer
// wakes none.
func (w *Writer) Queue(ctx context.Context, ev Event, done func(error)) {
	once := &queuedOutcome{done: done}
	if w.ship != nil {
		// Armed before the event is queued, so that the committer's
		// answer finds it set.
		once.timer = time.AfterFunc(w.ship.ackTimeout, func() { once.finish(w.notAcknowledged()) })
	}
	if _, err := w.enqueue(ctx, ev, outcome{fn: once.report}, false); err != nil {
		once.stop()
		once.finish(err)
	}
}

// queuedOutcome hands the first outcome of a queued event to done, and
// stops the acknowledgement timer when it was not the timer's.
type queuedOutcome struct {
	done  func(error)
	timer *time.Timer
	sent  atomic.Bool
}

// report takes the committer's or the shipper's outcome.
func (q *queuedOutcome) report(err error) {
	q.stop()
	q.finish(commitError(err))
}

func (q *queuedOutcome) stop() {
	if q.timer != nil {
		q.timer.Stop()
	}
}

func (q *queuedOutcome) finish(err error) {
	if q.sent.CompareAndSwap(false, true) {
		q.done(err)
	}
}

// outcome is where the outcome of a request's commit goes: the buffered
// channel its Begin waits on, or the function of Queue; nowhere for a line
// no request waits on (a checkpoint shipped to the logbook).
type outcome struct {
	ch chan error
	fn func(error)
}

func (o outcome) send(err error) {
	switch {
	case o.fn != nil:
		o.fn(err)
	case o.ch != nil:
		o.ch <- err
	}
}

// commitError is what Append returns for the outcome of its commit.
func commitError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("audit event not recorded: %w", err)
}

// notAcknowledged is the error of an event the logbook did not acknowledge
// in time.
func (w *Writer) notAcknowledged() error {
	return fmt.Errorf("audit event not confirmed: the logbook did not acknowledge it within %s (it stays queued)", w.ship.ackTimeout)
}

// enqueue validates ev and queues it for the committer, whose outcome goes
// to done. With ackTimer (only when shipping) it returns the logbook's
// acknowledgement timer, started when the event is queued.
func (w *Writer) enqueue(ctx context.Context, ev Event, done outcome, ackTimer bool) (ackTimeout *time.Timer, _ error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit event not recorded: %w", err)
	}
	if err := w.Err(); err != nil {
		return nil, fmt.Errorf("audit event not recorded: %w", err)
	}
	if ev.Time.IsZero() {
		ev.Time = w.now()
	}
	body, err := encodeEventBody(&ev, w.now)
	if err != nil {
		return nil, err
	}
	req := &request{body: body, done: done, deferred: CommitDeferred(ctx)}
	if w.ship != nil {
		if w.ship.full() {
			return nil, fmt.Errorf("audit event not recorded: %w", ErrSpoolFull)
		}
		shipped := ev // a copy only when shipping, so that ev stays on the stack
		req.ev = &shipped
	}

	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return nil, fmt.Errorf("audit event not recorded: %w", ErrClosed)
	}
	if ackTimer {
		ackTimeout = time.NewTimer(w.ship.ackTimeout)
	}
	select {
	case w.reqs <- req:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		if ackTimeout != nil {
			ackTimeout.Stop()
		}
		return nil, fmt.Errorf("audit event not recorded: %w", ctx.Err())
	}
	return ackTimeout, nil
}

// Close writes every event already passed to Append, then a final
// checkpoint, fsyncs and closes the file. Appends after Close fail with
// ErrClosed. Calling Close again returns the same result.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.reqs)
	}
	w.mu.Unlock()
	<-w.exited
	return w.closeErr
}

// Err returns the error that stopped the writer, if any: after a failed
// write, fsync or mirror write every Append fails with it. A readiness
// probe can report it.
func (w *Writer) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.failed
}

func (w *Writer) fail(err error) error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.failed == nil {
		w.failed = fmt.Errorf("audit log %s stopped: %w", w.path, err)
	}
	return w.failed
}

// run is the committer: it takes every queued request, commits them as one
// batch, and writes checkpoints when they are due. A batch of deferred
// requests only is held until a request that is not deferred arrives, the
// batch is full, MaxDeferral has passed since the first of them, or the
// writer closes.
func (w *Writer) run() {
	defer close(w.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var timerC <-chan time.Time
	deferTimer := time.NewTimer(time.Hour)
	deferTimer.Stop()
	var deferC <-chan time.Time
	batch := make([]*request, 0, w.maxBatch)
	flush := func(checkpoint bool) {
		w.commit(batch, checkpoint)
		clear(batch)
		batch = batch[:0]
		if deferC != nil {
			deferTimer.Stop()
			deferC = nil
		}
	}
	for {
		select {
		case req, ok := <-w.reqs:
			var open, urgent bool
			batch, open, urgent = w.collect(batch, req, ok)
			switch {
			case !open:
				if len(batch) > 0 {
					flush(false)
				}
				w.closeErr = w.finish()
				return
			case urgent || len(batch) >= w.maxBatch:
				flush(false)
			case deferC == nil:
				deferTimer.Reset(w.maxDefer)
				deferC = deferTimer.C
			}
		case <-deferC:
			deferC = nil
			flush(false)
		case <-timerC:
			timerC = nil
			flush(true)
		case change := <-w.keys:
			flush(true) // the old key signs what it has not signed yet
			w.key.Store(change.key)
			close(change.done)
		}
		timerC = w.checkpointTimer(timer, timerC)
	}
}

// checkpointTimer runs the timer of the checkpoint interval while there are
// unsigned events and stops it when there are none; it returns the channel
// to wait on, nil for none.
func (w *Writer) checkpointTimer(timer *time.Timer, timerC <-chan time.Time) <-chan time.Time {
	switch {
	case w.unsigned > 0 && timerC == nil && w.interval > 0:
		timer.Reset(w.interval)
		return timer.C
	case w.unsigned == 0 && timerC != nil:
		timer.Stop()
		return nil
	}
	return timerC
}

// collect adds req (when ok: the channel was not closed) and every request
// already queued to batch, up to the batch size. open is false once the
// channel is closed; urgent is true when one of the requests added is not
// deferred.
func (w *Writer) collect(batch []*request, req *request, ok bool) (_ []*request, open, urgent bool) {
	if !ok {
		return batch, false, false
	}
	batch = append(batch, req)
	urgent = !req.deferred
	for len(batch) < w.maxBatch {
		select {
		case r, ok := <-w.reqs:
			if !ok {
				return batch, false, urgent
			}
			batch = append(batch, r)
			urgent = urgent || !r.deferred
		default:
			return batch, true, urgent
		}
	}
	return batch, true, urgent
}

// commit writes the events of batch and any checkpoint due as one write and
// one fsync, then reports the outcome to every request.
func (w *Writer) commit(batch []*request, checkpoint bool) {
	err := w.Err()
	if err == nil {
		before := w.chainState()
		w.start = time.Now()
		w.buf = w.buf[:0]
		for _, r := range batch {
			w.seq++
			w.buf, w.prev = appendLine(w.buf, TypeEvent, w.seq, &w.prev, r.body)
			w.lastType = TypeEvent
			w.unsigned++
			if w.every > 0 && w.unsigned >= w.every {
				w.appendCheckpoint()
			}
		}
		if checkpoint && w.unsigned > 0 {
			w.appendCheckpoint()
		}
		if w.maxBytes > 0 && w.size+int64(len(w.buf)) > w.maxBytes-checkpointRoom {
			w.restoreChainState(before)
			err = w.full()
		} else {
			err = w.writeOut(len(batch))
		}
	}
	if err == nil && w.ship != nil {
		w.ship.enqueue(w.shipEntries(batch))
		return
	}
	for _, r := range batch {
		r.done.send(err)
	}
}

// signer is a checkpoint signing key with its id.
type signer struct {
	priv  ed25519.PrivateKey
	keyID string
}

func newSigner(priv ed25519.PrivateKey) *signer {
	pub, _ := priv.Public().(ed25519.PublicKey)
	return &signer{priv: priv, keyID: KeyID(pub)}
}

// keyChange is a new signing key for the committer; done is closed once
// it is in use.
type keyChange struct {
	key  *signer
	done chan struct{}
}

// SetSigningKey makes priv the key of every checkpoint written from now
// on, such as a rotated version of the store's signing key. The committer
// first signs what the old key has not signed yet with a checkpoint of the
// old key, so every event is covered by the key it was written under, then
// switches. Checkpoints name their key (key_id): a verifier that holds every
// public key verifies the chain across the change. Events are not lost or
// refused: the switch is one more commit between two batches.
func (w *Writer) SetSigningKey(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("audit log: the signing key must be an Ed25519 private key of %d bytes", ed25519.PrivateKeySize)
	}
	change := keyChange{key: newSigner(priv), done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.keys <- change:
	case <-w.exited:
		w.mu.RUnlock()
		return ErrClosed
	}
	w.mu.RUnlock()
	select {
	case <-change.done:
		return nil
	case <-w.exited:
		return ErrClosed
	}
}

// SigningKeyID is the id of the key the next checkpoint is signed with.
func (w *Writer) SigningKeyID() string { return w.key.Load().keyID }

// chainState is what commit changes before the batch is written.
type chainState struct {
	seq      uint64
	prev     [64]byte
	lastType string
	unsigned int
}

func (w *Writer) chainState() chainState {
	return chainState{seq: w.seq, prev: w.prev, lastType: w.lastType, unsigned: w.unsigned}
}

func (w *Writer) restoreChainState(c chainState) {
	w.seq, w.prev, w.lastType, w.unsigned = c.seq, c.prev, c.lastType, c.unsigned
}

// full ends a log at its size limit: a final checkpoint in the room kept
// for it, shipped like any line, then the writer stops with ErrLogFull.
func (w *Writer) full() error {
	w.buf = w.buf[:0]
	if w.lastType != TypeCheckpoint {
		w.appendCheckpoint()
		if err := w.writeOut(0); err != nil {
			return err
		}
		if w.ship != nil {
			w.ship.enqueue(w.shipEntries(nil))
		}
	}
	return w.fail(ErrLogFull)
}

func (w *Writer) appendCheckpoint() {
	w.seq++
	k := w.key.Load()
	body := checkpointBodyJSON(k.priv, k.keyID, w.seq, &w.prev, w.now())
	w.buf, w.prev = appendLine(w.buf, TypeCheckpoint, w.seq, &w.prev, body)
	w.lastType = TypeCheckpoint
	w.unsigned = 0
}

// writeOut writes w.buf, which holds events event lines, to the file,
// fsyncs it and copies it to the mirror. Any error stops the writer for
// good: the file may now end with part of a line, and fsync errors cannot
// be retried safely.
func (w *Writer) writeOut(events int) error {
	if len(w.buf) == 0 {
		return nil
	}
	if events == 0 || w.start.IsZero() {
		w.start = time.Now() // a line written alone
	}
	n, err := w.file.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return w.fail(fmt.Errorf("write: %w", err))
	}
	t0 := time.Now()
	if err := w.file.Sync(); err != nil {
		return w.fail(fmt.Errorf("fsync: %w", err))
	}
	if w.observe != nil {
		w.observe(Commit{Events: events, Bytes: len(w.buf), Sync: time.Since(t0), Start: w.start, Write: t0.Sub(w.start)})
	}
	if _, err := w.mirror.Write(w.buf); err != nil {
		return w.fail(fmt.Errorf("write to mirror: %w", err))
	}
	return nil
}

// finish writes the final checkpoint, waits for the logbook to acknowledge
// what is left, and closes the file.
func (w *Writer) finish() error {
	err := w.Err()
	if err == nil && w.lastType != TypeCheckpoint {
		w.buf = w.buf[:0]
		w.appendCheckpoint()
		err = w.writeOut(0)
		if err == nil && w.ship != nil {
			w.ship.enqueue(w.shipEntries(nil))
		}
	}
	if w.ship != nil {
		ctx, cancel := context.WithTimeout(context.Background(), w.drain)
		if serr := w.ship.close(ctx); serr != nil && err == nil {
			err = serr
		}
		cancel()
	}
	if cerr := w.file.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("audit log %s: close: %w", w.path, cerr)
	}
	return err
}

// resume reads the end of an existing log to continue its chain, and
// returns the size of its content. A zero tail after the content (left by a
// crash of a writer with Options.Preallocate) is cut off once the last line
// is found intact.
func (w *Writer) resume(f *os.File) (int64, error) {
	w.lastType = ""
	copy(w.prev[:], Genesis)
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	size := fi.Size()
	end, err := contentEnd(f, size)
	if err != nil {
		return 0, err
	}
	if end == 0 {
		return 0, cutZeroTail(f, 0, size)
	}
	tail, atStart, err := readTail(f, end)
	if err != nil {
		return 0, err
	}
	if tail[len(tail)-1] != '\n' {
		return 0, errors.New("the last line is incomplete (no final newline): the log was cut off mid-write, for example by a crash. " +
			"Appending would hide the break; check it with `dossierguard audit verify`, move it aside and start a new log")
	}
	li, cp, err := lastLine(tail, atStart)
	if err != nil {
		return 0, err
	}
	if k := w.key.Load(); cp != nil && cp.KeyID == k.keyID {
		if err := verifyCheckpoint(cp, map[string]ed25519.PublicKey{k.keyID: k.priv.Public().(ed25519.PublicKey)}); err != nil {
			return 0, fmt.Errorf("the last checkpoint (seq %d): %v; refusing to append to a broken log", li.seq, err)
		}
	}
	if err := cutZeroTail(f, end, size); err != nil {
		return 0, err
	}
	w.seq = li.seq
	copy(w.prev[:], li.claimed)
	w.lastType = li.typ
	return end, nil
}

// lastLine checks the last line of a log's tail (which ends with a newline):
// well formed, matching its hash, and following the line before it or the
// genesis value when it is the whole log. cp is its checkpoint, if it is one.
func lastLine(tail []byte, atStart bool) (li lineInfo, cp *checkpointLine, err error) {
	lines := bytes.Split(tail[:len(tail)-1], []byte{'\n'})
	last := lines[len(lines)-1]
	li, err = inspectLine(last)
	if err != nil {
		return li, nil, fmt.Errorf("the last line is malformed (%v); refusing to append to a broken log", err)
	}
	if !li.hashOK {
		return li, nil, errors.New("the last line does not match its hash; refusing to append to a broken log (check it with `dossierguard audit verify`)")
	}
	cp, err = checkStructure(last, &li)
	if err != nil {
		return li, nil, fmt.Errorf("the last line is not a valid line (%v); refusing to append to a broken log", err)
	}
	switch {
	case len(lines) >= 2:
		pl, err := inspectLine(lines[len(lines)-2])
		if err != nil || !pl.hashOK || li.prev != pl.claimed || li.seq != pl.seq+1 {
			return li, nil, fmt.Errorf("the last line (seq %d) does not follow the line before it; refusing to append to a broken log (check it with `dossierguard audit verify`)", li.seq)
		}
	case atStart:
		if li.seq != 1 || li.prev != Genesis {
			return li, nil, errors.New("the only line is not the first line of a chain (seq 1 after the genesis value); refusing to append to a broken log")
		}
	}
	return li, cp, nil
}

// readTail reads the last two lines of a file of the given size (more when
// they are short). atStart reports that the tail is the whole file.
func readTail(f *os.File, size int64) (tail []byte, atStart bool, err error) {
	const chunk = 64 << 10
	limit := int64(2*(maxLineLen+1) + 1)
	off := size
	for {
		n := min(int64(chunk), off)
		off -= n
		part := make([]byte, n, int64(len(tail))+n)
		if _, err := f.ReadAt(part, off); err != nil {
			return nil, false, fmt.Errorf("read the end of the log: %w", err)
		}
		tail = append(part, tail...)
		// Three newlines: the one ending the last line and one before
		// each of the last two lines.
		if off == 0 || bytes.Count(tail, []byte{'\n'}) >= 3 {
			break
		}
		if int64(len(tail)) > limit {
			return nil, false, fmt.Errorf("the last lines are longer than %d bytes; this is not an audit log", maxLineLen)
		}
	}
	if off > 0 {
		// Drop the partial line before the last two lines.
		i := bytes.IndexByte(tail, '\n')
		tail = tail[i+1:]
	}
	// Keep only the last two lines.
	for bytes.Count(tail, []byte{'\n'}) > 2 {
		tail = tail[bytes.IndexByte(tail, '\n')+1:]
	}
	return tail, off == 0 && len(tail) == int(size), nil
}

// syncDir fsyncs a directory so that a file created in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // a directory opened only to sync it
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// ChainID returns the id of the writer's chain: the hash of its genesis line,
// or "" for a log without one.
func (w *Writer) ChainID() string { return w.chainID }

// Unshipped is the number of events written locally and not yet
// acknowledged by the logbook; 0 without a logbook.
func (w *Writer) Unshipped() int {
	if w.ship == nil {
		return 0
	}
	return w.ship.pending()
}

// openChain writes the genesis line of a new log, or reads the genesis line
// of the log being continued.
func (w *Writer) openChain(f *os.File, c *Chain) error {
	if w.seq == 0 {
		if c == nil {
			return nil
		}
		body, err := genesisBodyJSON(c, w.now)
		if err != nil {
			return err
		}
		w.seq = 1
		var h [64]byte
		w.buf, h = appendLine(w.buf[:0], TypeGenesis, 1, &w.prev, body)
		w.prev, w.lastType, w.chainID = h, TypeGenesis, string(h[:])
		return w.writeOut(0)
	}
	first, err := readFirstLine(f)
	if err != nil {
		return err
	}
	li, err := inspectLine(first)
	if err != nil || li.typ != TypeGenesis || !li.hashOK {
		if c != nil {
			return errors.New("the log has no genesis line, so it cannot be continued as a chain of a store; move it aside and start a new log")
		}
		return nil
	}
	var g genesisLine
	if err := decodeStrict(first, &g); err != nil || g.validate() != nil {
		return errors.New("the genesis line of the log is malformed; refusing to append to a broken log")
	}
	if c != nil && c.Store != g.Store {
		return fmt.Errorf("the log is the chain of store %s, not %s; refusing to mix the chains of two stores", g.Store, c.Store)
	}
	w.chainID = li.claimed
	return nil
}

// readFirstLine reads the first line of a log, without its newline.
func readFirstLine(f *os.File) ([]byte, error) {
	lr := newLineReader(io.NewSectionReader(f, 0, 1<<62))
	line, _, err := lr.next()
	if err != nil {
		return nil, fmt.Errorf("read the first line: %w", err)
	}
	return line, nil
}

// startShipper starts shipping to the logbook, beginning with every line
// already in the file: the logbook acknowledges those it has again
// without storing them twice.
func (w *Writer) startShipper(f *os.File, opts Options) error {
	s, err := newShipper(opts.Logbook, opts.Chain, w.chainID, w.fail)
	if err != nil {
		return err
	}
	w.drain = opts.DrainTimeout
	if w.drain <= 0 {
		w.drain = 10 * time.Second
	}
	lr := newLineReader(io.NewSectionReader(f, 0, 1<<62))
	var entries []*shipEntry
	for {
		line, complete, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil || !complete {
			return fmt.Errorf("audit log %s: read it for the logbook: %v", w.path, err)
		}
		rec, err := ParseRecord(bytes.Clone(line))
		if err != nil {
			return fmt.Errorf("audit log %s: a line cannot be sent to the logbook: %w", w.path, err)
		}
		entries = append(entries, &shipEntry{rec: rec})
	}
	w.ship = s
	s.enqueue(entries)
	go s.run()
	return nil
}

// shipEntries makes the lines just written (w.buf) into entries for the
// logbook, attaching each event's waiting Append. batch holds the requests
// of the event lines, in order.
func (w *Writer) shipEntries(batch []*request) []*shipEntry {
	var entries []*shipEntry
	data := w.buf
	i := 0
	for len(data) > 0 {
		n := bytes.IndexByte(data, '\n')
		line := bytes.Clone(data[:n])
		data = data[n+1:]
		rec := &Record{Line: line, Hash: string(line[len(line)-66 : len(line)-2])}
		li := lineFields(line)
		rec.Type, rec.Seq, rec.Prev = li.typ, li.seq, li.prev
		e := &shipEntry{rec: rec}
		switch rec.Type {
		case TypeEvent:
			r := batch[i]
			i++
			rec.Event, rec.Time, e.done = r.ev, r.ev.Time, r.done
		default:
			full, err := ParseRecord(line)
			if err == nil {
				rec = full
			}
			e.rec = rec
		}
		entries = append(entries, e)
	}
	return entries
}

// lineFields reads type, seq and prev of a line this writer just made,
// from their fixed places in its header.
func lineFields(line []byte) lineInfo {
	var li lineInfo
	// {"v":1,"type":"<type>","seq":<seq>,"prev":"<64 hex>",
	rest := line[len(`{"v":1,"type":"`):]
	q := bytes.IndexByte(rest, '"')
	li.typ = string(rest[:q])
	rest = rest[q+len(`","seq":`):]
	c := bytes.IndexByte(rest, ',')
	for _, d := range rest[:c] {
		li.seq = li.seq*10 + uint64(d-'0')
	}
	rest = rest[c+len(`,"prev":"`):]
	li.prev = string(rest[:64])
	return li
}
