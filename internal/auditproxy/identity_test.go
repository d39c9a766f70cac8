package auditproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
