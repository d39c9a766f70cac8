package auditproxy

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestAuthenticatorOfflineKeysAndTokenCache(t *testing.T) {
	iss := newTestIssuer(t)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &iss.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadJWKSFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(context.Background(), IdentityConfig{OIDC: &OIDCConfig{
		IssuerURL: iss.srv.URL, Audience: testAudience, StaticKeys: keys, UsernameClaim: "email"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(); err != nil {
		t.Fatalf("offline keys not ready: %v", err)
	}
	auth := func(tok string) (Identity, *AuthError) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set("Authorization", "Bearer "+tok)
		return a.Authenticate(r)
	}

	tok := iss.token(t, "sub-1", nil, map[string]any{"email": "an@example.nl", "email_verified": true, "groups": "coaches"})
	id, aerr := auth(tok)
	if aerr != nil || id.User != "an@example.nl" || !slices.Equal(id.Groups, []string{"coaches"}) {
		t.Fatalf("identity %+v %v", id, aerr)
	}
	if a.tokens.len() != 1 {
		t.Errorf("verified token not cached")
	}
	if _, aerr := auth(iss.token(t, "sub-2", nil, map[string]any{"email": "bo@example.nl", "email_verified": false})); aerr == nil {
		t.Error("unverified email accepted")
	}
	if _, aerr := auth(iss.token(t, "sub-3", nil, nil)); aerr == nil {
		t.Error("token without the username claim accepted")
	}

	// A cached token stops counting when it expires, whatever the cache TTL.
	short := iss.token(t, "sub-4", nil, map[string]any{"email": "cy@example.nl", "exp": time.Now().Add(2 * time.Second).Unix()})
	if _, aerr := auth(short); aerr != nil {
		t.Fatal(aerr)
	}
	a.tokens.now = func() time.Time { return time.Now().Add(3 * time.Second) }
	if _, ok := a.tokens.get(tokenKey(short)); ok {
		t.Error("an expired token is still cached")
	}
}

func TestAuthenticatorStripsUntrustedHeaders(t *testing.T) {
	a, err := NewAuthenticator(context.Background(), IdentityConfig{
		TrustedProxyCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")},
		UserHeader:        "X-Auth-Request-User", GroupsHeader: "X-Auth-Request-Groups"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for addr, trusted := range map[string]bool{
		"10.0.0.7:5000":          true,
		"[::ffff:10.0.0.7]:5000": true,
		"[fd00::1]:5000":         true,
		"10.0.1.7:5000":          false,
		"[fd00:0:0:1::1]:5000":   false,
		"not-an-address":         false,
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		r.Header.Set("X-Auth-Request-User", "an@example.nl")
		r.Header.Set("X-Auth-Request-Groups", "coaches,admins")
		id, aerr := a.Authenticate(r)
		if trusted {
			if aerr != nil || id.User != "an@example.nl" || len(id.Groups) != 2 {
				t.Errorf("%s: %+v %v", addr, id, aerr)
			}
			continue
		}
		if aerr == nil || aerr.Status != http.StatusUnauthorized {
			t.Errorf("%s: identity accepted from an untrusted source", addr)
		}
		if r.Header.Get("X-Auth-Request-User") != "" || r.Header.Get("X-Auth-Request-Groups") != "" {
			t.Errorf("%s: identity headers not stripped", addr)
		}
	}
}

// tokenAuth is an authenticator with the test issuer's key as static keys
// and a clock the test moves.
type tokenAuth struct {
	a     *Authenticator
	clock *atomic.Int64 // unix nanoseconds
}

func newTokenAuth(t *testing.T, iss *testIssuer) tokenAuth {
	t.Helper()
	clock := &atomic.Int64{}
	clock.Store(time.Now().UnixNano())
	a, err := newAuthenticator(context.Background(), IdentityConfig{OIDC: &OIDCConfig{
		IssuerURL: iss.srv.URL, Audience: testAudience, StaticKeys: []crypto.PublicKey{&iss.key.PublicKey}}}, nil,
		func() time.Time { return time.Unix(0, clock.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	return tokenAuth{a: a, clock: clock}
}

func (ta tokenAuth) advance(d time.Duration) { ta.clock.Add(int64(d)) }

func (ta tokenAuth) auth(tok string) (Identity, *AuthError) {
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("Authorization", "Bearer "+tok)
	return ta.a.Authenticate(r)
}

func TestTokenCacheVerifiesOncePerToken(t *testing.T) {
	iss := newTestIssuer(t)
	ta := newTokenAuth(t, iss)
	tok := iss.token(t, "an@example.nl", []string{"coaches"}, nil)
	for i := range 5 {
		id, aerr := ta.auth(tok)
		if aerr != nil || id.User != "an@example.nl" || !slices.Equal(id.Groups, []string{"coaches"}) {
			t.Fatalf("request %d: %+v %v", i, id, aerr)
		}
	}
	if n := ta.a.verifications.Load(); n != 1 {
		t.Fatalf("the same token was verified %d times in 5 requests, want once", n)
	}
	other := iss.token(t, "bo@example.nl", nil, nil)
	if id, aerr := ta.auth(other); aerr != nil || id.User != "bo@example.nl" {
		t.Fatalf("other token: %+v %v", id, aerr)
	}
	if n := ta.a.verifications.Load(); n != 2 {
		t.Fatalf("a different token was not verified: %d verifications", n)
	}
	// A token that differs from a cached one is verified, not matched: a
	// forged signature on the same claims is refused.
	forged := tok[:len(tok)-4] + "AAAA"
	if forged == tok {
		forged = tok[:len(tok)-4] + "BBBB"
	}
	if _, aerr := ta.auth(forged); aerr == nil || aerr.Status != http.StatusUnauthorized {
		t.Fatalf("forged token accepted: %v", aerr)
	}
	if n := ta.a.verifications.Load(); n != 3 {
		t.Fatalf("forged token not verified: %d verifications", n)
	}
}

func TestTokenCacheRefusesExpiredCachedToken(t *testing.T) {
	iss := newTestIssuer(t)
	ta := newTokenAuth(t, iss)
	exp := time.Unix(0, ta.clock.Load()).Add(time.Minute)
	tok := iss.token(t, "an@example.nl", nil, map[string]any{"exp": exp.Unix()})
	if _, aerr := ta.auth(tok); aerr != nil {
		t.Fatal(aerr)
	}
	ta.advance(30 * time.Second)
	if _, aerr := ta.auth(tok); aerr != nil {
		t.Fatal(aerr)
	}
	if n := ta.a.verifications.Load(); n != 1 {
		t.Fatalf("%d verifications before exp, want 1", n)
	}
	ta.advance(31 * time.Second) // past exp
	_, aerr := ta.auth(tok)
	if aerr == nil || aerr.Status != http.StatusUnauthorized || aerr.Description != "the token has expired" {
		t.Fatalf("expired cached token: %v, want 401 expired", aerr)
	}
	if ta.a.tokens.len() != 0 {
		t.Error("the expired token is still in the cache")
	}
}

func TestTokenCacheMaxAgeBoundsLongLivedTokens(t *testing.T) {
	iss := newTestIssuer(t)
	ta := newTokenAuth(t, iss)
	tok := iss.token(t, "an@example.nl", nil, map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix()})
	if _, aerr := ta.auth(tok); aerr != nil {
		t.Fatal(aerr)
	}
	ta.advance(tokenCacheMaxAge + time.Second)
	if _, aerr := ta.auth(tok); aerr != nil {
		t.Fatal(aerr)
	}
	if n := ta.a.verifications.Load(); n != 2 {
		t.Fatalf("a token cached beyond the maximum age: %d verifications, want 2", n)
	}
}

func TestTokenCacheSkipsTokensNotYetValid(t *testing.T) {
	iss := newTestIssuer(t)
	ta := newTokenAuth(t, iss)
	// Within go-oidc's leeway for nbf: accepted, but not remembered.
	nbf := time.Unix(0, ta.clock.Load()).Add(time.Minute)
	tok := iss.token(t, "an@example.nl", nil, map[string]any{"nbf": nbf.Unix()})
	for range 2 {
		if _, aerr := ta.auth(tok); aerr != nil {
			t.Fatal(aerr)
		}
	}
	if n, l := ta.a.verifications.Load(), ta.a.tokens.len(); n != 2 || l != 0 {
		t.Fatalf("a token with nbf ahead: %d verifications, %d cached; want 2, 0", n, l)
	}
	ta.advance(2 * time.Minute)
	for range 2 {
		if _, aerr := ta.auth(tok); aerr != nil {
			t.Fatal(aerr)
		}
	}
	if n := ta.a.verifications.Load(); n != 3 {
		t.Fatalf("a token valid since nbf not cached: %d verifications, want 3", n)
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	iss := newTestIssuer(t)
	ta := newTokenAuth(t, iss)
	first := iss.token(t, "user-0", nil, nil)
	if _, aerr := ta.auth(first); aerr != nil {
		t.Fatal(aerr)
	}
	for i := 1; i <= tokenCacheSize; i++ {
		if _, aerr := ta.auth(iss.token(t, fmt.Sprintf("user-%d", i), nil, nil)); aerr != nil {
			t.Fatal(aerr)
		}
	}
	if l := ta.a.tokens.len(); l != tokenCacheSize {
		t.Fatalf("%d tokens cached, want the bound %d", l, tokenCacheSize)
	}
	before := ta.a.verifications.Load()
	if _, aerr := ta.auth(first); aerr != nil {
		t.Fatal(aerr)
	}
	if ta.a.verifications.Load() != before+1 {
		t.Fatal("the least recently used token was not evicted")
	}
}

func TestCacheable(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for name, tc := range map[string]struct {
		tok  verifiedToken
		want bool
	}{
		"valid":      {verifiedToken{expiry: now.Add(time.Minute)}, true},
		"no expiry":  {verifiedToken{}, false},
		"expired":    {verifiedToken{expiry: now}, false},
		"nbf passed": {verifiedToken{expiry: now.Add(time.Minute), notBefore: now}, true},
		"nbf ahead":  {verifiedToken{expiry: now.Add(time.Minute), notBefore: now.Add(time.Second)}, false},
	} {
		if got := cacheable(tc.tok, now); got != tc.want {
			t.Errorf("%s: cacheable %v, want %v", name, got, tc.want)
		}
	}
}

func TestNotBefore(t *testing.T) {
	for raw, want := range map[string]time.Time{
		"":             {},
		"null":         {},
		"1800000000":   time.Unix(1_800_000_000, 0),
		"1800000000.2": time.Unix(1_800_000_001, 0),
		`"soon"`:       time.Unix(1<<40, 0),
		"1e300":        time.Unix(1<<40, 0),
	} {
		claims := map[string]json.RawMessage{}
		if raw != "" {
			claims["nbf"] = json.RawMessage(raw)
		}
		if got := notBefore(claims); !got.Equal(want) {
			t.Errorf("nbf %q: %v, want %v", raw, got, want)
		}
	}
}
