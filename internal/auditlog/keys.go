package auditlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// PEM block types of the signing keys.
const (
	pemPrivateKey = "PRIVATE KEY" // PKCS #8
	pemPublicKey  = "PUBLIC KEY"  // PKIX (SubjectPublicKeyInfo)
)

// KeyID returns the id of a checkpoint signing key as written in the
// key_id member: the first 16 hex digits of the SHA-256 of the key's PKIX
// (SubjectPublicKeyInfo) DER encoding.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// EncodePrivateKeyPEM encodes a signing key as a PEM "PRIVATE KEY" block
// (PKCS #8), the form `openssl genpkey -algorithm ed25519` writes, for a
// Kubernetes Secret.
func EncodePrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key must be %d bytes, not %d", ed25519.PrivateKeySize, len(priv))
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// EncodePublicKeyPEM encodes a verification key as a PEM "PUBLIC KEY" block
// (PKIX), the form `openssl pkey -pubout` writes.
func EncodePublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key must be %d bytes, not %d", ed25519.PublicKeySize, len(pub))
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// DecodePrivateKeyPEM decodes the first PEM "PRIVATE KEY" block (PKCS #8)
// in data, which must hold an Ed25519 key.
func DecodePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, err := findPEM(data, pemPrivateKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS #8 private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is a %T, not an Ed25519 key", key)
	}
	return priv, nil
}

// DecodePublicKeyPEM decodes the first PEM "PUBLIC KEY" block (PKIX) in
// data, which must hold an Ed25519 key. A private key is refused: auditors
// should never need to hold the signing key.
func DecodePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	block, err := findPEM(data, pemPublicKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKIX public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is a %T, not an Ed25519 key", key)
	}
	return pub, nil
}

// ReadPrivateKeyFile reads a PEM signing key, such as a Secret mounted as a
// file.
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	priv, err := DecodePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return priv, nil
}

// ReadPublicKeyFile reads a PEM verification key.
func ReadPublicKeyFile(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	pub, err := DecodePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}

// findPEM returns the first PEM block of type want in data.
func findPEM(data []byte, want string) (*pem.Block, error) {
	var seen []string
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == want {
			return block, nil
		}
		seen = append(seen, block.Type)
	}
	switch {
	case len(seen) == 0:
		return nil, fmt.Errorf("no PEM %q block found", want)
	case want == pemPublicKey && slices.ContainsFunc(seen, func(t string) bool { return strings.Contains(t, "PRIVATE KEY") }):
		return nil, errors.New("this is a private key; give the public key (openssl pkey -in KEY -pubout)")
	default:
		return nil, fmt.Errorf("no PEM %q block found (found %s)", want, strings.Join(seen, ", "))
	}
}

// keyIDList lists the ids of keys for error messages.
func keyIDList(keys map[string]ed25519.PublicKey) string {
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}
