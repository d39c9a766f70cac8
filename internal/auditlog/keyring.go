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
// key a verifier cannot know yet. A retired version keeps its public key and
// activation time but not its private key: nothing signs with it again.
var signingFile = regexp.MustCompile(`^signing-([1-9][0-9]{0,8})\.(key|pub|active-from)$`)

// SigningKeyFile is the file of version v's private key.
func SigningKeyFile(v int) string { return "signing-" + strconv.Itoa(v) + ".key" }

// SigningPublicFile is the file of version v's public key.
func SigningPublicFile(v int) string { return "signing-" + strconv.Itoa(v) + ".pub" }

// SigningActiveFromFile is the file of version v's activation time.
func SigningActiveFromFile(v int) string { return "signing-" + strconv.Itoa(v) + ".active-from" }

// SigningKey is one version of a signing-key directory. Key is nil for a
// retired version.
type SigningKey struct {
	Version    int
	Key        ed25519.PrivateKey
	PublicKey  ed25519.PublicKey
	ActiveFrom time.Time
}

// Public is the version's public key.
func (k SigningKey) Public() ed25519.PublicKey {
	if k.Key != nil {
		pub, _ := k.Key.Public().(ed25519.PublicKey)
		return pub
	}
	return k.PublicKey
}

// Retired says whether the version has no private key any more.
func (k SigningKey) Retired() bool { return k.Key == nil }

// ID is the version's key id (KeyID), as its checkpoints name it.
func (k SigningKey) ID() string { return KeyID(k.Public()) }

// IsSigningKeyFile says whether name is one of the files of a signing-key
// directory.
func IsSigningKeyFile(name string) bool { return signingFile.MatchString(name) }

// ParseSigningKeys decodes the versions of a signing-key directory from its
// files (name to content; other names are ignored), ascending by version.
// Every version needs its activation time and its private key or, once
// retired, its public key; a public key given with the private key must be
// the private key's. Errors name the file and the rule, never key material.
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
		if m[2] == "pub" {
			pubs[v] = data
		} else if err := k.readFile(m[2], data); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	keys := make([]SigningKey, 0, len(byVersion))
	for v, k := range byVersion {
		if err := k.complete(pubs[v]); err != nil {
			errs = append(errs, err)
			continue
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

// readFile decodes the version's private key ("key") or activation time
// ("active-from").
func (k *SigningKey) readFile(kind string, data []byte) error {
	if kind == "key" {
		priv, err := DecodePrivateKeyPEM(data)
		if err != nil {
			return err
		}
		k.Key = priv
		return nil
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(data)))
	if err != nil {
		return errors.New("must be an RFC 3339 time such as 2026-12-01T12:00:00Z")
	}
	k.ActiveFrom = t
	return nil
}

// complete checks that the version has its activation time and its
// private key or public key (pubPEM, nil when there is none), which must
// agree, and sets PublicKey.
func (k *SigningKey) complete(pubPEM []byte) error {
	v := k.Version
	switch {
	case k.Key == nil && pubPEM == nil:
		return fmt.Errorf("%s: missing: version %d has no private key and no public key", SigningKeyFile(v), v)
	case k.ActiveFrom.IsZero():
		return fmt.Errorf("%s: missing: version %d has no activation time", SigningActiveFromFile(v), v)
	}
	if pubPEM != nil {
		pub, err := DecodePublicKeyPEM(pubPEM)
		if err != nil {
			return fmt.Errorf("%s: %w", SigningPublicFile(v), err)
		}
		if k.Key != nil && !pub.Equal(k.Public()) {
			return fmt.Errorf("%s: is not the public key of %s", SigningPublicFile(v), SigningKeyFile(v))
		}
		k.PublicKey = pub
	}
	k.PublicKey = k.Public()
	return nil
}

// ActiveSigningKey is the newest version of keys (ascending by version)
// with a private key that is active at now: the one to sign with. When none
// is (a clock set back), it is the oldest with a private key: there is no
// older key to sign with, and its public key was published before it was
// written. It is an error when no version has a private key.
func ActiveSigningKey(keys []SigningKey, now time.Time) (SigningKey, error) {
	var usable []SigningKey
	for _, k := range keys {
		if !k.Retired() {
			usable = append(usable, k)
		}
	}
	if len(usable) == 0 {
		return SigningKey{}, errors.New("no signing key: no version has its private key (signing-N.key)")
	}
	for i := len(usable) - 1; i > 0; i-- {
		if !now.Before(usable[i].ActiveFrom) {
			return usable[i], nil
		}
	}
	return usable[0], nil
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
