package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// hashMember is what precedes the hash at the end of every line; the line
// ends with hashMember, 64 lowercase hex digits and `"}`.
const hashMember = `,"hash":"`

// hashSuffixLen is the length of the hash member and the closing brace.
const hashSuffixLen = len(hashMember) + 64 + len(`"}`)

// checkpointDomain starts the message a checkpoint signature covers.
const checkpointDomain = "dossierguard-auditlog-checkpoint-v1\n"

// appendLine appends a complete line (with its newline) to dst: the header
// for typ, seq and prev, then the members of body (a JSON object), then the
// hash. It returns the extended slice and the line's hash.
//
// The bytes hashed are exactly encoding/json's encoding of the line struct
// with an empty Hash (TestLineIsEncodingJSON holds this); the hash member is
// then spliced in before the closing brace.
func appendLine(dst []byte, typ string, seq uint64, prev *[64]byte, body []byte) ([]byte, [64]byte) {
	start := len(dst)
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, FormatVersion, 10)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prev[:]...)
	dst = append(dst, `",`...)
	dst = append(dst, body[1:]...) // body is {...}: drop its opening brace
	sum := sha256.Sum256(dst[start:])
	var h [64]byte
	hex.Encode(h[:], sum[:])
	dst = dst[:len(dst)-1] // the closing brace
	dst = append(dst, hashMember...)
	dst = append(dst, h[:]...)
	dst = append(dst, "\"}\n"...)
	return dst, h
}

// checkpointMessage is the message a checkpoint's Ed25519 signature covers.
func checkpointMessage(seq uint64, prev, ts, keyID string) []byte {
	m := make([]byte, 0, len(checkpointDomain)+20+1+64+1+len(ts)+1+len(keyID)+1)
	m = append(m, checkpointDomain...)
	m = strconv.AppendUint(m, seq, 10)
	m = append(m, '\n')
	m = append(m, prev...)
	m = append(m, '\n')
	m = append(m, ts...)
	m = append(m, '\n')
	m = append(m, keyID...)
	m = append(m, '\n')
	return m
}

// checkpointBodyJSON returns the body of a signed checkpoint line.
func checkpointBodyJSON(priv ed25519.PrivateKey, keyID string, seq uint64, prev *[64]byte, t time.Time) []byte {
	ts := formatTime(t)
	sig := ed25519.Sign(priv, checkpointMessage(seq, string(prev[:]), ts, keyID))
	b, _ := json.Marshal(&checkpointBody{Time: ts, KeyID: keyID, Sig: hex.EncodeToString(sig)})
	return b
}

// lineInfo is what the chain checks need to know about one line.
type lineInfo struct {
	typ     string
	seq     uint64 // 0 when the line has no valid seq
	prev    string
	claimed string // the hash the line claims
	hashOK  bool   // claimed equals the SHA-256 of the canonical bytes
}

// inspectLine reads the chain members of a line (without its newline). Its
// error means the line is malformed: not a JSON object, or not ending with a
// well-formed hash member.
func inspectLine(line []byte) (lineInfo, error) {
	var li lineInfo
	if len(line) > maxLineLen {
		return li, fmt.Errorf("line is longer than %d bytes", maxLineLen)
	}
	if !json.Valid(line) {
		return li, errors.New("line is not valid JSON")
	}
	n := len(line)
	if n < hashSuffixLen+1 || line[0] != '{' ||
		string(line[n-hashSuffixLen:n-hashSuffixLen+len(hashMember)]) != hashMember ||
		string(line[n-2:]) != `"}` || !isLowerHex(string(line[n-66:n-2]), 64) {
		return li, errors.New(`line does not end with the hash member ,"hash":"<64 lowercase hex digits>"}`)
	}
	li.claimed = string(line[n-66 : n-2])
	h := sha256.New()
	h.Write(line[:n-hashSuffixLen])
	h.Write([]byte{'}'})
	li.hashOK = hex.EncodeToString(h.Sum(nil)) == li.claimed

	// The chain members, as well as they can be read: a member of the wrong
	// type is left empty (json.Unmarshal skips it and reports a type error).
	var hdr struct {
		Type string          `json:"type"`
		Seq  json.RawMessage `json:"seq"`
		Prev string          `json:"prev"`
	}
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(line, &hdr); err != nil && !errors.As(err, &typeErr) {
		return li, errors.New("line is not a JSON object")
	}
	li.typ, li.prev = hdr.Type, hdr.Prev
	if s, err := strconv.ParseUint(string(hdr.Seq), 10, 64); err == nil && s > 0 {
		li.seq = s
	}
	return li, nil
}

// decodeStrict decodes a line into v, rejecting unknown members.
func decodeStrict(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkStructure checks that a line with a valid hash is a line this format
// allows: version, type, and the members of that type. It returns the
// checkpoint when the line is one.
func checkStructure(line []byte, li *lineInfo) (*checkpointLine, error) {
	d, err := decodeLine(line, li)
	return d.cp, err
}

// decodedLine is a line decoded by decodeLine: one of its members is set.
type decodedLine struct {
	ev *eventLine
	cp *checkpointLine
	g  *genesisLine
}

// decodeLine is checkStructure that also returns the decoded line.
func decodeLine(line []byte, li *lineInfo) (decodedLine, error) {
	var d decodedLine
	var err error
	switch li.typ {
	case TypeEvent:
		d.ev, err = decodeEvent(line)
	case TypeCheckpoint:
		d.cp, err = decodeCheckpoint(line)
	case TypeGenesis:
		d.g, err = decodeGenesis(line)
	default:
		err = errors.New(`type must be "event", "checkpoint" or "genesis"`)
	}
	return d, err
}

func decodeEvent(line []byte) (*eventLine, error) {
	var l eventLine
	if err := decodeStrict(line, &l); err != nil {
		return nil, fmt.Errorf("event line does not have the members of format version %d: %v", FormatVersion, sanitizeJSONError(err))
	}
	if err := checkHeader(&l.lineHeader); err != nil {
		return nil, err
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("event line is invalid: %w", err)
	}
	return &l, nil
}

func decodeCheckpoint(line []byte) (*checkpointLine, error) {
	var l checkpointLine
	if err := decodeStrict(line, &l); err != nil {
		return nil, fmt.Errorf("checkpoint line does not have the members of format version %d: %v", FormatVersion, sanitizeJSONError(err))
	}
	if err := checkHeader(&l.lineHeader); err != nil {
		return nil, err
	}
	if _, err := time.Parse(TimeLayout, l.Time); err != nil {
		return nil, fmt.Errorf("checkpoint time must be in the layout %s", TimeLayout)
	}
	if !isLowerHex(l.KeyID, 16) {
		return nil, errors.New("checkpoint key_id must be 16 lowercase hex digits")
	}
	if !isLowerHex(l.Sig, 2*ed25519.SignatureSize) {
		return nil, fmt.Errorf("checkpoint sig must be %d lowercase hex digits", 2*ed25519.SignatureSize)
	}
	return &l, nil
}

func decodeGenesis(line []byte) (*genesisLine, error) {
	var l genesisLine
	if err := decodeStrict(line, &l); err != nil {
		return nil, fmt.Errorf("genesis line does not have the members of format version %d: %v", FormatVersion, sanitizeJSONError(err))
	}
	if err := checkHeader(&l.lineHeader); err != nil {
		return nil, err
	}
	if l.Seq != 1 || l.Prev != Genesis {
		return nil, errors.New("a genesis line must be the first line of its chain (seq 1, prev the genesis value)")
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

func checkHeader(h *lineHeader) error {
	if h.V != FormatVersion {
		return fmt.Errorf("format version (v) must be %d", FormatVersion)
	}
	if h.Seq == 0 {
		return errors.New("seq must be a positive integer")
	}
	if !isLowerHex(h.Prev, 64) {
		return errors.New("prev must be 64 lowercase hex digits")
	}
	return nil
}

// sanitizeJSONError keeps the kind of a decoding error and the member it is
// about, but not the offending value, which could be personal data.
func sanitizeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("member %q has the wrong type (%s, want %s)", te.Field, te.Value, te.Type)
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120] + "..."
	}
	return msg
}

// verifyCheckpoint checks a checkpoint's signature with the key named by its
// key_id. Its error is the detail of a bad-signature break.
func verifyCheckpoint(cp *checkpointLine, keys map[string]ed25519.PublicKey) error {
	pub, ok := keys[cp.KeyID]
	if !ok {
		return fmt.Errorf("checkpoint was signed with key %s, which is not among the public keys given (%s)", cp.KeyID, keyIDList(keys))
	}
	sig, err := hex.DecodeString(cp.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("checkpoint sig is not an Ed25519 signature")
	}
	if !ed25519.Verify(pub, checkpointMessage(cp.Seq, cp.Prev, cp.Time, cp.KeyID), sig) {
		return fmt.Errorf("the Ed25519 signature of key %s does not match the checkpoint: the chain before it was rewritten or the checkpoint was forged", cp.KeyID)
	}
	return nil
}
