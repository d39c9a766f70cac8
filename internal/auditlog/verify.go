package auditlog

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"
)

// Reason says how a log is broken. The set is fixed; docs/audit-log.md
// describes how each is detected.
type Reason string

// The reasons a log can be broken.
const (
	// ReasonEdited: a line no longer matches its hash, or a line does not
	// follow from the hash of the line before it.
	ReasonEdited Reason = "edited"
	// ReasonDeleted: one or more sequence numbers are missing.
	ReasonDeleted Reason = "deleted"
	// ReasonInserted: a line that does not belong to the chain, or a
	// sequence number that appears twice.
	ReasonInserted Reason = "inserted"
	// ReasonReordered: lines are all present but not in their order.
	ReasonReordered Reason = "reordered"
	// ReasonTruncated: the log ends mid-line, or (unless an unsigned tail is
	// allowed) without a final checkpoint.
	ReasonTruncated Reason = "truncated"
	// ReasonBadSignature: a checkpoint's signature does not verify, or it
	// was made with a key that was not given.
	ReasonBadSignature Reason = "bad-signature"
	// ReasonMalformed: a line is not JSON, lacks the hash member, or is not
	// a line of this format.
	ReasonMalformed Reason = "malformed"
	// ReasonUnsigned: more events without a checkpoint than the writer's
	// interval allows (VerifyOptions.MaxUnsigned, MaxUnsignedAge).
	ReasonUnsigned Reason = "unsigned"
)

// Reasons lists every Reason.
var Reasons = []Reason{
	ReasonEdited, ReasonDeleted, ReasonInserted, ReasonReordered,
	ReasonTruncated, ReasonBadSignature, ReasonMalformed, ReasonUnsigned,
}

// Result is the outcome of verifying a log.
type Result struct {
	// OK is true when the whole log verified.
	OK bool
	// Events is the number of event lines verified (before the break, if
	// any).
	Events int
	// Checkpoints is the number of checkpoints whose signature verified.
	Checkpoints int
	// LastSeq is the seq of the last line verified, 0 if none.
	LastSeq uint64
	// LastCheckpointSeq is the seq of the last checkpoint whose signature
	// verified, 0 if none. Every line up to it is authenticated.
	LastCheckpointSeq uint64
	// LastCheckpointTime is the time of that checkpoint.
	LastCheckpointTime time.Time
	// Unsigned is the number of verified events after the last checkpoint.
	Unsigned int
	// Chain is the origin the log's genesis line names, nil when the log
	// has none (logs written without Options.Chain).
	Chain *Chain
	// ChainID is the hash of the genesis line, "" without one.
	ChainID string

	// BrokenSeq is the sequence number at which the log is broken, when
	// not OK. docs/audit-log.md defines it for each Reason.
	BrokenSeq uint64
	// Reason is how the log is broken, when not OK.
	Reason Reason
	// Detail explains the break. It names sequence numbers, members and
	// hashes, never values of the events.
	Detail string
}

// String is the verdict as the verify command prints it.
func (r Result) String() string {
	if !r.OK {
		return fmt.Sprintf("BROKEN at seq %d: %s: %s", r.BrokenSeq, r.Reason, r.Detail)
	}
	if r.Checkpoints == 0 {
		return fmt.Sprintf("OK: %d events, no checkpoint yet (%d events not yet signed)", r.Events, r.Unsigned)
	}
	s := fmt.Sprintf("OK: %d events, last checkpoint at seq %d", r.Events, r.LastCheckpointSeq)
	if r.Unsigned > 0 {
		s += fmt.Sprintf(" (%d events after it not yet signed)", r.Unsigned)
	}
	return s
}

// VerifyOptions are the options of VerifyWithOptions.
type VerifyOptions struct {
	// PublicKeys are the checkpoint keys to trust; a checkpoint names its
	// key by key_id. More than one is needed across a key rotation.
	PublicKeys []ed25519.PublicKey
	// AllowUnsignedTail accepts a log that ends with events after its last
	// checkpoint, such as a log that is still being written or whose writer
	// crashed. By default a log must end with a checkpoint, as Close leaves
	// it, and one that does not is reported as truncated.
	AllowUnsignedTail bool
	// MaxUnsigned, when positive, is the most events the writer leaves
	// without a checkpoint (its CheckpointEvery): more events in a row
	// without one is a break (ReasonUnsigned), also in an unsigned tail.
	MaxUnsigned int
	// MaxUnsignedAge, when positive, is the writer's CheckpointInterval:
	// an unsigned tail whose first event is older than that before Now is a
	// break (ReasonUnsigned), because the writer would have signed it.
	MaxUnsignedAge time.Duration
	// Now is the clock for MaxUnsignedAge; nil means time.Now.
	Now func() time.Time
	// Start, when set, verifies the rest of a chain whose first lines were
	// removed: the log starts at Start.Seq and its first line's prev must
	// be Start.Prev. The logbook uses it after retention removed the lines
	// before a checkpoint it kept.
	Start *ChainPoint
}

// ChainPoint is a position in a chain: the seq of a line and the hash of
// the line before it.
type ChainPoint struct {
	Seq  uint64
	Prev string
}

// Verify checks a log read from r with the checkpoint key pub: the hash
// chain, the sequence numbers, every checkpoint signature, and that the log
// ends with a checkpoint. A broken log is reported in the Result, with the
// first sequence number at which it is broken; the error is only for a key
// that is not an Ed25519 public key and for read errors. Verify never panics
// and reads lines of at most 1 MiB into memory.
func Verify(r io.Reader, pub ed25519.PublicKey) (Result, error) {
	return VerifyWithOptions(r, VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}})
}

// VerifyWithOptions is Verify with several keys or an unsigned tail allowed.
func VerifyWithOptions(r io.Reader, opts VerifyOptions) (Result, error) {
	if len(opts.PublicKeys) == 0 {
		return Result{}, errors.New("verify audit log: no public key given")
	}
	keys := make(map[string]ed25519.PublicKey, len(opts.PublicKeys))
	for _, pub := range opts.PublicKeys {
		if len(pub) != ed25519.PublicKeySize {
			return Result{}, fmt.Errorf("verify audit log: an Ed25519 public key is %d bytes, not %d", ed25519.PublicKeySize, len(pub))
		}
		keys[KeyID(pub)] = pub
	}
	v := verifier{lr: newLineReader(r), keys: keys, expect: 1, last: Genesis, maxUnsigned: opts.MaxUnsigned}
	if opts.Start != nil {
		if opts.Start.Seq == 0 || !isLowerHex(opts.Start.Prev, 64) {
			return Result{}, errors.New("verify audit log: the start of a chain needs a seq and the 64-hex-digit hash before it")
		}
		v.expect, v.last = opts.Start.Seq, opts.Start.Prev
	}
	res, err := v.run()
	if err != nil {
		return res, fmt.Errorf("verify audit log: %w", err)
	}
	return v.checkEnd(res, &opts), nil
}

// verifier holds the state of one verification.
type verifier struct {
	lr   *lineReader
	keys map[string]ed25519.PublicKey
	res  Result

	expect   uint64 // the seq the next line must have
	last     string // the hash of the last verified line (Genesis at first)
	lastPrev string // the prev of the last verified line
	lastType string

	maxUnsigned   int
	firstUnsigned time.Time // time of the first event after the last checkpoint
}

// checkEnd applies the rules about how a log ends: a final checkpoint,
// unless an unsigned tail is allowed, and then one the writer would not yet
// have signed.
func (v *verifier) checkEnd(res Result, opts *VerifyOptions) Result {
	if res.OK && !opts.AllowUnsignedTail && v.lastType != TypeCheckpoint {
		return v.broken(v.expect, ReasonTruncated, v.noFinalCheckpoint())
	}
	if res.OK && opts.MaxUnsignedAge > 0 && res.Unsigned > 0 {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		if age := now().Sub(v.firstUnsigned); age > opts.MaxUnsignedAge {
			return v.broken(v.expect, ReasonUnsigned, fmt.Sprintf(
				"the log ends with %d events after its last checkpoint, the first of them %s old; the writer signs within %s, so its checkpoints were cut off or it stopped without closing",
				res.Unsigned, age.Round(time.Second), opts.MaxUnsignedAge))
		}
	}
	return res
}

func (v *verifier) broken(seq uint64, reason Reason, detail string) Result {
	r := v.res
	r.OK, r.BrokenSeq, r.Reason, r.Detail = false, seq, reason, detail
	return r
}

func (v *verifier) noFinalCheckpoint() string {
	if v.expect == 1 {
		return "the log is empty; a log that was closed holds at least its final checkpoint"
	}
	since := "no checkpoint at all"
	if v.res.LastCheckpointSeq > 0 {
		since = fmt.Sprintf("the last checkpoint is at seq %d", v.res.LastCheckpointSeq)
	}
	return fmt.Sprintf("the log ends after seq %d without a final checkpoint (%s): it was cut off, or its writer did not close; the last %d events are not signed",
		v.expect-1, since, v.res.Unsigned)
}

// run verifies line by line until the end or the first break.
func (v *verifier) run() (Result, error) {
	for {
		line, complete, err := v.lr.next()
		if err == io.EOF {
			v.res.OK = true
			return v.res, nil
		}
		if err != nil {
			return v.res, err
		}
		if !complete {
			return v.broken(v.expect, ReasonTruncated, "the log ends in the middle of a line (no final newline): it was cut off, or a write was interrupted"), nil
		}
		li, err := inspectLine(line)
		if err != nil {
			return v.broken(v.expect, ReasonMalformed, err.Error()), nil
		}
		if !li.hashOK || li.seq != v.expect || li.prev != v.last {
			return v.classify(li)
		}
		d, err := decodeLine(line, &li)
		if err != nil {
			return v.broken(v.expect, ReasonMalformed, err.Error()), nil
		}
		if res, broken := v.count(&li, d); broken {
			return res, nil
		}
		v.res.LastSeq = li.seq
		v.lastPrev, v.last, v.lastType = v.last, li.claimed, li.typ
		v.expect++
	}
}

// count records a line that continues the chain in the result; it
// reports a break when a checkpoint does not verify or too many events go
// unsigned.
func (v *verifier) count(li *lineInfo, d decodedLine) (Result, bool) {
	switch {
	case d.g != nil:
		v.res.Chain = &Chain{Store: d.g.Store, Pod: d.g.Pod, Incarnation: d.g.Incarnation}
		v.res.Chain.Started, _ = time.Parse(TimeLayout, d.g.Time)
		v.res.ChainID = li.claimed
	case d.cp != nil:
		if err := verifyCheckpoint(d.cp, v.keys); err != nil {
			return v.broken(v.expect, ReasonBadSignature, err.Error()), true
		}
		v.res.Checkpoints++
		v.res.LastCheckpointSeq = li.seq
		v.res.LastCheckpointTime, _ = time.Parse(TimeLayout, d.cp.Time)
		v.res.Unsigned = 0
	default:
		if v.maxUnsigned > 0 && v.res.Unsigned >= v.maxUnsigned {
			return v.broken(li.seq, ReasonUnsigned, fmt.Sprintf(
				"%d events follow the last checkpoint without a new one, but the writer signs every %d: a checkpoint was removed", v.res.Unsigned+1, v.maxUnsigned)), true
		}
		if v.res.Unsigned == 0 && d.ev != nil {
			v.firstUnsigned, _ = time.Parse(TimeLayout, d.ev.Time)
		}
		v.res.Events++
		v.res.Unsigned++
	}
	return Result{}, false
}

// classify decides how the log is broken at line x, the first line that
// does not continue the chain. It reads the rest of the log for the line
// that should have been there (seq v.expect following v.last).
func (v *verifier) classify(x lineInfo) (Result, error) {
	e := v.expect
	rest, err := v.scanRest(x)
	if err != nil {
		return v.res, err
	}
	if !x.hashOK {
		return v.brokenEdited(x, rest), nil
	}
	switch {
	case x.seq == 0:
		return v.broken(e, ReasonMalformed, "seq must be a positive integer"), nil
	case x.seq == e: // follows another line than the one verified before it
		if rest.continued {
			return v.broken(e, ReasonInserted, fmt.Sprintf(
				"two lines carry seq %d; the first does not follow seq %d and the second does", e, e-1)), nil
		}
		if e == 1 {
			return v.broken(1, ReasonEdited, "the prev of the first line is not the genesis value (64 zeros): the start of the log was changed"), nil
		}
		return v.broken(e-1, ReasonEdited, fmt.Sprintf(
			"the prev of seq %d (%s) is not the hash of seq %d (%s): seq %d was changed and its hash recomputed, or the prev of seq %d was",
			e, short(x.prev), e-1, short(v.last), e-1, e)), nil
	case x.seq > e:
		return v.brokenAhead(x, rest), nil
	default: // x.seq < e: a sequence number appears again
		return v.brokenRepeated(x), nil
	}
}

// restOfLog is what classify learns from the lines after the break.
type restOfLog struct {
	next      *lineInfo // the line after x, when it is well formed
	continued bool      // a later line has seq v.expect and follows v.last
	xAgain    bool      // a later line has the seq of x
}

// scanRest reads the lines after x until it knows both whether the chain
// continues later and whether the seq of x appears again, or the log ends.
func (v *verifier) scanRest(x lineInfo) (restOfLog, error) {
	var rest restOfLog
	first := true
	for !rest.continued || !rest.xAgain {
		line, complete, err := v.lr.next()
		if err == io.EOF || (err == nil && !complete) {
			break
		}
		if err != nil {
			return rest, err
		}
		li, perr := inspectLine(line)
		if first && perr == nil {
			rest.next = &li
		}
		first = false
		if perr != nil {
			continue
		}
		if li.hashOK && li.seq == v.expect && li.prev == v.last {
			rest.continued = true
		}
		if x.seq != 0 && li.seq == x.seq {
			rest.xAgain = true
		}
	}
	return rest, nil
}

// brokenEdited classifies a line x that does not match its hash.
func (v *verifier) brokenEdited(x lineInfo, rest restOfLog) Result {
	e := v.expect
	if rest.continued && (rest.next == nil || rest.next.prev != x.claimed) {
		return v.broken(e, ReasonInserted, fmt.Sprintf(
			"a line whose hash does not match its content sits where seq %d was expected; seq %d follows it", e, e))
	}
	detail := fmt.Sprintf("the line at seq %d does not match its hash %s: it was changed after it was written", e, short(x.claimed))
	if x.seq != e {
		detail += fmt.Sprintf(" (its seq now reads %d)", x.seq)
	}
	return v.broken(e, ReasonEdited, detail)
}

// brokenAhead classifies a line x whose seq is beyond the expected one.
func (v *verifier) brokenAhead(x lineInfo, rest restOfLog) Result {
	e := v.expect
	if rest.continued {
		if rest.xAgain {
			return v.broken(e, ReasonInserted, fmt.Sprintf(
				"a copy of seq %d sits where seq %d was expected; seq %d follows it", x.seq, e, e))
		}
		return v.broken(e, ReasonReordered, fmt.Sprintf(
			"seq %d comes before seq %d: lines were moved", x.seq, e))
	}
	if x.seq == e+1 {
		return v.broken(e, ReasonDeleted, fmt.Sprintf("seq %d is missing: seq %d follows seq %d", e, x.seq, e-1))
	}
	return v.broken(e, ReasonDeleted, fmt.Sprintf("seq %d to %d are missing (%d lines): seq %d follows seq %d",
		e, x.seq-1, x.seq-e, x.seq, e-1))
}

// brokenRepeated classifies a line x whose seq was seen before.
func (v *verifier) brokenRepeated(x lineInfo) Result {
	e := v.expect
	if x.seq == e-1 && x.prev == v.lastPrev {
		if x.claimed == v.last {
			return v.broken(e, ReasonInserted, fmt.Sprintf("seq %d appears twice: a copy of it sits where seq %d was expected", e-1, e))
		}
		return v.broken(e-1, ReasonInserted, fmt.Sprintf(
			"two different lines carry seq %d and both follow seq %d: one of them was inserted", e-1, e-2))
	}
	return v.broken(e, ReasonInserted, fmt.Sprintf("seq %d appears again where seq %d was expected", x.seq, e))
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "..."
	}
	return h
}

// lineReader splits a log into lines without holding more than one line of
// at most maxLineLen+1 bytes.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline; complete is false for a
// last line that has no newline. A line longer than maxLineLen is returned
// cut to maxLineLen+1 bytes (which inspectLine rejects). At the end of the
// input it returns io.EOF, also when the input ends with zero bytes only
// after its last newline: the zero tail of a preallocated log whose writer
// did not close it (see segment.go).
func (lr *lineReader) next() (line []byte, complete bool, err error) {
	lr.buf = lr.buf[:0]
	read := 0
	zeros := true
	for {
		chunk, err := lr.br.ReadSlice('\n')
		read += len(chunk)
		zeros = zeros && allZero(chunk)
		if room := maxLineLen + 1 - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, chunk[:min(room, len(chunk))]...)
		}
		switch err {
		case nil:
			if n := len(lr.buf); n > 0 && lr.buf[n-1] == '\n' {
				lr.buf = lr.buf[:n-1]
			}
			return lr.buf, true, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if zeros { // nothing more, or only the zero tail
				return nil, false, io.EOF
			}
			return lr.buf, false, nil
		default:
			return nil, false, err
		}
	}
}
