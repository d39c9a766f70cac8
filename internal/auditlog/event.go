package auditlog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// FormatVersion is the value of the "v" member of every line of this format.
const FormatVersion = 1

// The values of the "type" member.
const (
	TypeEvent      = "event"
	TypeCheckpoint = "checkpoint"
)

// Genesis is the prev of the first line of a log: 64 zeros.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// TimeLayout is the layout of every timestamp in the log: RFC 3339 in UTC
// with exactly nine fractional digits (nanoseconds).
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// Action is what a request does with the data categories it touches.
type Action string

// The actions, as in the AccessRole and DossierStore APIs.
const (
	ActionRead   Action = "read"
	ActionWrite  Action = "write"
	ActionExport Action = "export"
)

// Outcome is the access decision of the audit proxy.
type Outcome string

// The outcomes.
const (
	OutcomeAllowed Outcome = "allowed"
	OutcomeDenied  Outcome = "denied"
)

// Limits on the members of an event, so that every line stays small.
const (
	maxIDLen       = 256  // actor, route, processing activity, roles
	maxCategoryLen = 64   // one data category
	maxListLen     = 32   // roles, categories
	maxReasonLen   = 1024 // break-glass reason
	maxMethodLen   = 16
	maxLineLen     = 1 << 20 // the verifier rejects longer lines
	maxCount       = 1 << 30 // requests in one aggregate event
)

// PseudonymKeySize is the size of the pseudonym keys dossierguard makes and
// the least it accepts (CheckPseudonymKey): 256 bits for HMAC-SHA-256.
const PseudonymKeySize = 32

// Event is one data processing (dataverwerking) as the audit proxy records
// it. It holds no personal data of the data subject: DataSubject is a keyed
// hash made with [Pseudonymise].
type Event struct {
	// Time is when the processing started. The zero value means the time of
	// Append. It is written in UTC with nanoseconds.
	Time time.Time
	// Duration of the processing; with Time it gives the end time.
	Duration time.Duration

	// TraceID is the W3C trace-context trace id of the request: 32 lowercase
	// hex digits, not all zero (Logboek Dataverwerkingen: trace_id).
	TraceID string
	// OperationID is the id of this processing, the span id: 16 lowercase hex
	// digits, not all zero (Logboek Dataverwerkingen: operation_id).
	OperationID string
	// ParentOperationID is the span id of the calling operation, if any.
	ParentOperationID string

	// ProcessingActivityID is the register entry (verwerkingsactiviteit) the
	// processing belongs to, such as a URI into the register
	// (Logboek Dataverwerkingen: dpl.core.processing_activity_id).
	ProcessingActivityID string
	// DataSubject is the pseudonym of the data subject (betrokkene), made
	// with Pseudonymise; empty when the request concerns no single subject
	// (Logboek Dataverwerkingen: dpl.core.data_subject_id). Never a BSN.
	DataSubject string

	// Actor is the subject id of the professional who made the request, as
	// authenticated by the proxy (for example the OIDC "sub" claim).
	Actor string
	// Roles are the AccessRoles under which the request was decided.
	Roles []string
	// Action is read, write or export.
	Action Action
	// Categories are the data categories the route touches.
	Categories []string
	// Outcome is allowed or denied.
	Outcome Outcome

	// Method is the HTTP method of the request.
	Method string
	// Route is the name of the matched audit route (Logboek
	// Dataverwerkingen: name); empty when no route matched.
	Route string
	// Status is the HTTP status code returned to the client, 0 when none
	// was returned (for example when the client went away).
	Status int

	// BreakGlass is true when access was granted through a break-glass role.
	BreakGlass bool
	// BreakGlassReason is the justification the professional gave; required
	// with BreakGlass and forbidden without it. It must not name people.
	BreakGlassReason string

	// Count, when 2 or more, makes this an aggregate: it stands for Count
	// denied requests of one actor from one source between Time and
	// Time+Duration, recorded as one event by a FloodGuard. 0 is one
	// request.
	Count int

	// ItemsWithheld is, on the completion of an allowed request on a route
	// whose response lists records of many dossiers, how many items the
	// proxy left out because a restriction or objection reaches their
	// dossier: a count, never which.
	ItemsWithheld int

	// Sharing describes a partner's request, decided from SharingAgreements;
	// nil for the requests of staff.
	Sharing *Sharing
}

// ConsentOutcome is what the consent check of a partner's request found.
type ConsentOutcome string

// The consent outcomes.
const (
	// ConsentNotRequired: the legal basis is not consent (LegalObligation,
	// VitalInterest, PublicTask); the client must be told afterwards.
	ConsentNotRequired ConsentOutcome = "not-required"
	// ConsentAgreementCovers: one recorded consent covers the agreement.
	ConsentAgreementCovers ConsentOutcome = "agreement"
	// ConsentGiven: the consent source confirmed consent for the dossier.
	ConsentGiven ConsentOutcome = "given"
	// ConsentNone: the consent source has no consent for the dossier.
	ConsentNone ConsentOutcome = "none"
	// ConsentWithdrawn: the consent was withdrawn.
	ConsentWithdrawn ConsentOutcome = "withdrawn"
	// ConsentUnavailable: the consent source gave no usable answer in time.
	ConsentUnavailable ConsentOutcome = "unavailable"
	// ConsentNotChecked: no agreement got as far as a consent check.
	ConsentNotChecked ConsentOutcome = "not-checked"
)

// Sharing is what an event of a partner's request records about the
// agreement it was decided under.
type Sharing struct {
	// Agreement is the SharingAgreement the request was decided under (for
	// a denial, the one that came closest); empty when none applied.
	Agreement string
	// Partner is the partner organisation (Logboek Dataverwerkingen:
	// dpl.core.receiver).
	Partner string
	// LegalBasis is the AVG art. 6(1) ground (Consent, LegalObligation,
	// VitalInterest, PublicTask).
	LegalBasis string
	// LegalReference is the article of law, for bases without consent.
	LegalReference string
	// ConsentMode is Agreement or PerDossier, empty for other bases.
	ConsentMode string
	// Consent is the outcome of the consent check.
	Consent ConsentOutcome
	// Purpose is the agreement's purpose (doelbinding).
	Purpose string
	// NoticeRequired marks a disclosure without consent that the client
	// must be told about afterwards.
	NoticeRequired bool
}

// lineHeader holds the members every line starts with, in this order.
type lineHeader struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
}

// eventBody holds the members of an event line after the header, in order.
type eventBody struct {
	Time                 string   `json:"time"`
	DurationNS           int64    `json:"duration_ns"`
	TraceID              string   `json:"trace_id"`
	OperationID          string   `json:"operation_id"`
	ParentOperationID    string   `json:"parent_operation_id,omitempty"`
	ProcessingActivityID string   `json:"processing_activity_id"`
	DataSubjectID        string   `json:"data_subject_id,omitempty"`
	Actor                string   `json:"actor"`
	Roles                []string `json:"roles"`
	Action               string   `json:"action"`
	Categories           []string `json:"categories"`
	Outcome              string   `json:"outcome"`
	HTTPMethod           string   `json:"http_method"`
	Route                string   `json:"route"`
	HTTPStatus           int      `json:"http_status"`
	BreakGlass           bool     `json:"break_glass"`
	BreakGlassReason     string   `json:"break_glass_reason,omitempty"`
	Count                int      `json:"count,omitempty"`
	ItemsWithheld        int      `json:"items_withheld,omitempty"`
	// The members of a partner's request; absent for staff.
	Agreement      string `json:"agreement,omitempty"`
	Partner        string `json:"partner,omitempty"`
	LegalBasis     string `json:"legal_basis,omitempty"`
	LegalReference string `json:"legal_reference,omitempty"`
	ConsentMode    string `json:"consent_mode,omitempty"`
	Consent        string `json:"consent,omitempty"`
	Purpose        string `json:"purpose,omitempty"`
	NoticeRequired bool   `json:"notice_required,omitempty"`
}

// checkpointBody holds the members of a checkpoint line after the header.
type checkpointBody struct {
	Time  string `json:"time"`
	KeyID string `json:"key_id"`
	Sig   string `json:"sig"`
}

// eventLine is an event line. Its canonical form, the bytes its hash is
// computed over, is encoding/json's encoding of it with Hash empty.
type eventLine struct {
	lineHeader
	eventBody
	Hash string `json:"hash,omitempty"`
}

// checkpointLine is a checkpoint line; canonical form as for eventLine.
type checkpointLine struct {
	lineHeader
	checkpointBody
	Hash string `json:"hash,omitempty"`
}

// Pseudonymise returns the pseudonym of a data subject for the log: the
// lowercase hex HMAC-SHA-256 of subjectID under key, the store's pseudonym
// key (at least 32 random bytes; see CheckPseudonymKey). The same subject
// gets the same pseudonym within one store, so an auditor holding the key can
// answer "who processed the data of this person", while the log itself holds
// no identifier. Pass identifiers in one canonical form (a BSN as nine
// digits with leading zeros). An empty subjectID gives "" (no data subject).
func Pseudonymise(key []byte, subjectID string) string {
	if subjectID == "" {
		return ""
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(subjectID))
	return hex.EncodeToString(mac.Sum(nil))
}

// CheckPseudonymKey reports whether key is fit for Pseudonymise: at least 32
// bytes. Call it once at startup; a short key makes pseudonyms of a small
// identifier space such as BSNs guessable.
func CheckPseudonymKey(key []byte) error {
	if len(key) < PseudonymKeySize {
		return fmt.Errorf("pseudonym key is %d bytes; it must be at least %d random bytes", len(key), PseudonymKeySize)
	}
	return nil
}

// formatTime formats t in TimeLayout.
func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// encodeEventBody validates ev and returns its body: the JSON object of the
// members after the header. now supplies a zero ev.Time.
func encodeEventBody(ev *Event, now func() time.Time) ([]byte, error) {
	t := ev.Time
	if t.IsZero() {
		t = now()
	}
	if y := t.UTC().Year(); y < 1970 || y > 9999 {
		return nil, errors.New("invalid event: time must be between the years 1970 and 9999")
	}
	b := eventBody{
		Time:                 formatTime(t),
		DurationNS:           int64(ev.Duration),
		TraceID:              ev.TraceID,
		OperationID:          ev.OperationID,
		ParentOperationID:    ev.ParentOperationID,
		ProcessingActivityID: ev.ProcessingActivityID,
		DataSubjectID:        ev.DataSubject,
		Actor:                ev.Actor,
		Roles:                ev.Roles,
		Action:               string(ev.Action),
		Categories:           ev.Categories,
		Outcome:              string(ev.Outcome),
		HTTPMethod:           ev.Method,
		Route:                ev.Route,
		HTTPStatus:           ev.Status,
		BreakGlass:           ev.BreakGlass,
		BreakGlassReason:     ev.BreakGlassReason,
		Count:                ev.Count,
		ItemsWithheld:        ev.ItemsWithheld,
	}
	if sh := ev.Sharing; sh != nil {
		b.Agreement, b.Partner, b.LegalBasis, b.LegalReference = sh.Agreement, sh.Partner, sh.LegalBasis, sh.LegalReference
		b.ConsentMode, b.Consent, b.Purpose, b.NoticeRequired = sh.ConsentMode, string(sh.Consent), sh.Purpose, sh.NoticeRequired
		if b.Consent == "" {
			b.Consent = string(ConsentNotChecked)
		}
	}
	if b.Roles == nil {
		b.Roles = []string{}
	}
	if b.Categories == nil {
		b.Categories = []string{}
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("invalid event: %w", err)
	}
	return appendEventBody(make([]byte, 0, eventBodySize), &b), nil
}

// validate checks the members of an event. Its errors name the member and
// the rule, never the value, so that they carry no personal data.
func (b *eventBody) validate() error {
	if err := b.validateWho(); err != nil {
		return err
	}
	if err := b.validateWhat(); err != nil {
		return err
	}
	return b.validateCount()
}

// validateWho checks when, in which trace, under which activity, about whom
// and by whom.
func (b *eventBody) validateWho() error {
	if _, err := time.Parse(TimeLayout, b.Time); err != nil {
		return fmt.Errorf("time must be RFC 3339 UTC with nine fractional digits (%s)", TimeLayout)
	}
	if b.DurationNS < 0 {
		return errors.New("duration must not be negative")
	}
	if !isHexID(b.TraceID, 32) {
		return errors.New("trace_id must be 32 lowercase hex digits, not all zero")
	}
	if !isHexID(b.OperationID, 16) {
		return errors.New("operation_id must be 16 lowercase hex digits, not all zero")
	}
	if b.ParentOperationID != "" && !isHexID(b.ParentOperationID, 16) {
		return errors.New("parent_operation_id must be empty or 16 lowercase hex digits, not all zero")
	}
	if err := checkText("processing_activity_id", b.ProcessingActivityID, maxIDLen, false); err != nil {
		return err
	}
	if b.DataSubjectID != "" && !isLowerHex(b.DataSubjectID, 64) {
		return errors.New("data_subject_id must be empty or a pseudonym made with Pseudonymise (64 lowercase hex digits), never a raw identifier")
	}
	if err := checkText("actor", b.Actor, maxIDLen, true); err != nil {
		return err
	}
	return checkList("roles", b.Roles, maxIDLen)
}

// validateWhat checks what was done, on which route, with which outcome and
// whether it was break-glass.
func (b *eventBody) validateWhat() error {
	switch Action(b.Action) {
	case ActionRead, ActionWrite, ActionExport:
	default:
		return errors.New("action must be read, write or export")
	}
	if err := checkList("categories", b.Categories, maxCategoryLen); err != nil {
		return err
	}
	switch Outcome(b.Outcome) {
	case OutcomeAllowed, OutcomeDenied:
	default:
		return errors.New("outcome must be allowed or denied")
	}
	if !isToken(b.HTTPMethod, maxMethodLen) {
		return fmt.Errorf("http_method must be an HTTP method token of at most %d characters", maxMethodLen)
	}
	if err := checkText("route", b.Route, maxIDLen, false); err != nil {
		return err
	}
	if b.HTTPStatus != 0 && (b.HTTPStatus < 100 || b.HTTPStatus > 599) {
		return errors.New("http_status must be 0 or an HTTP status code (100-599)")
	}
	if b.BreakGlass {
		if err := checkText("break_glass_reason", b.BreakGlassReason, maxReasonLen, true); err != nil {
			return fmt.Errorf("%w (a break-glass access needs its justification)", err)
		}
	} else if b.BreakGlassReason != "" {
		return errors.New("break_glass_reason must be empty unless break_glass is true")
	}
	return b.validateSharing()
}

// validateSharingEnums checks the members of a partner's request that take
// one of a fixed set of values.
func (b *eventBody) validateSharingEnums() error {
	switch ConsentOutcome(b.Consent) {
	case ConsentNotRequired, ConsentAgreementCovers, ConsentGiven, ConsentNone, ConsentWithdrawn, ConsentUnavailable, ConsentNotChecked:
	default:
		return errors.New("consent must be not-required, agreement, given, none, withdrawn, unavailable or not-checked")
	}
	switch b.LegalBasis {
	case "", "Consent", "LegalObligation", "VitalInterest", "PublicTask":
	default:
		return errors.New("legal_basis must be Consent, LegalObligation, VitalInterest or PublicTask")
	}
	switch b.ConsentMode {
	case "", "Agreement", "PerDossier":
	default:
		return errors.New("consent_mode must be empty, Agreement or PerDossier")
	}
	return nil
}

// validateSharing checks the members of a partner's request.
func (b *eventBody) validateSharing() error {
	if b.Consent == "" {
		if b.Agreement != "" || b.Partner != "" || b.LegalBasis != "" || b.LegalReference != "" || b.ConsentMode != "" || b.Purpose != "" || b.NoticeRequired {
			return errors.New("the members of a partner's request (agreement, partner, legal_basis, ...) need consent")
		}
		return nil
	}
	if err := b.validateSharingEnums(); err != nil {
		return err
	}
	for _, m := range []struct{ name, value string }{
		{"agreement", b.Agreement}, {"partner", b.Partner}, {"legal_reference", b.LegalReference}, {"purpose", b.Purpose},
	} {
		if err := checkText(m.name, m.value, maxIDLen, false); err != nil {
			return err
		}
	}
	if b.NoticeRequired && (b.Agreement == "" || b.Outcome != string(OutcomeAllowed)) {
		return errors.New("notice_required is only for an allowed disclosure under an agreement")
	}
	return nil
}

// validateCount checks the count of an aggregate and the items withheld.
func (b *eventBody) validateCount() error {
	if b.Count != 0 && (b.Count < 2 || b.Count > maxCount || Outcome(b.Outcome) != OutcomeDenied) {
		return fmt.Errorf("count must be absent, or between 2 and %d on a denied event (an aggregate)", maxCount)
	}
	if b.ItemsWithheld != 0 && (b.ItemsWithheld < 0 || b.ItemsWithheld > maxCount || Outcome(b.Outcome) != OutcomeAllowed) {
		return fmt.Errorf("items_withheld must be absent, or between 1 and %d on an allowed event", maxCount)
	}
	return nil
}

// checkText checks a free-text member: valid UTF-8, at most max bytes, and
// non-empty when required.
func checkText(name, s string, max int, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return fmt.Errorf("%s is required", name)
	case len(s) > max:
		return fmt.Errorf("%s must be at most %d bytes", name, max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s must be valid UTF-8", name)
	}
	return nil
}

// checkList checks a list member: at most maxListLen non-empty items.
func checkList(name string, items []string, max int) error {
	if len(items) > maxListLen {
		return fmt.Errorf("%s must have at most %d items", name, maxListLen)
	}
	for i, s := range items {
		if err := checkText("", s, max, true); err != nil {
			// Named only now: building the name costs an allocation.
			return checkText(name+"["+strconv.Itoa(i)+"]", s, max, true)
		}
	}
	return nil
}

// isLowerHex reports whether s is n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isHexID reports whether s is n lowercase hex digits, not all zero.
func isHexID(s string, n int) bool {
	return isLowerHex(s, n) && strings.Trim(s, "0") != ""
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110) of at
// most max bytes.
func isToken(s string, max int) bool {
	return len(s) <= max && httpguts.ValidHeaderFieldName(s)
}
