package auditproxy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// DossierPlaceholder is the path segment of a route pattern that captures the
// dossier id.
const DossierPlaceholder = "{dossier}"

// segmentKind is what one segment of a route pattern matches.
type segmentKind uint8

const (
	segLiteral segmentKind = iota // exactly this text
	segDossier                    // one non-empty segment, captured as the dossier id
	segAny                        // one non-empty segment
)

type segment struct {
	kind    segmentKind
	literal string
}

// compiledRoute is a route of the document with its parsed pattern.
type compiledRoute struct {
	route    *accesspolicy.Route
	segments []segment
}

// Router matches requests to the routes of an access-policy document.
type Router struct {
	byMethod map[string][]*compiledRoute
	// literals holds the literal segments of every pattern, exact and in
	// lower case, to refuse case variants of them.
	literals, foldedLiterals map[string]bool
}

// RouteMatch is the route a request matched.
type RouteMatch struct {
	// Route is the matched route of the document.
	Route *accesspolicy.Route
	// Dossier is the dossier id captured by {dossier}, unescaped; empty when
	// the pattern has no {dossier}.
	Dossier string
	// HasDossier is true when the pattern has {dossier}.
	HasDossier bool
}

// ErrNonCanonicalPath is returned by Match, wrapped in a *PathError that
// says which rule the path breaks, for a path that the proxy and the
// application might read as different routes or different dossiers.
var ErrNonCanonicalPath = errors.New("the request path is not canonical")

// PathError is why a request path is not canonical. Reason never holds the
// path or the dossier id.
type PathError struct{ Reason string }

func (e *PathError) Error() string { return ErrNonCanonicalPath.Error() + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrNonCanonicalPath) true.
func (e *PathError) Unwrap() error { return ErrNonCanonicalPath }

// The rules a canonical request path keeps; see Match.
var (
	errPathCharacter   = &PathError{"a segment may hold only letters, digits, - . _ ~ (also when percent-encoded): no ;, \\, encoded /, %00, control, space or non-ASCII characters"}
	errPathEscape      = &PathError{"a percent-escape is not % and two hex digits"}
	errPathEmpty       = &PathError{"empty segments (// or a trailing /) are not allowed"}
	errPathDotSegment  = &PathError{". and .. segments are not allowed"}
	errPathTrailingDot = &PathError{"a segment must not end in ."}
	errPathCase        = &PathError{"a segment differs only in letter case from a literal segment of the access policy; use the route's spelling"}
	errPathDossier     = &PathError{fmt.Sprintf("the dossier id must be 1 to %d letters, digits and -", MaxDossierIDLen)}
)

// MaxDossierIDLen is the longest dossier id the {dossier} placeholder
// captures.
const MaxDossierIDLen = 64

// canonicalDossierID reports whether id is in the one form the proxy
// accepts for a dossier id: 1 to MaxDossierIDLen ASCII letters, digits and
// hyphens.
func canonicalDossierID(id string) bool {
	if id == "" || len(id) > MaxDossierIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isASCIIAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// DossierPseudonym is the data subject recorded for a dossier id: the
// keyed pseudonym (auditlog.Pseudonymise) of the id with ASCII letters in
// lower case, so that an application that reads ids without regard to case
// cannot give one dossier two pseudonyms. A search for a dossier's events
// computes the pseudonym the same way.
func DossierPseudonym(key []byte, id string) string {
	return auditlog.Pseudonymise(key, strings.ToLower(id))
}

func isASCIIAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return isASCIIAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// canonicalSegment decodes one escaped path segment and checks that it is
// canonical: non-empty, only unreserved characters once decoded (an escape
// may stand only for one of them), not . or .., not ending in a dot.
func canonicalSegment(raw string) (string, error) {
	if raw == "" {
		return "", errPathEmpty
	}
	var b strings.Builder
	escaped := strings.IndexByte(raw, '%') >= 0
	if escaped {
		b.Grow(len(raw))
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return "", errPathEscape
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return "", errPathEscape
			}
			c = hi<<4 | lo
			i += 2
		}
		if !isUnreserved(c) {
			return "", errPathCharacter
		}
		if escaped {
			b.WriteByte(c)
		}
	}
	seg := raw
	if escaped {
		seg = b.String()
	}
	switch {
	case seg == "." || seg == "..":
		return "", errPathDotSegment
	case seg[len(seg)-1] == '.':
		return "", errPathTrailingDot
	}
	return seg, nil
}

// NewRouter compiles the routes. Each pattern must start with "/" and consist
// of literal segments, "*" (exactly one segment) and at most one "{dossier}"
// (exactly one segment, captured as the dossier id).
func NewRouter(routes []accesspolicy.Route) (*Router, error) {
	rt := &Router{byMethod: map[string][]*compiledRoute{}, literals: map[string]bool{}, foldedLiterals: map[string]bool{}}
	for i := range routes {
		r := &routes[i]
		segs, err := parsePattern(r.Path)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
		for _, seg := range segs {
			if seg.kind == segLiteral {
				rt.literals[seg.literal] = true
				rt.foldedLiterals[strings.ToLower(seg.literal)] = true
			}
		}
		rt.byMethod[r.Method] = append(rt.byMethod[r.Method], &compiledRoute{route: r, segments: segs})
	}
	// Most specific first: at the first segment where two patterns differ,
	// a literal beats a placeholder. Equal patterns keep document order.
	for _, list := range rt.byMethod {
		sort.SliceStable(list, func(i, j int) bool { return moreSpecific(list[i].segments, list[j].segments) })
	}
	return rt, nil
}

// moreSpecific orders patterns of the same length by their first differing
// segment kind (literal before placeholder); patterns of different lengths
// never match the same path, so any consistent order will do for them.
func moreSpecific(a, b []segment) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	for k := range a {
		la, lb := a[k].kind == segLiteral, b[k].kind == segLiteral
		if la != lb {
			return la
		}
	}
	return false
}

func parsePattern(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path pattern must start with /")
	}
	parts := strings.Split(p[1:], "/")
	segs := make([]segment, 0, len(parts))
	dossiers := 0
	for _, part := range parts {
		switch {
		case part == DossierPlaceholder:
			dossiers++
			segs = append(segs, segment{kind: segDossier})
		case part == "*":
			segs = append(segs, segment{kind: segAny})
		case strings.ContainsAny(part, "{}*"):
			return nil, fmt.Errorf("path pattern segment %q is neither literal, * nor %s", part, DossierPlaceholder)
		case part == "." || part == "..":
			return nil, fmt.Errorf("path pattern must not hold dot segments")
		default:
			segs = append(segs, segment{kind: segLiteral, literal: part})
		}
	}
	if dossiers > 1 {
		return nil, fmt.Errorf("path pattern holds %s more than once", DossierPlaceholder)
	}
	return segs, nil
}

// Match finds the most specific route for a method and an escaped request
// path (url.URL.EscapedPath). ok is false when no route matches.
//
// Only a canonical path is matched; any other gives a *PathError (errors.Is
// ErrNonCanonicalPath), because an application server could normalise it to
// another route or another dossier than the proxy saw. A canonical path is
// "/" or "/" and segments separated by single slashes, each non-empty and,
// once percent-decoded, made only of RFC 3986 unreserved characters
// (letters, digits, - . _ ~; so no ;, backslash, encoded slash, NUL,
// control, space, % or non-ASCII), neither . nor .. nor ending in a dot, and
// not a case variant of a literal segment of the document. Segments are
// compared decoded (%64ossiers is dossiers). A {dossier} segment must also
// be a canonical dossier id: 1 to MaxDossierIDLen letters, digits and -.
func (rt *Router) Match(method, escapedPath string) (m RouteMatch, ok bool, err error) {
	if !strings.HasPrefix(escapedPath, "/") {
		return RouteMatch{}, false, nil
	}
	parts, err := rt.canonicalParts(escapedPath)
	if err != nil || rt == nil {
		return RouteMatch{}, false, err
	}
	for _, cr := range rt.byMethod[method] {
		if m, ok, err := cr.match(parts); ok || err != nil {
			return m, ok, err
		}
	}
	return RouteMatch{}, false, nil
}

// canonicalParts decodes the segments of a path that starts with "/", or
// says which rule of a canonical path it breaks. "/" is one empty segment.
func (rt *Router) canonicalParts(escapedPath string) ([]string, error) {
	if escapedPath == "/" {
		return []string{""}, nil
	}
	raw := strings.Split(escapedPath[1:], "/")
	parts := make([]string, len(raw))
	for i, s := range raw {
		seg, err := canonicalSegment(s)
		if err != nil {
			return nil, err
		}
		if rt != nil && !rt.literals[seg] && rt.foldedLiterals[strings.ToLower(seg)] {
			return nil, errPathCase
		}
		parts[i] = seg
	}
	return parts, nil
}

// match matches the decoded segments of a path against the route's
// pattern; a {dossier} segment that is no canonical dossier id is an error.
func (cr *compiledRoute) match(parts []string) (RouteMatch, bool, error) {
	if len(cr.segments) != len(parts) {
		return RouteMatch{}, false, nil
	}
	m := RouteMatch{Route: cr.route}
	for k, seg := range cr.segments {
		switch {
		case seg.kind == segLiteral:
			if parts[k] != seg.literal {
				return RouteMatch{}, false, nil
			}
		case parts[k] == "":
			return RouteMatch{}, false, nil // {dossier} and * need a segment
		case seg.kind == segDossier:
			if !canonicalDossierID(parts[k]) {
				return RouteMatch{}, false, errPathDossier
			}
			m.Dossier, m.HasDossier = parts[k], true
		}
	}
	return m, true, nil
}
