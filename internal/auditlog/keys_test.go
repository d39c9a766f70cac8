package auditlog

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyPEMRoundTrip: keys survive PEM encoding (PKCS #8 and PKIX), and
// the decoders refuse the wrong block or algorithm with a clear error.
func TestKeyPEMRoundTrip(t *testing.T) {
	privPEM, err := EncodePrivateKeyPEM(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := EncodePublicKeyPEM(publicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN PRIVATE KEY-----")) || !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Errorf("unexpected PEM types:\n%s%s", privPEM, pubPEM)
	}
	priv, err := DecodePrivateKeyPEM(privPEM)
	if err != nil || !priv.Equal(signingKey) {
		t.Errorf("private key round trip: %v", err)
	}
	pub, err := DecodePublicKeyPEM(pubPEM)
	if err != nil || !pub.Equal(publicKey) {
		t.Errorf("public key round trip: %v", err)
	}
	if len(KeyID(publicKey)) != 16 || KeyID(publicKey) == KeyID(testKey(2).Public().(ed25519.PublicKey)) {
		t.Errorf("KeyID %q is not 16 hex digits distinct per key", KeyID(publicKey))
	}

	if _, err := DecodePublicKeyPEM(privPEM); err == nil || !strings.Contains(err.Error(), "this is a private key") {
		t.Errorf("a private key as public key: %v", err)
	}
	if _, err := DecodePrivateKeyPEM(pubPEM); err == nil {
		t.Error("a public key was accepted as private key")
	}
	if _, err := DecodePublicKeyPEM([]byte("not pem")); err == nil {
		t.Error("garbage accepted as public key")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if _, err := DecodePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err == nil || !strings.Contains(err.Error(), "not an Ed25519 key") {
		t.Errorf("an ECDSA key: %v", err)
	}
	if _, err := EncodePrivateKeyPEM(signingKey[:10]); err == nil {
		t.Error("a short private key was encoded")
	}
}

// TestOpenSSLKeys: keys made with openssl, as an operator would for the
// Kubernetes Secret, sign and verify a log.
func TestOpenSSLKeys(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "audit-signing.pem"), filepath.Join(dir, "audit-signing.pub.pem")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "ed25519", "-out", privPath},
		{"pkey", "-in", privPath, "-pubout", "-out", pubPath},
	} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Skipf("openssl %s: %v: %s", args[0], err, out)
		}
	}
	priv, err := ReadPrivateKeyFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKeyFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	opts.SigningKey = priv
	writeEvents(t, opts, 0, 7)
	data, _ := os.ReadFile(opts.Path)
	res, err := Verify(bytes.NewReader(data), pub)
	if err != nil || !res.OK || res.Events != 7 {
		t.Errorf("log signed with an openssl key: %s, %v", res, err)
	}
}
