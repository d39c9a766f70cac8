package policyfile

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// doc is a document of the tests; compiled is it made ready.
type doc struct {
	Version int    `json:"version"`
	Store   string `json:"store"`
}

type compiled struct{ store string }

var testFormat = Format{Name: "test policy", MinVersion: 1, MaxVersion: 2}

func decodeDoc(data []byte) (doc, error) {
	var d doc
	err := testFormat.Decode(data, &d)
	return d, err
}

// compileDoc refuses a document without a store, as a role refuses what it
// could not enforce.
func compileDoc(d doc) (*compiled, error) {
	if d.Store == "" {
		return nil, errors.New("test policy: no store")
	}
	return &compiled{store: d.Store}, nil
}

func parse(data []byte) (*compiled, error) {
	c, _, err := Load(data, decodeDoc, compileDoc)
	return c, err
}

func TestDecode(t *testing.T) {
	single := Format{Name: "egress policy", MinVersion: 1, MaxVersion: 1}
	cases := []struct {
		name   string
		format Format
		data   string
		want   string // error text; "" loads
	}{
		{"lowest version", testFormat, `{"version":1,"store":"s"}`, ""},
		{"highest version", testFormat, `{"version":2,"store":"s"}`, ""},
		{"newer version", testFormat, `{"version":3,"store":"s"}`, "test policy version 3 is not supported (want 1 to 2)"},
		{"no version", testFormat, `{"store":"s"}`, "test policy version 0 is not supported (want 1 to 2)"},
		{"the one version", single, `{"version":1}`, ""},
		{"another version of a one-version format", single, `{"version":2}`, "egress policy version 2 is not supported (want 1)"},
		{"not JSON", testFormat, `{"version":`, "decode test policy: "},
		{"wrong type", testFormat, `{"version":1,"store":7}`, "decode test policy: "},
	}
	for _, c := range cases {
		var d doc
		err := c.format.Decode([]byte(c.data), &d)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// TestEncodeIsCanonical: the same document gives the same bytes, which end
// in a newline and decode to it again, with the hash of those bytes.
func TestEncodeIsCanonical(t *testing.T) {
	a, hashA, err := testFormat.Encode(doc{Version: 2, Store: "cjg-dossiers"})
	if err != nil {
		t.Fatal(err)
	}
	b, hashB, _ := testFormat.Encode(doc{Version: 2, Store: "cjg-dossiers"})
	if !bytes.Equal(a, b) || hashA != hashB || hashA != Hash(a) || len(hashA) != 64 || !bytes.HasSuffix(a, []byte("}\n")) {
		t.Fatalf("not canonical: %q %s %s", a, hashA, hashB)
	}
	if d, err := decodeDoc(a); err != nil || d.Store != "cjg-dossiers" {
		t.Fatalf("round trip: %+v %v", d, err)
	}
	if _, _, err := testFormat.Encode(func() {}); err == nil || !strings.Contains(err.Error(), "encode test policy") {
		t.Fatalf("unencodable: %v", err)
	}
}

func TestLoad(t *testing.T) {
	data := []byte(`{"version":1,"store":"s"}`)
	c, hash, err := Load(data, decodeDoc, compileDoc)
	if err != nil || c.store != "s" || hash != Hash(data) {
		t.Fatalf("load: %+v %s %v", c, hash, err)
	}
	for _, bad := range []string{`{"version":9,"store":"s"}`, `{"version":1}`} {
		if c, hash, err := Load([]byte(bad), decodeDoc, compileDoc); err == nil || c != nil || hash != "" {
			t.Errorf("%s loaded: %+v %q", bad, c, hash)
		}
	}
}

// TestSourceKeepsTheLastGoodDocument: nothing is in force (and the source
// is not ready) until a document loads; a document that does not load, a
// missing file or an unreadable one leave the last good one in force; the
// same content is not loaded twice; each failure is logged once.
func TestSourceKeepsTheLastGoodDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	var logged bytes.Buffer
	src := NewSource(path, "test policy", slog.New(slog.NewTextHandler(&logged, nil)), parse, func(c *compiled) []any { return []any{"store", c.store} })
	if _, err := src.Reload(); err == nil || src.Current() != nil || src.Ready() == nil || src.Ready().Error() != "no test policy is loaded yet" {
		t.Fatalf("a missing file loaded: %v %v", err, src.Ready())
	}
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"version":1}`)
	if changed, err := src.Reload(); changed || err == nil || src.Current() != nil {
		t.Fatalf("a document that cannot be enforced was put in force: %v %v", changed, err)
	}
	write(`{"version":1,"store":"first"}`)
	if changed, err := src.Reload(); !changed || err != nil || src.Ready() != nil || src.Current().store != "first" {
		t.Fatalf("first load: %v %v", changed, err)
	}
	first := src.Current()
	if changed, err := src.Reload(); changed || err != nil || src.Current() != first {
		t.Errorf("unchanged content swapped: %v %v", changed, err)
	}
	for _, broken := range []string{`{"version":3,"store":"newer"}`, `{"version":2}`, `not json`} {
		write(broken)
		if changed, err := src.Reload(); changed || err == nil || src.Current() != first {
			t.Errorf("%s replaced the document in force: %v %v", broken, changed, err)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := src.Reload(); err == nil || src.Current() != first || src.Ready() != nil {
			t.Error("a missing file dropped the document in force")
		}
	}
	if n := strings.Count(logged.String(), "cannot read the test policy"); n != 2 {
		t.Errorf("the missing file was logged %d times, want once before and once after the first load:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "store=first") {
		t.Errorf("the loaded document was not described in the log:\n%s", logged.String())
	}
}

// TestSourceRunPicksUpAChange: Run polls the file and swaps in a changed
// document, as Kubernetes updates a mounted ConfigMap.
func TestSourceRunPicksUpAChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"store":"old"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	src := NewSource(path, "test policy", nil, parse, func(*compiled) []any { return nil })
	if _, err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx, 10*time.Millisecond); close(done) }()
	if err := os.WriteFile(path, []byte(`{"version":2,"store":"new"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.Current().store != "new" {
		if time.Now().After(deadline) {
			t.Fatal("the changed document was not picked up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
