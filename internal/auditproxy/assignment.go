package auditproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the assignment source.
const (
	DefaultAssignmentCacheSize = 10000
	DefaultAssignmentCacheTTL  = 30 * time.Second
	DefaultAssignmentTimeout   = 2 * time.Second
)

// HTTPAssignments asks an HTTP service whether a dossier is assigned to a
// user: GET on a URL template with {user} and {dossier}; 200 means assigned,
// 404 not assigned, and anything else (or no answer) is an error, which the
// authoriser treats as not assigned (fail closed). Definite answers are
// cached for a TTL in a cache of bounded size; errors are never cached.
type HTTPAssignments struct {
	template string
	client   *http.Client
	cache    *ttlCache[bool]
}

// ValidateAssignmentURL checks an assignment URL template.
func ValidateAssignmentURL(template string) error {
	if !strings.Contains(template, "{user}") || !strings.Contains(template, "{dossier}") {
		return errors.New("must be a URL template containing {user} and {dossier}")
	}
	u, err := url.Parse(strings.NewReplacer("{user}", "u", "{dossier}", "d").Replace(template))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http or https URL template, such as https://cases.example/api/assignments/{dossier}/{user}")
	}
	return nil
}

// NewHTTPAssignments returns an assignment source. client nil means a client
// with DefaultAssignmentTimeout; size and ttl must be positive.
func NewHTTPAssignments(template string, client *http.Client, size int, ttl time.Duration) (*HTTPAssignments, error) {
	if err := ValidateAssignmentURL(template); err != nil {
		return nil, err
	}
	if size <= 0 || ttl <= 0 {
		return nil, errors.New("assignment cache size and TTL must be positive")
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultAssignmentTimeout}
	}
	return &HTTPAssignments{template: template, client: client, cache: newTTLCache[bool](size, ttl, time.Now)}, nil
}

// assignmentStatusError is an answer other than 200 or 404.
type assignmentStatusError struct{ code int }

func (e *assignmentStatusError) Error() string {
	return fmt.Sprintf("assignment source answered %d (only 200 and 404 are answers)", e.code)
}

// Assigned implements AssignmentChecker. Its errors never hold the user, the
// dossier id or bytes of the answer (transport errors give only their
// class).
func (a *HTTPAssignments) Assigned(ctx context.Context, user, dossier string) (bool, error) {
	key := user + "\x00" + dossier
	if v, ok := a.cache.get(key); ok {
		return v, nil
	}
	target := strings.NewReplacer("{user}", escapeAll(user), "{dossier}", escapeAll(dossier)).Replace(a.template)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, errors.New("assignment source: cannot build the request")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// Only the class: the URL names the user and the dossier, and the
		// text of a response error can quote the response.
		return false, fmt.Errorf("assignment source unreachable: %s", errorClass(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		a.cache.put(key, true)
		return true, nil
	case http.StatusNotFound:
		a.cache.put(key, false)
		return false, nil
	default:
		return false, &assignmentStatusError{code: resp.StatusCode}
	}
}

// escapeAll percent-encodes every byte but the unreserved characters of RFC
// 3986, so that a value is one path segment or one query value wherever the
// template puts it.
func escapeAll(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
