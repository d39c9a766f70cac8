package auditproxy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Defaults of the identity configuration.
const (
	DefaultUserHeader    = "X-Forwarded-User"
	DefaultGroupsHeader  = "X-Forwarded-Groups"
	DefaultUsernameClaim = "sub"
	DefaultGroupsClaim   = "groups"
)

// AnonymousActor is the actor recorded for requests without a valid
// identity, as Kubernetes names unauthenticated callers.
const AnonymousActor = "system:anonymous"

// Limits on an identity, so that it fits an audit event.
const (
	maxUserLen   = 256
	maxGroups    = 256
	maxGroupLen  = 256
	discoveryMax = 30 * time.Second
)

// Verified tokens are remembered, by their SHA-256, so that a client that
// sends the same token with every request pays for the signature check once:
// at most tokenCacheSize tokens (least recently used go first), each until
// the earlier of its exp and tokenCacheMaxAge after it was verified. A token
// whose nbf is still ahead is accepted within go-oidc's leeway but not
// remembered, so it is verified again until it is valid. The trade-off: a
// remembered token stays accepted until its exp (or the maximum age) even
// when the identity provider has since retired the key that signed it; the
// maximum age bounds that window for long-lived tokens, and no token is ever
// accepted past its exp.
const (
	tokenCacheSize   = 4096
	tokenCacheMaxAge = 10 * time.Minute
)

// OIDCConfig configures verification of OpenID Connect bearer tokens.
type OIDCConfig struct {
	// IssuerURL must equal the tokens' iss claim; its discovery document
	// names the keys, unless StaticKeys are given.
	IssuerURL string
	// Audience must be one of the tokens' aud values.
	Audience string
	// UsernameClaim names the caller; sub when empty.
	UsernameClaim string
	// GroupsClaim lists the caller's groups; groups when empty.
	GroupsClaim string
	// StaticKeys verify tokens offline (see LoadJWKSFile); no discovery is
	// done when they are given.
	StaticKeys []crypto.PublicKey
	// SigningAlgs are the accepted signature algorithms; empty means those
	// of the discovery document or, with StaticKeys, those of the keys.
	SigningAlgs []string
	// HTTPClient reaches the issuer; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
}

// IdentityConfig says how callers are identified.
type IdentityConfig struct {
	// OIDC enables bearer tokens; nil refuses them.
	OIDC *OIDCConfig
	// TrustedProxyCIDRs are the source addresses of an authenticating proxy
	// whose identity headers are accepted. From any other address the
	// headers are removed from the request.
	TrustedProxyCIDRs []netip.Prefix
	// UserHeader and GroupsHeader are the identity headers; the defaults are
	// X-Forwarded-User and X-Forwarded-Groups (comma-separated).
	UserHeader, GroupsHeader string
}

// AuthError is why a request has no identity.
type AuthError struct {
	// Status is 401, or 503 when the issuer's keys are not available yet.
	Status int
	// Code is the RFC 6750 error code for WWW-Authenticate, if any.
	Code string
	// Description is safe to show to the caller and to log: it never holds
	// the token or its claims.
	Description string
}

func (e *AuthError) Error() string { return e.Description }

// Authenticator identifies callers.
type Authenticator struct {
	cfg      IdentityConfig
	log      *slog.Logger
	verifier atomic.Pointer[oidc.IDTokenVerifier]
	tokens   *ttlCache[Identity]
	now      func() time.Time
	// verifications counts the tokens checked against the issuer's keys
	// (cache misses).
	verifications atomic.Int64

	mu           sync.Mutex
	discoveryErr error
}

// NewAuthenticator checks cfg and prepares the token verifier. With OIDC and
// no static keys, discovery runs in the background until it succeeds or ctx
// ends; until then Ready reports why and bearer tokens get 503.
func NewAuthenticator(ctx context.Context, cfg IdentityConfig, log *slog.Logger) (*Authenticator, error) {
	return newAuthenticator(ctx, cfg, log, time.Now)
}

// newAuthenticator is NewAuthenticator with the clock that token times and
// the token cache are checked against.
func newAuthenticator(ctx context.Context, cfg IdentityConfig, log *slog.Logger, now func() time.Time) (*Authenticator, error) {
	if cfg.UserHeader == "" {
		cfg.UserHeader = DefaultUserHeader
	}
	if cfg.GroupsHeader == "" {
		cfg.GroupsHeader = DefaultGroupsHeader
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, log: log, now: now, tokens: newTTLCache[Identity](tokenCacheSize, tokenCacheMaxAge, now)}
	o := cfg.OIDC
	if o == nil {
		return a, nil
	}
	oc := *o
	if oc.UsernameClaim == "" {
		oc.UsernameClaim = DefaultUsernameClaim
	}
	if oc.GroupsClaim == "" {
		oc.GroupsClaim = DefaultGroupsClaim
	}
	if oc.IssuerURL == "" || oc.Audience == "" {
		return nil, errors.New("OIDC needs an issuer URL and an audience")
	}
	if oc.HTTPClient == nil {
		oc.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	a.cfg.OIDC = &oc
	vcfg := &oidc.Config{ClientID: oc.Audience, SupportedSigningAlgs: oc.SigningAlgs, Now: now}
	if len(oc.StaticKeys) > 0 {
		if len(vcfg.SupportedSigningAlgs) == 0 {
			vcfg.SupportedSigningAlgs = algorithmsFor(oc.StaticKeys)
		}
		a.verifier.Store(oidc.NewVerifier(oc.IssuerURL, &oidc.StaticKeySet{PublicKeys: oc.StaticKeys}, vcfg))
		return a, nil
	}
	a.setDiscoveryErr(errors.New("OIDC discovery has not completed yet"))
	go a.discover(ctx, vcfg)
	return a, nil
}

// discover fetches the issuer's discovery document, retrying with backoff.
func (a *Authenticator) discover(ctx context.Context, vcfg *oidc.Config) {
	o := a.cfg.OIDC
	clientCtx := oidc.ClientContext(context.WithoutCancel(ctx), o.HTTPClient)
	wait := 250 * time.Millisecond
	for {
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.HTTPClient), 15*time.Second)
		p, err := oidc.NewProvider(dctx, o.IssuerURL)
		cancel()
		if err == nil {
			a.verifier.Store(p.VerifierContext(clientCtx, vcfg))
			a.setDiscoveryErr(nil)
			a.log.Info("OIDC discovery done; bearer tokens are accepted")
			return
		}
		a.setDiscoveryErr(fmt.Errorf("OIDC discovery failed: %w", err))
		a.log.Warn("OIDC discovery failed; retrying", "error", err.Error(), "retryIn", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, discoveryMax)
	}
}

func (a *Authenticator) setDiscoveryErr(err error) {
	a.mu.Lock()
	a.discoveryErr = err
	a.mu.Unlock()
}

// Ready reports whether tokens can be verified.
func (a *Authenticator) Ready() error {
	if a.cfg.OIDC == nil || a.verifier.Load() != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.discoveryErr
}

// trusted reports whether remoteAddr is an authenticating proxy.
func (a *Authenticator) trusted(remoteAddr string) bool {
	if len(a.cfg.TrustedProxyCIDRs) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range a.cfg.TrustedProxyCIDRs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Authenticate identifies the caller of r. It first removes from r every
// header that an application could read as an identity header but is not
// spelled exactly as one (see NormalisedHeaderName), and the identity headers
// themselves unless r comes from a trusted proxy, so that the application
// never sees identity headers a client made up. An identity header or
// Authorization given more than once is refused as ambiguous (400): the log
// and the application could otherwise each pick another one. The identity
// headers of a trusted proxy take precedence over a bearer token; when the
// identity is not taken from them, they are removed.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, *AuthError) {
	userHeader, groupsHeader := http.CanonicalHeaderKey(a.cfg.UserHeader), http.CanonicalHeaderKey(a.cfg.GroupsHeader)
	if aerr := cleanIdentityHeaders(r.Header, userHeader, groupsHeader); aerr != nil {
		return Identity{}, aerr
	}
	if user := strings.TrimSpace(r.Header.Get(userHeader)); user != "" && a.trusted(r.RemoteAddr) {
		return headerIdentity(user, r.Header.Get(groupsHeader), userHeader)
	}
	// The identity is not the headers' (an untrusted source, or a trusted
	// one without a user): the application must not read any.
	delete(r.Header, userHeader)
	delete(r.Header, groupsHeader)
	return a.bearerIdentity(r)
}

// cleanIdentityHeaders removes every header that normalises to the user or
// groups header but is not spelled exactly as one, and refuses an identity
// header or Authorization given more than once.
func cleanIdentityHeaders(h http.Header, userHeader, groupsHeader string) *AuthError {
	userKey, groupsKey := NormalisedHeaderName(userHeader), NormalisedHeaderName(groupsHeader)
	for k := range h {
		if n := NormalisedHeaderName(k); (n == userKey && k != userHeader) || (n == groupsKey && k != groupsHeader) {
			delete(h, k)
		}
	}
	for _, name := range []string{userHeader, groupsHeader, "Authorization"} {
		if len(h[name]) > 1 {
			return &AuthError{Status: http.StatusBadRequest, Code: "invalid_request",
				Description: fmt.Sprintf("the request carries %s more than once; identity must be unambiguous, so send it once", name)}
		}
	}
	return nil
}

// headerIdentity is the identity in a trusted proxy's headers.
func headerIdentity(user, groupsValue, userHeader string) (Identity, *AuthError) {
	if strings.ContainsRune(user, ',') {
		// Applications that read the header as a list would take one
		// element, the log the whole value.
		return Identity{}, &AuthError{Status: http.StatusBadRequest, Code: "invalid_request",
			Description: fmt.Sprintf("the %s header holds a comma, which applications may read as a list of users; identity must be unambiguous", userHeader)}
	}
	var groups []string
	for g := range strings.SplitSeq(groupsValue, ",") {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	return checkIdentity(Identity{User: user, Groups: groups})
}

// bearerIdentity is the identity of the request's bearer token.
func (a *Authenticator) bearerIdentity(r *http.Request) (Identity, *AuthError) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return Identity{}, &AuthError{Status: http.StatusUnauthorized, Description: "no credentials: send an OpenID Connect bearer token"}
	}
	scheme, token, _ := strings.Cut(authz, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Identity{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_request", Description: "the Authorization header must be Bearer <token>"}
	}
	o := a.cfg.OIDC
	if o == nil {
		return Identity{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "this proxy accepts no bearer tokens"}
	}
	v := a.verifier.Load()
	if v == nil {
		return Identity{}, &AuthError{Status: http.StatusServiceUnavailable, Description: "the identity provider's keys are not available yet"}
	}
	cacheKey := tokenKey(token)
	if id, ok := a.tokens.get(cacheKey); ok {
		return id, nil
	}
	id, tokErr := a.verify(r.Context(), v, token)
	if tokErr != nil {
		return Identity{}, tokErr
	}
	if cacheable(id, a.now()) {
		a.tokens.putUntil(cacheKey, id.Identity, id.expiry)
	}
	return id.Identity, nil
}

// decisionHeaders are the request headers the identity is read from; the
// proxy forwards them as they were when it decided. After Authenticate the
// identity headers are present only when a trusted proxy sent them.
func (a *Authenticator) decisionHeaders() []string {
	return []string{"Authorization", http.CanonicalHeaderKey(a.cfg.UserHeader), http.CanonicalHeaderKey(a.cfg.GroupsHeader)}
}

// NormalisedHeaderName is the name under which CGI, WSGI, Rack, PHP and similar
// applications read a header: case folded and every character other than a
// letter or a digit made an underscore, so X-Forwarded-User,
// X-Forwarded_User and X.Forwarded.User all become x_forwarded_user (the
// application's HTTP_X_FORWARDED_USER).
func NormalisedHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'):
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// tokenKey is the cache key of a token: its SHA-256, so that the cache
// holds no usable token.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return string(sum[:])
}

// verifiedToken is the identity of a verified token, its expiry and its
// not-before time (zero when the token has no nbf).
type verifiedToken struct {
	Identity
	expiry, notBefore time.Time
}

// cacheable reports whether a verified token may be remembered at now: it
// has an expiry still ahead and no nbf still ahead.
func cacheable(t verifiedToken, now time.Time) bool {
	return !t.expiry.IsZero() && now.Before(t.expiry) && (t.notBefore.IsZero() || !now.Before(t.notBefore))
}

// notBefore reads a token's nbf claim (NumericDate, RFC 7519); the zero time
// when there is none. A value that is not a number counts as far in the
// future, so that the token is not remembered.
func notBefore(claims map[string]json.RawMessage) time.Time {
	raw, ok := claims["nbf"]
	if !ok || string(raw) == "null" {
		return time.Time{}
	}
	var secs float64
	if json.Unmarshal(raw, &secs) != nil || secs > 1<<40 {
		return time.Unix(1<<40, 0)
	}
	return time.Unix(int64(math.Ceil(secs)), 0) // rounded up: never earlier than the claim
}

// verify checks a bearer token and reads the identity from its claims.
func (a *Authenticator) verify(ctx context.Context, v *oidc.IDTokenVerifier, token string) (verifiedToken, *AuthError) {
	o := a.cfg.OIDC
	a.verifications.Add(1)
	tok, err := v.Verify(ctx, token)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return verifiedToken{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the token has expired"}
		}
		return verifiedToken{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the token is not valid here (signature, issuer, audience or time)"}
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return verifiedToken{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the token's claims cannot be read"}
	}
	var id Identity
	if err := json.Unmarshal(claims[o.UsernameClaim], &id.User); err != nil || id.User == "" {
		return verifiedToken{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: fmt.Sprintf("the token has no %s claim with a string value", o.UsernameClaim)}
	}
	if o.UsernameClaim == "email" {
		if raw, ok := claims["email_verified"]; ok {
			var verified bool
			if json.Unmarshal(raw, &verified) != nil || !verified {
				return verifiedToken{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "the token's email is not verified"}
			}
		}
	}
	id.ClientID = clientID(claims)
	if raw, ok := claims[o.GroupsClaim]; ok {
		var one string
		if err := json.Unmarshal(raw, &id.Groups); err != nil {
			if json.Unmarshal(raw, &one) != nil {
				return verifiedToken{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: fmt.Sprintf("the token's %s claim is neither a string nor a list of strings", o.GroupsClaim)}
			}
			id.Groups = []string{one}
		}
	}
	id, aerr := checkIdentity(id)
	if aerr != nil {
		return verifiedToken{}, aerr
	}
	return verifiedToken{Identity: id, expiry: tok.Expiry, notBefore: notBefore(claims)}, nil
}

// clientID names the OAuth client of a token: its azp (OIDC) or else its
// client_id (RFC 9068) claim, when a string; partner agreements may name it
// (kind Client).
func clientID(claims map[string]json.RawMessage) string {
	for _, c := range []string{"azp", "client_id"} {
		var id string
		if raw, ok := claims[c]; ok && json.Unmarshal(raw, &id) == nil && id != "" {
			return id
		}
	}
	return ""
}

// checkIdentity refuses identities that cannot be recorded faithfully.
func checkIdentity(id Identity) (Identity, *AuthError) {
	bad := func(s string, max int) bool {
		return len(s) > max || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl)
	}
	switch {
	case bad(id.User, maxUserLen):
		return Identity{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: fmt.Sprintf("the user name must be valid UTF-8 without control characters and at most %d bytes", maxUserLen)}
	case len(id.Groups) > maxGroups || slices.ContainsFunc(id.Groups, func(g string) bool { return bad(g, maxGroupLen) }):
		return Identity{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: fmt.Sprintf("at most %d groups of at most %d bytes each are accepted", maxGroups, maxGroupLen)}
	case bad(id.ClientID, maxUserLen):
		return Identity{}, &AuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: fmt.Sprintf("the client id must be valid UTF-8 without control characters and at most %d bytes", maxUserLen)}
	}
	return id, nil
}

// LoadJWKSFile reads a JSON Web Key Set for offline token verification and
// returns its public keys. Symmetric keys are refused.
func LoadJWKSFile(path string) ([]crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the key set holds no keys")
	}
	keys := make([]crypto.PublicKey, 0, len(set.Keys))
	for i, k := range set.Keys {
		pub := k.Public()
		if !pub.Valid() || !pub.IsPublic() {
			return nil, fmt.Errorf("keys[%d] is not an RSA, EC or Ed25519 public key", i)
		}
		switch pub.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("keys[%d] is not an RSA, EC or Ed25519 public key", i)
		}
		keys = append(keys, pub.Key)
	}
	return keys, nil
}

// algorithmsFor lists the signature algorithms the keys can verify.
func algorithmsFor(keys []crypto.PublicKey) []string {
	var algs []string
	add := func(a ...string) {
		for _, x := range a {
			if !slices.Contains(algs, x) {
				algs = append(algs, x)
			}
		}
	}
	for _, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			add(oidc.RS256, oidc.RS384, oidc.RS512, oidc.PS256, oidc.PS384, oidc.PS512)
		case *ecdsa.PublicKey:
			switch k.Curve {
			case elliptic.P256():
				add(oidc.ES256)
			case elliptic.P384():
				add(oidc.ES384)
			case elliptic.P521():
				add(oidc.ES512)
			}
		case ed25519.PublicKey:
			add(oidc.EdDSA)
		}
	}
	return algs
}
