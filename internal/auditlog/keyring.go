package auditlog

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The files of a versioned signing-key directory (the store's
// <store>-audit-signing Secret, mounted into the audit proxy): for every
// version n, signing-n.key holds the PEM Ed25519 private key (PKCS #8),
// signing-n.pub its PEM public key and signing-n.active-from the RFC 3339
// time from which the proxy may sign with it. A new version becomes active
// only after its public key has had time to reach every verifier (the trust
// ConfigMap and the logbook), so that no checkpoint is ever signed with a
// key a verifier cannot know yet.
var signingFile = regexp.MustCompile(`^signing-([1-9][0-9]{0,8})\.(key|pub|active-from)$`)

// SigningKeyFile is the file of version v's private key.
func SigningKeyFile(v int) string { return "signing-" + strconv.Itoa(v) + ".key" }

// SigningPublicFile is the file of version v's public key.
func SigningPublicFile(v int) string { return "signing-" + strconv.Itoa(v) + ".pub" }

// SigningActiveFromFile is the file of version v's activation time.
func SigningActiveFromFile(v int) string { return "signing-" + strconv.Itoa(v) + ".active-from" }

// SigningKey is one version of a signing-key directory.
type SigningKey struct {
	Version    int
	Key        ed25519.PrivateKey
	ActiveFrom time.Time
}

// Public is the version's public key.
func (k SigningKey) Public() ed25519.PublicKey {
	pub, _ := k.Key.Public().(ed25519.PublicKey)
	return pub
}

// ID is the version's key id (KeyID), as its checkpoints name it.
func (k SigningKey) ID() string { return KeyID(k.Public()) }

// IsSigningKeyFile says whether name is one of the files of a signing-key
// directory.
func IsSigningKeyFile(name string) bool { return signingFile.MatchString(name) }

// ParseSigningKeys decodes the versions of a signing-key directory from its
// files (name to content; other names are ignored), ascending by version.
// Every version needs its key and its activation time, and a public key,
// when given, must be the key's. Errors name the file and the rule, never
// key material.
func ParseSigningKeys(files map[string][]byte) ([]SigningKey, error) {
	byVersion := map[int]*SigningKey{}
	pubs := map[int][]byte{}
	var errs []error
	for name, data := range files {
		m := signingFile.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1]) // the pattern allows at most nine digits
		k := byVersion[v]
		if k == nil {
			k = &SigningKey{Version: v}
			byVersion[v] = k
		}
		switch m[2] {
		case "key":
			priv, err := DecodePrivateKeyPEM(data)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			k.Key = priv
		case "pub":
			pubs[v] = data
		default:
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(data)))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: must be an RFC 3339 time such as 2026-12-01T12:00:00Z", name))
				continue
			}
			k.ActiveFrom = t
		}
	}
	keys := make([]SigningKey, 0, len(byVersion))
	for v, k := range byVersion {
		switch {
		case k.Key == nil:
			errs = append(errs, fmt.Errorf("%s: missing: version %d has no private key", SigningKeyFile(v), v))
			continue
		case k.ActiveFrom.IsZero():
			errs = append(errs, fmt.Errorf("%s: missing: version %d has no activation time", SigningActiveFromFile(v), v))
			continue
		}
		if p, ok := pubs[v]; ok {
			pub, err := DecodePublicKeyPEM(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", SigningPublicFile(v), err))
				continue
			}
			if !pub.Equal(k.Public()) {
				errs = append(errs, fmt.Errorf("%s: is not the public key of %s", SigningPublicFile(v), SigningKeyFile(v)))
				continue
			}
		}
		keys = append(keys, *k)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(keys, func(a, b SigningKey) int { return a.Version - b.Version })
	return keys, nil
}

// ActiveSigningKey is the newest version of keys (ascending by version)
// that is active at now: the one to sign with. When none is (a clock set
// back), it is the oldest: there is no older key to sign with, and its
// public key was published before it was written. It is an error when
// there are no keys.
func ActiveSigningKey(keys []SigningKey, now time.Time) (SigningKey, error) {
	if len(keys) == 0 {
		return SigningKey{}, fmt.Errorf("no signing key: no %s", SigningKeyFile(1))
	}
	for i := len(keys) - 1; i > 0; i-- {
		if !now.Before(keys[i].ActiveFrom) {
			return keys[i], nil
		}
	}
	return keys[0], nil
}

// ReadSigningKeyDir reads the versions of a signing-key directory, such as
// a mounted Secret (whose entries are symbolic links into a hidden
// directory the kubelet swaps as a whole, so a read sees one version of
// the Secret).
func ReadSigningKeyDir(dir string) ([]SigningKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read signing-key directory: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !IsSigningKeyFile(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read signing-key directory: %w", err)
		}
		files[e.Name()] = data
	}
	keys, err := ParseSigningKeys(files)
	if err != nil {
		return nil, fmt.Errorf("signing-key directory %s: %w", dir, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("signing-key directory %s: no %s", dir, SigningKeyFile(1))
	}
	return keys, nil
}
