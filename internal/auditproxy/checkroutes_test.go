package auditproxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// TestCheckRoutes: the route rules the access policy and the egress
// policy share, and the rule of the document kind after them.
func TestCheckRoutes(t *testing.T) {
	route := func(name, method string, cats ...v1alpha1.DataCategory) accesspolicy.Route {
		return accesspolicy.Route{Name: name, Method: method, Path: "/x", Categories: cats, Action: v1alpha1.ActionRead}
	}
	noWrite := func(r accesspolicy.Route) error {
		if r.Method == "PUT" {
			return errors.New("route " + r.Name + ": no PUT here")
		}
		return nil
	}
	cases := []struct {
		name   string
		routes []accesspolicy.Route
		want   string // "" passes
	}{
		{"none", nil, ""},
		{"good", []accesspolicy.Route{route("a", "GET", "identity"), route("b", "POST", "contact")}, ""},
		{"no name", []accesspolicy.Route{route("a", "GET", "identity"), route("", "GET", "identity")}, "routes[1] has no name"},
		{"twice", []accesspolicy.Route{route("a", "GET", "identity"), route("a", "POST", "identity")}, `route "a" is listed twice`},
		{"lower-case method", []accesspolicy.Route{route("a", "get", "identity")}, `route "a": method must be an upper-case HTTP method`},
		{"no method", []accesspolicy.Route{route("a", "", "identity")}, `route "a": method must be an upper-case HTTP method`},
		{"no categories", []accesspolicy.Route{route("a", "GET")}, `route "a" lists no data categories`},
		{"the kind's rule", []accesspolicy.Route{route("a", "GET", "identity"), route("b", "PUT", "identity")}, "route b: no PUT here"},
	}
	for _, c := range cases {
		err := CheckRoutes(c.routes, noWrite)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := NewPolicy(accesspolicy.Document{Version: 1, Routes: []accesspolicy.Route{{Name: "r", Method: "GET", Path: "/x",
		Categories: []v1alpha1.DataCategory{"identity"}, Action: "delete"}}}); err == nil || err.Error() != `access policy: route "r": action must be read, write or export` {
		t.Errorf("the access policy's own rule: %v", err)
	}
}
