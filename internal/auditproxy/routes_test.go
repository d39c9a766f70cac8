package auditproxy

import (
	"errors"
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
		{"POST", "/api/dossiers/D-123/plan", "", "", nil},  // method mismatch
		{"HEAD", "/api/dossiers/D-123", "", "", nil},       // HEAD is its own method
		{"GET", "/api/dossiers/D-123/plan/", "", "", nil},  // trailing slash is another segment
		{"GET", "/api/dossiers/", "", "", nil},             // {dossier} needs a non-empty segment
		{"GET", "/api/dossiers//plan", "", "", nil},        // empty segment
		{"GET", "/api/dossiers/search", "search", "", nil}, // literal beats {dossier}
		{"GET", "/api/dossiers/D-1/attachments/a.pdf", "any-attachment", "D-1", nil},
		{"GET", "/api/dossiers/D-1/attachments", "", "", nil},             // * is exactly one segment
		{"GET", "/api/dossiers/D-1/attachments/a/b", "", "", nil},         // ... not two
		{"GET", "/api/dossiers/D-1/attachments/", "", "", nil},            // ... and not an empty one
		{"GET", "/api/teams/T-9/reports", "team-reports", "T-9", nil},     // literal beats *
		{"GET", "/api/groups/G-9/reports", "wild-reports", "G-9", nil},    // * matches one segment
		{"GET", "/api/dossiers/D%20X", "read-dossier", "D X", nil},        // captured id is unescaped
		{"GET", "/api/%64ossiers/D-5", "read-dossier", "D-5", nil},        // literals compare unescaped
		{"GET", "/api/dossiers/a%2Fb", "", "", ErrNonCanonicalPath},       // escaped slash
		{"GET", "/api/dossiers/../admin", "", "", ErrNonCanonicalPath},    // dot segment
		{"GET", "/api/dossiers/%2e%2e/plan", "", "", ErrNonCanonicalPath}, // escaped dot segment
		{"GET", "/api/dossiers/%zz", "", "", ErrNonCanonicalPath},         // bad escape
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
