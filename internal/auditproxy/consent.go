package auditproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Defaults of the consent source. The cache bound comes from the store
// (spec.audit.consentCacheTTL, at most v1alpha1.MaxConsentCacheTTL).
const (
	DefaultConsentCacheSize = 10000
	DefaultConsentTimeout   = 2 * time.Second
	maxConsentBody          = 64 << 10
)

// ConsentQuery asks whether there is consent for one disclosure: this
// partner, under this agreement, from this dossier.
type ConsentQuery struct {
	Agreement string
	Partner   string
	Dossier   string
}

// ConsentAnswer is a definite answer of the consent source.
type ConsentAnswer struct {
	// Given is true when consent is given (HTTP 200).
	Given bool
	// Withdrawn is true when the source says the consent was withdrawn
	// (HTTP 410); false with Given false means there is none (HTTP 404).
	Withdrawn bool
	// Categories, when not nil, narrow what the consent covers: only these
	// of the agreement's categories may be disclosed.
	Categories []v1alpha1.DataCategory
	// Until, when not zero, is when the consent ends.
	Until time.Time
}

// ConsentChecker answers consent questions. An error means the answer is
// unknown; the proxy then refuses the request (fail closed).
type ConsentChecker interface {
	Consent(ctx context.Context, q ConsentQuery) (ConsentAnswer, error)
}

// ErrNoConsentSource is returned when an agreement with per-dossier consent
// applies and no consent source is configured.
var ErrNoConsentSource = errors.New("no consent source is configured (--consent-url)")

// HTTPConsents asks the store's consent source (the case-management system
// that holds the signed consent forms) before a disclosure: GET on a URL
// template with {dossier}, {agreement} and {partner}.
//
//   - 200: consent given. The body may be empty or a JSON object
//     {"categories": [...], "until": "RFC 3339"} narrowing what it covers.
//   - 404: no consent; 410: consent withdrawn.
//   - Anything else, a body that cannot be read, or no answer within the
//     client's timeout: an error, and the request is refused.
//
// Positive answers are cached for at most the bound (and never beyond
// their until), so that a withdrawal at the source takes effect within the
// bound; negative answers and errors are never cached. Concurrent
// identical look-ups are coalesced into one request to the source.
type HTTPConsents struct {
	template string
	client   *http.Client
	cache    *ttlCache[ConsentAnswer]
	flight   singleflight.Group
	now      func() time.Time
}

// ValidateConsentURL checks a consent URL template as the API does.
func ValidateConsentURL(template string) error {
	if !strings.Contains(template, "{dossier}") || (!strings.Contains(template, "{agreement}") && !strings.Contains(template, "{partner}")) {
		return errors.New("must be a URL template containing {dossier} and {agreement}, {partner} or both")
	}
	u, err := url.Parse(strings.NewReplacer("{dossier}", "d", "{agreement}", "a", "{partner}", "p").Replace(template))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http or https URL template, such as https://cases.example/api/consent/{dossier}?agreement={agreement}")
	}
	return nil
}

// NewHTTPConsents returns a consent source. client nil means a client with
// DefaultConsentTimeout that follows no redirects; size must be positive
// and bound within (0, v1alpha1.MaxConsentCacheTTL]. now nil means
// time.Now.
func NewHTTPConsents(template string, client *http.Client, size int, bound time.Duration, now func() time.Time) (*HTTPConsents, error) {
	if err := ValidateConsentURL(template); err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, errors.New("consent cache size must be positive")
	}
	if bound <= 0 || bound > v1alpha1.MaxConsentCacheTTL {
		return nil, fmt.Errorf("consent cache bound must be above 0s and at most %s", v1alpha1.MaxConsentCacheTTL)
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultConsentTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if now == nil {
		now = time.Now
	}
	return &HTTPConsents{template: template, client: client, cache: newTTLCache[ConsentAnswer](size, bound, now), now: now}, nil
}

// consentStatusError is an answer other than 200, 404 or 410.
type consentStatusError struct{ code int }

func (e *consentStatusError) Error() string {
	return fmt.Sprintf("consent source answered %d (only 200, 404 and 410 are answers)", e.code)
}

// consentBody is the optional body of a 200 answer.
type consentBody struct {
	Categories *[]v1alpha1.DataCategory `json:"categories"`
	Until      *time.Time               `json:"until"`
}

// Consent implements ConsentChecker. Its errors never hold the dossier id
// (the URL is left out of transport errors).
func (c *HTTPConsents) Consent(ctx context.Context, q ConsentQuery) (ConsentAnswer, error) {
	key := q.Agreement + "\x00" + q.Partner + "\x00" + q.Dossier
	if v, ok := c.cache.get(key); ok {
		return v, nil
	}
	// One look-up for all concurrent identical questions; it runs on its
	// own (bounded by the client's timeout), so that one caller going away
	// does not fail the others.
	v, err, _ := c.flight.Do(key, func() (any, error) {
		ans, err := c.ask(context.WithoutCancel(ctx), q)
		if err == nil && ans.Given {
			c.cache.putUntil(key, ans, ans.Until)
		}
		return ans, err
	})
	if err != nil {
		return ConsentAnswer{}, err
	}
	return v.(ConsentAnswer), nil
}

func (c *HTTPConsents) ask(ctx context.Context, q ConsentQuery) (ConsentAnswer, error) {
	target := strings.NewReplacer("{dossier}", escapeAll(q.Dossier), "{agreement}", escapeAll(q.Agreement),
		"{partner}", escapeAll(q.Partner)).Replace(c.template)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return ConsentAnswer{}, errors.New("consent source: cannot build the request")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		// Only the class: the URL names the dossier, and the text of a
		// response error can quote the response.
		return ConsentAnswer{}, fmt.Errorf("consent source unreachable: %s", errorClass(err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConsentBody+1))
	if err != nil {
		return ConsentAnswer{}, errors.New("consent source: the answer could not be read")
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return parseConsentBody(body, c.now())
	case http.StatusNotFound:
		return ConsentAnswer{}, nil
	case http.StatusGone:
		return ConsentAnswer{Withdrawn: true}, nil
	default:
		return ConsentAnswer{}, &consentStatusError{code: resp.StatusCode}
	}
}

// parseConsentBody reads the body of a 200 answer. A body that is not
// empty and not the documented JSON object is an error (fail closed).
func parseConsentBody(body []byte, now time.Time) (ConsentAnswer, error) {
	ans := ConsentAnswer{Given: true}
	if len(strings.TrimSpace(string(body))) == 0 {
		return ans, nil
	}
	if len(body) > maxConsentBody {
		return ConsentAnswer{}, errors.New("consent source: the answer is too long")
	}
	var b consentBody
	if err := json.Unmarshal(body, &b); err != nil {
		return ConsentAnswer{}, errors.New("consent source: a 200 answer must be empty or a JSON object with categories and until")
	}
	if b.Categories != nil {
		ans.Categories = append([]v1alpha1.DataCategory{}, (*b.Categories)...)
	}
	if b.Until != nil {
		ans.Until = *b.Until
		if !now.Before(ans.Until) {
			return ConsentAnswer{}, nil // consent that has ended is none
		}
	}
	return ans, nil
}
