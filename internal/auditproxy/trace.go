package auditproxy

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// TraceparentHeader is the W3C trace-context header.
const TraceparentHeader = "traceparent"

// traceContext is the trace of one request as the proxy records it.
type traceContext struct {
	traceID  string // 32 lowercase hex digits
	parentID string // span id of the caller, "" when none
	flags    string // 2 hex digits
}

// parseTraceparent reads a W3C traceparent value (version 00, or a later
// version read as 00). ok is false for anything malformed, all-zero ids or
// the forbidden version ff.
func parseTraceparent(v string) (tc traceContext, ok bool) {
	v = strings.TrimSpace(v)
	if len(v) < 55 || (len(v) > 55 && v[55] != '-') {
		return traceContext{}, false
	}
	version, trace, parent, flags := v[0:2], v[3:35], v[36:52], v[53:55]
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return traceContext{}, false
	}
	if !isLowerHexString(version) || version == "ff" || (version == "00" && len(v) != 55) {
		return traceContext{}, false
	}
	if !isNonZeroHexID(trace) || !isNonZeroHexID(parent) || !isLowerHexString(flags) {
		return traceContext{}, false
	}
	return traceContext{traceID: trace, parentID: parent, flags: flags}, true
}

// isNonZeroHexID reports whether s is lowercase hex and not all zeros, as
// trace and span ids must be.
func isNonZeroHexID(s string) bool { return isLowerHexString(s) && strings.Trim(s, "0") != "" }

// traceparent is the header value for a request made in span spanID.
func (tc traceContext) traceparent(spanID string) string {
	return "00-" + tc.traceID + "-" + spanID + "-" + tc.flags
}

func isLowerHexString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// randomHexID returns n random bytes in lowercase hex, never all zero.
func randomHexID(n int) string {
	b := make([]byte, n)
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		for _, c := range b {
			if c != 0 {
				return hex.EncodeToString(b)
			}
		}
	}
}

// newTraceContext returns the trace of a request: the caller's, from a valid
// traceparent header, or a new one.
func newTraceContext(header string) traceContext {
	if tc, ok := parseTraceparent(header); ok {
		return tc
	}
	return traceContext{traceID: randomHexID(16), flags: "00"}
}
