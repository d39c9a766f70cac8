package auditproxy

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
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

// ErrNonCanonicalPath is returned by Match for a path that the proxy and the
// application might read differently: a segment that is "." or "..", holds an
// escaped "/", or is not validly escaped.
var ErrNonCanonicalPath = errors.New("the request path is not canonical (dot segments, escaped slashes or invalid escapes)")

// NewRouter compiles the routes. Each pattern must start with "/" and consist
// of literal segments, "*" (exactly one segment) and at most one "{dossier}"
// (exactly one segment, captured as the dossier id).
func NewRouter(routes []accesspolicy.Route) (*Router, error) {
	rt := &Router{byMethod: map[string][]*compiledRoute{}}
	for i := range routes {
		r := &routes[i]
		segs, err := parsePattern(r.Path)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
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
// path (url.URL.EscapedPath). ok is false when no route matches. Literal
// segments are compared after unescaping; a path that is not canonical gives
// ErrNonCanonicalPath, because the application behind the proxy could read it
// as another route.
func (rt *Router) Match(method, escapedPath string) (m RouteMatch, ok bool, err error) {
	if !strings.HasPrefix(escapedPath, "/") {
		return RouteMatch{}, false, nil
	}
	raw := strings.Split(escapedPath[1:], "/")
	parts := make([]string, len(raw))
	for i, s := range raw {
		if strings.IndexByte(s, '%') < 0 {
			parts[i] = s
		} else {
			u, uerr := url.PathUnescape(s)
			if uerr != nil || strings.Contains(u, "/") {
				return RouteMatch{}, false, ErrNonCanonicalPath
			}
			parts[i] = u
		}
		if parts[i] == "." || parts[i] == ".." {
			return RouteMatch{}, false, ErrNonCanonicalPath
		}
	}
	if rt == nil {
		return RouteMatch{}, false, nil
	}
next:
	for _, cr := range rt.byMethod[method] {
		if len(cr.segments) != len(parts) {
			continue
		}
		m = RouteMatch{Route: cr.route}
		for k, seg := range cr.segments {
			switch seg.kind {
			case segLiteral:
				if parts[k] != seg.literal {
					continue next
				}
			case segDossier:
				if parts[k] == "" {
					continue next
				}
				m.Dossier, m.HasDossier = parts[k], true
			case segAny:
				if parts[k] == "" {
					continue next
				}
			}
		}
		return m, true, nil
	}
	return RouteMatch{}, false, nil
}
