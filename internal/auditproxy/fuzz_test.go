package auditproxy

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var canonicalDossierRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// FuzzRouterMatch checks that whatever the router matches is canonical:
// no application normalisation (decoding, dot-segment removal, ;
// parameters, backslashes, case or trailing-dot folding) could read it as
// another path, and the dossier id is in its one canonical form.
func FuzzRouterMatch(f *testing.F) {
	for _, p := range pathTricks {
		f.Add("GET", p)
	}
	for _, p := range []string{
		"/", "/api/dossiers", "/api/dossiers/D-1", "/api/dossiers/D-1/plan", "/api/dossiers/%44-1/plan",
		"/api/dossiers/D-1/attachments/a.pdf", "/api/teams/T-9/reports", "/api/%64ossiers/D-5", "/api/dossiers/search",
	} {
		f.Add("GET", p)
		f.Add("PUT", p)
	}
	rt, err := NewRouter(testRoutes())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, escapedPath string) {
		m, ok, err := rt.Match(method, escapedPath)
		if err != nil {
			if !errors.Is(err, ErrNonCanonicalPath) || ok {
				t.Fatalf("%q: error %v (matched %v)", escapedPath, err, ok)
			}
			if strings.Contains(err.Error(), escapedPath) && len(escapedPath) > 8 {
				t.Fatalf("%q: the error quotes the path: %v", escapedPath, err)
			}
			return
		}
		if !ok {
			return
		}
		decoded, uerr := url.PathUnescape(escapedPath)
		if uerr != nil {
			t.Fatalf("%q matched %s but does not decode: %v", escapedPath, m.Route.Name, uerr)
		}
		if decoded != "/" {
			if path.Clean(decoded) != decoded {
				t.Fatalf("%q matched %s, but cleans to %q", escapedPath, m.Route.Name, path.Clean(decoded))
			}
			if strings.ContainsAny(decoded, ";\\%:+ \t") || !utf8.ValidString(decoded) || strings.ContainsFunc(decoded, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				t.Fatalf("%q matched %s, decoded %q", escapedPath, m.Route.Name, decoded)
			}
			for _, seg := range strings.Split(decoded[1:], "/") {
				if seg == "" || strings.HasSuffix(seg, ".") {
					t.Fatalf("%q matched %s with segment %q", escapedPath, m.Route.Name, seg)
				}
			}
		}
		// The decoded path, as an application reads it, is the same route.
		m2, ok2, err2 := rt.Match(method, decoded)
		if err2 != nil || !ok2 || m2.Route != m.Route || m2.Dossier != m.Dossier {
			t.Fatalf("%q matched %s/%q; its decoded form %q matched %v/%q (%v)", escapedPath, m.Route.Name, m.Dossier, decoded, ok2, m2.Dossier, err2)
		}
		if m.HasDossier != strings.Contains(m.Route.Path, DossierPlaceholder) {
			t.Fatalf("%q: HasDossier %v for %s", escapedPath, m.HasDossier, m.Route.Path)
		}
		if m.HasDossier {
			if !canonicalDossierRE.MatchString(m.Dossier) {
				t.Fatalf("%q: dossier %q is not canonical", escapedPath, m.Dossier)
			}
			key := []byte("0123456789abcdef0123456789abcdef")
			if DossierPseudonym(key, strings.ToUpper(m.Dossier)) != DossierPseudonym(key, strings.ToLower(m.Dossier)) {
				t.Fatalf("%q: case variants of %q get different pseudonyms", escapedPath, m.Dossier)
			}
		}
		// Literal segments are matched exactly, never by a case variant.
		for _, seg := range strings.Split(decoded, "/") {
			if rt.foldedLiterals[strings.ToLower(seg)] && !rt.literals[seg] {
				t.Fatalf("%q: segment %q is a case variant of a literal", escapedPath, seg)
			}
		}
	})
}

// FuzzAuthenticate checks the identity extraction: headers that a CGI-style
// application reads as an identity header never reach it unless they are
// the exact header from the trusted proxy; an identity is taken from
// headers only from the trusted proxy, only when unambiguous, and it is
// exactly what the application is left to read.
func FuzzAuthenticate(f *testing.F) {
	for _, name := range identitySpellings {
		f.Add(true, name, "mallory", DefaultUserHeader, "an@example.nl", "")
		f.Add(false, name, "mallory", DefaultGroupsHeader, "admins", "")
	}
	f.Add(true, DefaultUserHeader, "an@example.nl", DefaultUserHeader, "mallory", "")
	f.Add(true, DefaultUserHeader, "an@example.nl", DefaultGroupsHeader, "coaches, admins", "")
	f.Add(true, DefaultGroupsHeader, "coaches", DefaultGroupsHeader, "admins", "an@example.nl")
	f.Add(true, "Authorization", "Bearer a", "authorization", "Bearer b", "")
	f.Add(true, "X-Forwarded-User ", "mallory", "x-forwarded-user", "an\x00", "")
	f.Add(false, DefaultUserHeader, "an@example.nl", "X-FORWARDED-USER", "mallory", "")

	a, err := NewAuthenticator(context.Background(), IdentityConfig{
		TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	userVar, groupsVar := cgiName(DefaultUserHeader), cgiName(DefaultGroupsHeader)
	f.Fuzz(func(t *testing.T, trusted bool, name1, value1, name2, value2, user string) {
		r, _ := http.NewRequest("GET", "/api/dossiers/D-1", nil)
		r.RemoteAddr = untrustedSource
		if trusted {
			r.RemoteAddr = trustedSource
		}
		r.Header[name1] = append(r.Header[name1], value1)
		r.Header[name2] = append(r.Header[name2], value2)
		if user != "" {
			r.Header[DefaultUserHeader] = append(r.Header[DefaultUserHeader], user)
		}
		userLines := len(r.Header[DefaultUserHeader])
		groupLines := len(r.Header[DefaultGroupsHeader])
		sentUser := r.Header.Get(DefaultUserHeader)

		id, aerr := a.Authenticate(r)

		for k := range r.Header {
			if v := cgiName(k); (v == userVar && k != DefaultUserHeader) || (v == groupsVar && k != DefaultGroupsHeader) {
				t.Fatalf("%q (read as %s) left in the request", k, v)
			}
		}
		if !trusted {
			if aerr == nil {
				t.Fatalf("identity %+v from an untrusted source", id)
			}
			if aerr.Status != http.StatusBadRequest && (len(r.Header[DefaultUserHeader]) > 0 || len(r.Header[DefaultGroupsHeader]) > 0) {
				t.Fatal("identity headers of an untrusted source left in the request")
			}
			return
		}
		if aerr != nil {
			return
		}
		if userLines != 1 || groupLines > 1 || len(r.Header["Authorization"]) > 1 {
			t.Fatalf("ambiguous identity accepted: %d user and %d groups lines", userLines, groupLines)
		}
		if strings.Contains(id.User, ",") {
			t.Fatalf("user %q can be read as a list", id.User)
		}
		if id.User != strings.TrimSpace(sentUser) || r.Header.Get(DefaultUserHeader) != sentUser {
			t.Fatalf("identity %q, but the application reads %q", id.User, r.Header.Get(DefaultUserHeader))
		}
		if !utf8.ValidString(id.User) || strings.ContainsFunc(id.User, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("user %q accepted", id.User)
		}
	})
}
