package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// keyFiles are the files of a signing-key directory with versions of
// testKey(1), testKey(2), ... active from the given times.
func keyFiles(t *testing.T, activeFrom ...time.Time) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i, at := range activeFrom {
		v := i + 1
		priv := testKey(byte(v))
		privPEM, err := EncodePrivateKeyPEM(priv)
		if err != nil {
			t.Fatal(err)
		}
		pubPEM, _ := EncodePublicKeyPEM(priv.Public().(ed25519.PublicKey))
		files[SigningKeyFile(v)] = privPEM
		files[SigningPublicFile(v)] = pubPEM
		files[SigningActiveFromFile(v)] = []byte(at.UTC().Format(time.RFC3339))
	}
	return files
}

func TestParseSigningKeys(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	good := keyFiles(t, t0, t0.Add(time.Hour))
	with := func(name string, value []byte) map[string][]byte {
		m := map[string][]byte{}
		for k, v := range good {
			m[k] = v
		}
		if value == nil {
			delete(m, name)
		} else {
			m[name] = value
		}
		return m
	}
	for _, tt := range []struct {
		name     string
		files    map[string][]byte
		versions int
		wantErr  string
	}{
		{"two versions", good, 2, ""},
		{"other files are ignored", with("..data", []byte("x")), 2, ""},
		{"no public key is fine", with(SigningPublicFile(2), nil), 2, ""},
		{"no private key and no public key", func() map[string][]byte {
			m := with(SigningKeyFile(2), nil)
			delete(m, SigningPublicFile(2))
			return m
		}(), 0, "signing-2.key: missing"},
		{"no activation time", with(SigningActiveFromFile(1), nil), 0, "signing-1.active-from: missing"},
		{"activation time not RFC 3339", with(SigningActiveFromFile(1), []byte("tomorrow")), 0, "signing-1.active-from: must be an RFC 3339 time"},
		{"private key not PEM", with(SigningKeyFile(1), []byte("key")), 0, "signing-1.key: no PEM"},
		{"public key of another version", with(SigningPublicFile(1), good[SigningPublicFile(2)]), 0, "signing-1.pub: is not the public key of signing-1.key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseSigningKeys(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Errorf("the error quotes key material: %v", err)
				}
				return
			}
			if err != nil || len(keys) != tt.versions {
				t.Fatalf("%d versions, %v; want %d", len(keys), err, tt.versions)
			}
			for i, k := range keys {
				if k.Version != i+1 || !k.Key.Equal(testKey(byte(i+1))) || k.Retired() || k.ID() != KeyID(testKey(byte(i+1)).Public().(ed25519.PublicKey)) {
					t.Errorf("version %d: %+v", i+1, k)
				}
			}
		})
	}
}

// A retired version has its public key and activation time, no private
// key: it is read, and never signed with.
func TestRetiredSigningKey(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	files := keyFiles(t, t0, t0.Add(time.Hour), t0.Add(2*time.Hour))
	delete(files, SigningKeyFile(1))
	keys, err := ParseSigningKeys(files)
	if err != nil || len(keys) != 3 {
		t.Fatalf("%d versions, %v", len(keys), err)
	}
	if !keys[0].Retired() || keys[1].Retired() || !keys[0].Public().Equal(testKey(1).Public().(ed25519.PublicKey)) || keys[0].ID() != KeyID(publicKey) {
		t.Fatalf("retired version 1 read as %+v", keys[0])
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{{t0, 2}, {t0.Add(-time.Minute), 2}, {t0.Add(90 * time.Minute), 2}, {t0.Add(2 * time.Hour), 3}} {
		if k, err := ActiveSigningKey(keys, tt.at); err != nil || k.Version != tt.want {
			t.Errorf("at %s: version %d (%v); want %d, never the retired one", tt.at, k.Version, err, tt.want)
		}
	}
	if _, err := ActiveSigningKey(keys[:1], t0); err == nil || !strings.Contains(err.Error(), "no version has its private key") {
		t.Errorf("only a retired version: %v", err)
	}
}

func TestActiveSigningKey(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	keys, err := ParseSigningKeys(keyFiles(t, t0, t0.Add(time.Hour), t0.Add(2*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{t0.Add(-time.Minute), 1}, // a clock set back: the oldest, never none
		{t0, 1},
		{t0.Add(time.Hour - time.Second), 1},
		{t0.Add(time.Hour), 2},
		{t0.Add(3 * time.Hour), 3},
	} {
		if k, err := ActiveSigningKey(keys, tt.at); err != nil || k.Version != tt.want {
			t.Errorf("at %s: version %d (%v); want %d", tt.at, k.Version, err, tt.want)
		}
	}
	if _, err := ActiveSigningKey(nil, t0); err == nil {
		t.Error("no keys: no error")
	}
}

// A signing-key directory as the kubelet mounts a Secret: entries are
// symbolic links into a hidden directory.
func TestReadSigningKeyDir(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	data := filepath.Join(dir, "..2026_12_01_12_00_00.000000001")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range keyFiles(t, t0, t0.Add(time.Hour)) {
		if err := os.WriteFile(filepath.Join(data, name), content, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(filepath.Base(data), name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadSigningKeyDir(dir)
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d versions, %v", len(keys), err)
	}
	if _, err := ReadSigningKeyDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no signing-1.key") {
		t.Errorf("empty directory: %v", err)
	}
}

// SetSigningKey switches the key of the checkpoints that follow, after the
// old key has signed the events written under it; the log verifies with
// both public keys and not with either alone.
func TestWriterSetSigningKey(t *testing.T) {
	opts := testOptions(t)
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 7 { // a checkpoint after 5, two events unsigned
		if err := w.Append(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	second := testKey(2)
	if err := w.SetSigningKey(second[:10]); err == nil {
		t.Error("a short key was taken")
	}
	if err := w.SetSigningKey(second); err != nil {
		t.Fatal(err)
	}
	if w.SigningKeyID() != KeyID(second.Public().(ed25519.PublicKey)) {
		t.Errorf("key id %s after the switch", w.SigningKeyID())
	}
	for i := 7; i < 10; i++ {
		if err := w.Append(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := splitLines(data)
	var signers []string
	for _, l := range lines {
		if r, err := ParseRecord(bytes.TrimSuffix(l, []byte("\n"))); err == nil && r.Type == TypeCheckpoint {
			signers = append(signers, fmt.Sprintf("%d:%s", r.Seq, r.KeyID))
		}
	}
	old, next := KeyID(publicKey), KeyID(second.Public().(ed25519.PublicKey))
	// 1-5 events, 6 checkpoint, 7-8 events, 9 checkpoint of the old key at
	// the switch, 10-12 events, 13 final checkpoint of the new key.
	if want := []string{"6:" + old, "9:" + old, "13:" + next}; !slices.Equal(signers, want) {
		t.Errorf("checkpoints %v; want %v", signers, want)
	}
	both := []ed25519.PublicKey{publicKey, second.Public().(ed25519.PublicKey)}
	if res, err := VerifyWithOptions(bytes.NewReader(data), VerifyOptions{PublicKeys: both}); err != nil || !res.OK || res.Events != 10 {
		t.Fatalf("with both keys: %+v %v", res, err)
	}
	for _, one := range both {
		if res, _ := VerifyWithOptions(bytes.NewReader(data), VerifyOptions{PublicKeys: []ed25519.PublicKey{one}}); res.OK || res.Reason != ReasonBadSignature {
			t.Errorf("with key %s alone: %+v; want a bad signature", KeyID(one), res)
		}
	}
}
