package auditproxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

func testRoutes() []accesspolicy.Route {
	r := func(name, method, path string) accesspolicy.Route {
		return accesspolicy.Route{Name: name, Method: method, Path: path,
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}, Action: v1alpha1.ActionRead}
	}
	return []accesspolicy.Route{
		r("list", "GET", "/api/dossiers"),
		r("read-dossier", "GET", "/api/dossiers/{dossier}"),
		r("read-plan", "GET", "/api/dossiers/{dossier}/plan"),
		r("write-plan", "PUT", "/api/dossiers/{dossier}/plan"),
		r("any-attachment", "GET", "/api/dossiers/{dossier}/attachments/*"),
		r("search", "GET", "/api/dossiers/search"),
		r("wild-reports", "GET", "/api/*/{dossier}/reports"),
		r("team-reports", "GET", "/api/teams/{dossier}/reports"),
		r("root", "GET", "/"),
	}
}

func TestRouterMatch(t *testing.T) {
	rt, err := NewRouter(testRoutes())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		route        string // "" means no match
		dossier      string
		err          error
	}{
		{"GET", "/api/dossiers", "list", "", nil},
		{"GET", "/api/dossiers/D-123", "read-dossier", "D-123", nil},
		{"GET", "/api/dossiers/D-123/plan", "read-plan", "D-123", nil},
		{"PUT", "/api/dossiers/D-123/plan", "write-plan", "D-123", nil},
		{"POST", "/api/dossiers/D-123/plan", "", "", nil},                 // method mismatch
		{"HEAD", "/api/dossiers/D-123", "", "", nil},                      // HEAD is its own method
		{"GET", "/api/dossiers/D-123/plan/", "", "", ErrNonCanonicalPath}, // trailing slash: an empty segment
		{"GET", "/api/dossiers/", "", "", ErrNonCanonicalPath},            // ... here where {dossier} would be
		{"GET", "/api/dossiers//plan", "", "", ErrNonCanonicalPath},       // empty segment
		{"GET", "/api/dossiers/search", "search", "", nil},                // literal beats {dossier}
		{"GET", "/api/dossiers/D-1/attachments/a.pdf", "any-attachment", "D-1", nil},
		{"GET", "/api/dossiers/D-1/attachments", "", "", nil},                  // * is exactly one segment
		{"GET", "/api/dossiers/D-1/attachments/a/b", "", "", nil},              // ... not two
		{"GET", "/api/dossiers/D-1/attachments/", "", "", ErrNonCanonicalPath}, // ... and not an empty one
		{"GET", "/api/teams/T-9/reports", "team-reports", "T-9", nil},          // literal beats *
		{"GET", "/api/groups/G-9/reports", "wild-reports", "G-9", nil},         // * matches one segment
		{"GET", "/api/dossiers/D%2DX", "read-dossier", "D-X", nil},             // captured id is unescaped
		{"GET", "/api/dossiers/D%20X", "", "", ErrNonCanonicalPath},            // ... and must be canonical
		{"GET", "/api/%64ossiers/D-5", "read-dossier", "D-5", nil},             // literals compare unescaped
		{"GET", "/api/dossiers/a%2Fb", "", "", ErrNonCanonicalPath},            // escaped slash
		{"GET", "/api/dossiers/../admin", "", "", ErrNonCanonicalPath},         // dot segment
		{"GET", "/api/dossiers/%2e%2e/plan", "", "", ErrNonCanonicalPath},      // escaped dot segment
		{"GET", "/api/dossiers/%zz", "", "", ErrNonCanonicalPath},              // bad escape
		{"GET", "/", "root", "", nil},
		{"GET", "", "", "", nil},
		{"GET", "/other", "", "", nil},
	}
	for _, tt := range tests {
		m, ok, err := rt.Match(tt.method, tt.path)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s %s: error %v, want %v", tt.method, tt.path, err, tt.err)
			continue
		}
		got := ""
		if ok {
			got = m.Route.Name
		}
		if got != tt.route || m.Dossier != tt.dossier || m.HasDossier != (tt.dossier != "") {
			t.Errorf("%s %s: matched %q dossier %q (has %v), want %q dossier %q", tt.method, tt.path, got, m.Dossier, m.HasDossier, tt.route, tt.dossier)
		}
	}
}

func TestRouterRefusesBadPatterns(t *testing.T) {
	for _, path := range []string{
		"api/dossiers",             // no leading slash
		"/api/{dossier}/{dossier}", // two captures
		"/api/{id}",                // unknown placeholder
		"/api/dossier*",            // partial wildcard
		"/api/../x",                // dot segment
	} {
		_, err := NewRouter([]accesspolicy.Route{{Name: "r", Method: "GET", Path: path}})
		if err == nil {
			t.Errorf("pattern %q accepted", path)
		}
	}
}

func TestRouterNilMatchesNothing(t *testing.T) {
	var rt *Router
	if _, ok, err := rt.Match("GET", "/x"); ok || err != nil {
		t.Errorf("nil router matched: %v %v", ok, err)
	}
}

// pathTricks are request paths that an application server (Tomcat, Spring,
// Express, IIS, PHP, Rack, Python) can normalise to another route than the
// one they look like; the router must refuse every one as non-canonical.
var pathTricks = []string{
	"/api/dossiers/D-1/..;/admin",         // Tomcat: ..; is ..
	"/api/dossiers/D-1;v=1/plan",          // ; path parameters
	"/api/dossiers;x/D-1",                 // ... on a literal
	"/api/dossiers/D-1/plan;jsessionid=1", // ... at the end
	"/api/dossiers/D-1%3Bv=1/plan",        // encoded ;
	"/api/dossiers/D-1\\..\\admin",        // raw backslashes
	"/api/dossiers/D-1%5C..%5Cadmin",      // encoded backslashes
	"/api/dossiers/D-1%5cplan",            // ... lower-case hex
	"/api/dossiers/D-1%2Fplan",            // encoded slash
	"/api/dossiers/D-1%2fplan",            // ... lower-case hex
	"/api/dossiers/D-1%00/plan",           // NUL
	"/api/dossiers/D-1%00",                // NUL after the id
	"/api/dossiers/D-1%0A",                // line feed
	"/api/dossiers/D-1%09",                // tab
	"/api/dossiers/D-1%7F",                // DEL
	"/api/dossiers/D-1/./plan",            // dot segment
	"/api/dossiers/D-1/%2e/plan",          // encoded dot segment
	"/api/dossiers/D-1/.%2E/plan",         // half-encoded
	"/api/dossiers/../dossiers/D-1",       // dot-dot
	"/api/dossiers//D-1",                  // double slash
	"//api/dossiers/D-1",                  // ... at the start
	"/api/dossiers/D-1/plan/",             // trailing slash (Express, Spring < 6)
	"/api/dossiers/D-1.",                  // trailing dot (IIS, Windows)
	"/api/dossiers/D-1/plan.",             // ... on a literal
	"/api/dossiers/D-1/plan%2E",           // ... encoded
	"/api/dossiers/D-1%20",                // trailing space
	"/api/dossiers/D-1%20/plan",           // ... mid-path
	"/api/dossiers/D 1",                   // raw space
	"/api/dossiers/D-1%",                  // broken escape
	"/api/dossiers/D-1%2",                 // ... short
	"/api/dossiers/D-1%zz",                // ... not hex
	"/api/dossiers/%u002e%u002e/admin",    // IIS %u escapes
	"/api/dossiers/%252e%252e/admin",      // double encoding
	"/api/dossiers/D-1%252Fplan",          // ... of a slash
	"/api/dossiers/%C0%AE%C0%AE/admin",    // overlong UTF-8 dots
	"/api/dossiers/%E0%80%AE/admin",       // ... three bytes
	"/api/dossiers/%EF%BC%8E%EF%BC%8E",    // fullwidth dots (NFKC normalises to ..)
	"/api/dossiers/D\u20131",              // en dash, raw
	"/api/dossiers/D-1/PLAN",              // case variant of a literal (ASP.NET, IIS)
	"/api/Dossiers/D-1",                   // ... earlier
	"/api/dossiers/D-1/Attachments/a.pdf", // ... before a *
	"/api/dossiers/D-1/attachments/a.pdf;.js",
	"/api/dossiers/D-1/attachments/a%00.pdf",
	"/api/dossiers/D-1/attachments/a:b", // NTFS alternate stream
	"/api/dossiers/D-1/attachments/a+b", // + read as a space by some
	"/api/dossiers/D_1",                 // not a canonical dossier id
	"/api/dossiers/D.1",                 // ...
	"/api/dossiers/" + strings.Repeat("D", MaxDossierIDLen+1),
}

func TestRouterRefusesPathTricks(t *testing.T) {
	rt, err := NewRouter(testRoutes())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range pathTricks {
		m, ok, err := rt.Match("GET", path)
		if !errors.Is(err, ErrNonCanonicalPath) {
			t.Errorf("GET %q: matched %v (%+v) with error %v, want ErrNonCanonicalPath", path, ok, m, err)
		}
	}
}

func TestRouterDossierCanonicalForm(t *testing.T) {
	rt, err := NewRouter(testRoutes())
	if err != nil {
		t.Fatal(err)
	}
	// Variants of one id: each is refused or gives the same pseudonym.
	key := newTestKeys(t).pseudonym
	want := DossierPseudonym(key, "D-1")
	for _, path := range []string{
		"/api/dossiers/D-1", "/api/dossiers/d-1", "/api/dossiers/D%2D1", "/api/dossiers/%44-1",
		"/api/dossiers/D-1.", "/api/dossiers/D-1%20", "/api/dossiers/D-1;v=2", "/api/dossiers/D-1%00", "/api/dossiers/D-1%0a",
		"/api/dossiers/D-1%2e", "/api/dossiers/%20D-1", "/api/dossiers/D-1%09", "/api/dossiers/D-1~", "/api/dossiers/D-1_",
	} {
		m, ok, err := rt.Match("GET", path)
		if err != nil {
			continue
		}
		if !ok || !m.HasDossier {
			t.Errorf("%q: no dossier route", path)
			continue
		}
		if got := DossierPseudonym(key, m.Dossier); got != want {
			t.Errorf("%q: dossier %q gives another pseudonym than D-1", path, m.Dossier)
		}
	}
	if m, ok, err := rt.Match("GET", "/api/dossiers/"+strings.Repeat("a", MaxDossierIDLen)); err != nil || !ok || len(m.Dossier) != MaxDossierIDLen {
		t.Errorf("a dossier id of %d characters: %v %v", MaxDossierIDLen, ok, err)
	}
}
