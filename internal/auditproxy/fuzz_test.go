package auditproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
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

// FuzzMultipartGuard checks the multipart guard: a body it lets through
// arrives byte for byte, and when it finds a _method field it has not
// released that field's header block.
func FuzzMultipartGuard(f *testing.F) {
	f.Add("b", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n", 7)
	f.Add("b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n", 1)
	f.Add("b", "--b\nContent-Disposition: form-data; name*=UTF-8''%5Fmethod\n\nDELETE\n--b--\n", 3)
	f.Add("XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"_method\"\r\n\r\n\n--XyZ-x\r\n--XyZ--", 2)
	f.Fuzz(func(t *testing.T, boundary, body string, chunk int) {
		if !multipartBoundary.MatchString(boundary) {
			return
		}
		chunk = 1 + (chunk&0xffff)%64
		g := newMultipartGuard(io.NopCloser(&chunkReader{s: body, n: chunk}), boundary)
		var got []byte
		buf := make([]byte, 1+chunk%7)
		var err error
		for {
			var n int
			n, err = g.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			if string(got) != body {
				t.Fatalf("released %q, want %q", got, body)
			}
		case errors.Is(err, errOverrideInBody):
			if !strings.HasPrefix(body, string(got)) {
				t.Fatalf("released %q, not a prefix of the body", got)
			}
			if namesMethodAnywhere(got, boundary) {
				t.Fatalf("released a complete header block naming _method: %q", got)
			}
		}
	})
}

// chunkReader returns s n bytes at a time.
type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

// namesMethodAnywhere reports whether b holds a delimiter followed by a
// complete header block that names a _method field.
func namesMethodAnywhere(b []byte, boundary string) bool {
	data := "\n" + string(b)
	for _, part := range strings.Split(data, "\n--"+boundary)[1:] {
		if end, _ := blankLine([]byte(part)); end >= 0 && namesMethod([]byte(part[:end])) {
			return true
		}
	}
	return false
}

// FuzzFilterRecords: whatever the application answers, the filter either
// refuses it or returns one JSON value that holds none of the withheld
// items, and never panics.
func FuzzFilterRecords(f *testing.F) {
	for _, seed := range []string{
		`[{"dossier":"D-1"},{"dossier":"D-2"}]`, `{"addresses":[{"dossier":"D-1"}]}`, `{"addresses":{"dossier":"D-1"}}`,
		`[{"dossier":1001}]`, `[{"dossier":"D-1","dossier":"D-2"}]`, `[`, `"x"`, `{"addresses":[[]]}`,
	} {
		f.Add(seed, "/addresses")
		f.Add(seed, "")
	}
	f.Fuzz(func(t *testing.T, body, items string) {
		spec := &accesspolicy.Records{Format: "JSON", Items: items, DossierField: "/dossier", MaxBodyBytes: 1 << 16}
		out, _, err := filterRecords(spec, "application/json", "", strings.NewReader(body), func(id string) bool { return id == "D-1" })
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("filtered %q to invalid JSON %q", body, out)
		}
		if items != "" {
			return
		}
		var list []map[string]any
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("a top-level array filtered to %q: %v", out, err)
		}
		for _, item := range list {
			if id, _ := item["dossier"].(string); id == "D-1" {
				t.Fatalf("a withheld item remains in %q", out)
			}
		}
	})
}
