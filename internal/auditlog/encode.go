package auditlog

import (
	"strconv"
	"unicode/utf8"
)

// This file encodes the body of an event line without reflection, on the
// request path of the audit proxy and the egress gateway. The bytes are
// exactly those of encoding/json's Marshal of eventBody (member order,
// omitempty, string escaping with HTML characters escaped); the tests
// TestEventBodyIsEncodingJSON and FuzzEventBodyIsEncodingJSON hold this,
// because a line's hash is computed over encoding/json's encoding of it.

// eventBodySize is the capacity an event body is encoded into: a staff
// request's body is about 500 bytes.
const eventBodySize = 640

// appendEventBody appends the JSON object of b's members to dst.
func appendEventBody(dst []byte, b *eventBody) []byte {
	dst = appendMember(dst, '{', "time", b.Time)
	dst = append(dst, `,"duration_ns":`...)
	dst = strconv.AppendInt(dst, b.DurationNS, 10)
	dst = appendMember(dst, ',', "trace_id", b.TraceID)
	dst = appendMember(dst, ',', "operation_id", b.OperationID)
	dst = appendOptional(dst, "parent_operation_id", b.ParentOperationID)
	dst = appendMember(dst, ',', "processing_activity_id", b.ProcessingActivityID)
	dst = appendOptional(dst, "data_subject_id", b.DataSubjectID)
	dst = appendMember(dst, ',', "actor", b.Actor)
	dst = appendList(dst, "roles", b.Roles)
	dst = appendMember(dst, ',', "action", b.Action)
	dst = appendList(dst, "categories", b.Categories)
	dst = appendMember(dst, ',', "outcome", b.Outcome)
	dst = appendMember(dst, ',', "http_method", b.HTTPMethod)
	dst = appendMember(dst, ',', "route", b.Route)
	dst = append(dst, `,"http_status":`...)
	dst = strconv.AppendInt(dst, int64(b.HTTPStatus), 10)
	dst = append(dst, `,"break_glass":`...)
	dst = strconv.AppendBool(dst, b.BreakGlass)
	dst = appendOptional(dst, "break_glass_reason", b.BreakGlassReason)
	dst = appendOptionalInt(dst, "count", b.Count)
	dst = appendOptionalInt(dst, "items_withheld", b.ItemsWithheld)
	for _, m := range [...]struct{ name, value string }{
		{"agreement", b.Agreement}, {"partner", b.Partner}, {"legal_basis", b.LegalBasis},
		{"legal_reference", b.LegalReference}, {"consent_mode", b.ConsentMode}, {"consent", b.Consent}, {"purpose", b.Purpose},
	} {
		dst = appendOptional(dst, m.name, m.value)
	}
	if b.NoticeRequired {
		dst = append(dst, `,"notice_required":true`...)
	}
	return append(dst, '}')
}

// appendMember appends sep, the member name (plain ASCII, no escaping
// needed) and the string value.
func appendMember(dst []byte, sep byte, name, value string) []byte {
	dst = append(dst, sep, '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, value)
}

// appendOptional appends a string member unless it is empty (omitempty).
func appendOptional(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	return appendMember(dst, ',', name, value)
}

// appendOptionalInt appends an int member unless it is 0 (omitempty).
func appendOptionalInt(dst []byte, name string, value int) []byte {
	if value == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, int64(value), 10)
}

// appendList appends a list of strings; nil is null, as encoding/json
// writes it.
func appendList(dst []byte, name string, items []string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	if items == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json
// encodes it: ", \ and the control characters escaped (\b, \f, \n, \r, \t
// short, the others as \u00XX), <, > and & as \u003c, \u003e and \u0026,
// invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedByte(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscapedByte appends the escape of an ASCII byte that encoding/json
// does not write as it is.
func appendEscapedByte(dst []byte, c byte) []byte {
	switch c {
	case '\\', '"':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}
