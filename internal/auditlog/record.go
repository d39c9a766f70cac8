package auditlog

import (
	"crypto/ed25519"
	"fmt"
	"time"
)

// Record is one line of a chain, checked and decoded, as the logbook
// receives it: the line's hash matches its content and its members are those
// of its type. Whether it continues its chain is for the receiver to check
// against the chain's head (Follows).
type Record struct {
	// Type is TypeEvent, TypeCheckpoint or TypeGenesis.
	Type string
	Seq  uint64
	// Prev and Hash are the chain members of the line, 64 hex digits.
	Prev, Hash string
	// Time is the event's start, the checkpoint's or the chain's start.
	Time time.Time
	// Event is the decoded event of an event line.
	Event *Event
	// Chain is the origin a genesis line names.
	Chain *Chain
	// KeyID names the key that signed a checkpoint line.
	KeyID string
	// Line is the exact line, without its newline.
	Line []byte

	cp *checkpointLine
}

// RecordError says why a line is not a valid record; Reason is
// ReasonMalformed or ReasonEdited (the line does not match its hash).
type RecordError struct {
	Reason Reason
	Detail string
}

func (e *RecordError) Error() string { return string(e.Reason) + ": " + e.Detail }

// ParseRecord checks one line (without its newline) as Verify checks each
// line (hash, version, members of its type) and decodes it. Its error is a
// *RecordError whose detail names members and rules, never values.
func ParseRecord(line []byte) (*Record, error) {
	li, err := inspectLine(line)
	if err != nil {
		return nil, &RecordError{ReasonMalformed, err.Error()}
	}
	if !li.hashOK {
		return nil, &RecordError{ReasonEdited, fmt.Sprintf("the line at seq %d does not match its hash %s", li.seq, short(li.claimed))}
	}
	d, err := decodeLine(line, &li)
	if err != nil {
		return nil, &RecordError{ReasonMalformed, err.Error()}
	}
	r := &Record{Type: li.typ, Seq: li.seq, Prev: li.prev, Hash: li.claimed, Line: line, cp: d.cp}
	switch {
	case d.ev != nil:
		ev := d.ev.event()
		r.Event, r.Time = &ev, ev.Time
	case d.cp != nil:
		r.KeyID = d.cp.KeyID
		r.Time, _ = time.Parse(TimeLayout, d.cp.Time)
	case d.g != nil:
		r.Time, _ = time.Parse(TimeLayout, d.g.Time)
		r.Chain = &Chain{Store: d.g.Store, Pod: d.g.Pod, Incarnation: d.g.Incarnation, Started: r.Time}
	}
	return r, nil
}

// Follows reports whether r continues a chain whose last line has seq and
// hash (0 and Genesis for an empty chain).
func (r *Record) Follows(seq uint64, hash string) bool {
	return r.Seq == seq+1 && r.Prev == hash
}

// VerifySignature checks the signature of a checkpoint record with the key
// its key_id names among keys (by KeyID). Records of other types have none;
// for them it returns nil.
func (r *Record) VerifySignature(keys map[string]ed25519.PublicKey) error {
	if r.cp == nil {
		return nil
	}
	return verifyCheckpoint(r.cp, keys)
}

// event is the Event an event line holds.
func (b *eventBody) event() Event {
	t, _ := time.Parse(TimeLayout, b.Time)
	ev := Event{
		Time:                 t,
		Duration:             time.Duration(b.DurationNS),
		TraceID:              b.TraceID,
		OperationID:          b.OperationID,
		ParentOperationID:    b.ParentOperationID,
		ProcessingActivityID: b.ProcessingActivityID,
		DataSubject:          b.DataSubjectID,
		Actor:                b.Actor,
		Roles:                b.Roles,
		Action:               Action(b.Action),
		Categories:           b.Categories,
		Outcome:              Outcome(b.Outcome),
		Method:               b.HTTPMethod,
		Route:                b.Route,
		Status:               b.HTTPStatus,
		BreakGlass:           b.BreakGlass,
		BreakGlassReason:     b.BreakGlassReason,
		Count:                b.Count,
		ItemsWithheld:        b.ItemsWithheld,
	}
	if b.Consent != "" {
		ev.Sharing = &Sharing{
			Agreement: b.Agreement, Partner: b.Partner, LegalBasis: b.LegalBasis, LegalReference: b.LegalReference,
			ConsentMode: b.ConsentMode, Consent: ConsentOutcome(b.Consent), Purpose: b.Purpose, NoticeRequired: b.NoticeRequired,
		}
	}
	return ev
}
