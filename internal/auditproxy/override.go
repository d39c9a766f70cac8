package auditproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// overrideHeaders are headers with which frameworks let a request say it is
// another method (X-HTTP-Method-Override and its kin) or another URL
// (X-Original-URL, X-Rewrite-URL: IIS, Symfony, Laravel; X-Forwarded-Prefix:
// Spring) than the proxy decided on, in their normalised form
// (NormalisedHeaderName), so that every spelling counts.
var overrideHeaders = func() map[string]string {
	m := map[string]string{}
	for _, h := range []string{
		"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Method",
		"X-Original-URL", "X-Original-URI", "X-Rewrite-URL", "X-Forwarded-URI", "X-Forwarded-Path",
		"X-Forwarded-Prefix", "X-Envoy-Original-Path",
	} {
		m[NormalisedHeaderName(h)] = h
	}
	return m
}()

// methodParam is the form and query parameter with which Rails (Rack),
// Laravel and Symfony let a POST say it is another method, normalised.
const methodParam = "_method"

// maxInspectedBody is the largest URL-encoded form or JSON body the proxy
// reads to look for a method parameter; a larger one is refused.
const maxInspectedBody = 8 << 20

// overrideError is why a request is refused as an override.
type overrideError struct {
	status int
	detail string
}

// checkOverrides refuses a request that could make the application see
// another method or URL than the proxy decided on: an override header (any
// spelling), a _method parameter in the query (any spelling a framework
// reads as _method), in a URL-encoded form body, or as a member of a JSON
// body's top-level object (Laravel reads it there). Such a body is read (at
// most maxInspectedBody bytes) and put back for the application.
func checkOverrides(r *http.Request) *overrideError {
	for k := range r.Header {
		if h, ok := overrideHeaders[NormalisedHeaderName(k)]; ok {
			return &overrideError{http.StatusBadRequest, fmt.Sprintf("the %s header (here spelled %q) would let the application see another method or URL than the one audited; send the request as it is meant", h, k)}
		}
	}
	if hasMethodParam(r.URL.RawQuery) {
		return &overrideError{http.StatusBadRequest, fmt.Sprintf("the query holds a %s parameter, which would let the application see another method than the one audited; use that method instead", methodParam)}
	}
	return checkBodyOverride(r)
}

// checkBodyOverride looks for a _method parameter in the request's body:
// a URL-encoded form (also a POST without Content-Type, which Rack reads as
// one), a JSON object or a multipart form.
func checkBodyOverride(r *http.Request) *overrideError {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if len(r.Header.Values("Content-Type")) > 1 {
		return &overrideError{http.StatusBadRequest, "the request carries Content-Type more than once; the body's type must be unambiguous"}
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if strings.Contains(ct, "multipart/") {
		return guardMultipart(r)
	}
	// Rack reads a POST body without a type as a form.
	form := (ct == "" && r.Method == http.MethodPost) || strings.Contains(ct, "application/x-www-form-urlencoded")
	isJSON := strings.Contains(ct, "json")
	if !form && !isJSON {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInspectedBody+1))
	if err != nil {
		return &overrideError{http.StatusBadRequest, "the request body could not be read"}
	}
	if len(body) > maxInspectedBody {
		return &overrideError{http.StatusRequestEntityTooLarge, fmt.Sprintf("a URL-encoded form or JSON body of more than %d bytes cannot be checked for a %s parameter", maxInspectedBody, methodParam)}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if (form && hasMethodParam(string(body))) || (isJSON && hasMethodMember(body)) {
		return &overrideError{http.StatusBadRequest, fmt.Sprintf("the body holds a %s parameter, which would let the application see another method than the one audited; use that method instead", methodParam)}
	}
	return nil
}

// hasMethodMember reports whether a JSON body is an object with a member a
// framework could read as _method (names normalised as in hasMethodParam).
// A body that is no JSON object has none.
func hasMethodMember(body []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return false
	}
	for name := range obj {
		if strings.HasPrefix(NormalisedHeaderName(strings.TrimLeft(name, " ")), methodParam) {
			return true
		}
	}
	return false
}

// hasMethodParam reports whether a query or URL-encoded form holds a
// parameter a framework could read as _method: names are split on & and ;,
// decoded (also +), and normalised as PHP does (case folded, dots, spaces
// and other punctuation as _, a [ suffix ignored).
func hasMethodParam(form string) bool {
	for form != "" {
		var kv string
		if i := strings.IndexAny(form, "&;"); i >= 0 {
			kv, form = form[:i], form[i+1:]
		} else {
			kv, form = form, ""
		}
		name, _, _ := strings.Cut(kv, "=")
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if strings.HasPrefix(NormalisedHeaderName(strings.TrimLeft(name, " ")), methodParam) ||
			strings.HasPrefix(NormalisedHeaderName(name), methodParam) {
			return true
		}
	}
	return false
}

// multipartBoundary is the boundary every form parser reads alike: RFC 2046
// characters without the space and the comma (Rack ends a boundary at a
// comma).
var multipartBoundary = regexp.MustCompile(`^[A-Za-z0-9'()+_./:=?-]{1,70}$`)

// guardMultipart checks a multipart body's field names: the first
// maxInspectedBody bytes before the request is forwarded, the rest as it is
// forwarded (multipartGuard), so that an upload of any size is checked.
func guardMultipart(r *http.Request) *overrideError {
	ct := r.Header.Get("Content-Type")
	_, params, err := mime.ParseMediaType(ct)
	boundary := params["boundary"]
	if err != nil || !multipartBoundary.MatchString(boundary) || strings.Count(strings.ToLower(ct), "boundary") != 1 {
		return &overrideError{http.StatusBadRequest, "a multipart body needs a Content-Type with one boundary of 1 to 70 letters, digits and ' ( ) + _ . / : = ? -, so that every parser reads the same parts"}
	}
	g := newMultipartGuard(r.Body, boundary)
	if err := g.fill(maxInspectedBody); err != nil {
		if errors.Is(err, errOverrideInBody) {
			return &overrideError{http.StatusBadRequest, fmt.Sprintf("the body holds a %s field, which would let the application see another method than the one audited; use that method instead", methodParam)}
		}
		return &overrideError{http.StatusBadRequest, "the multipart body cannot be checked: " + err.Error()}
	}
	if g.srcErr != nil && !errors.Is(g.srcErr, io.EOF) {
		return &overrideError{http.StatusBadRequest, "the request body could not be read"}
	}
	r.Body = g
	return nil
}
