package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestImageEnv(t *testing.T) {
	const def = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"none", nil, []string{def}},
		{"others", []string{"TZ=UTC"}, []string{def, "TZ=UTC"}},
		{"own PATH replaces the default", []string{"PATH=/usr/lib/postgresql/15/bin:/bin", "TZ=UTC"}, []string{"PATH=/usr/lib/postgresql/15/bin:/bin", "TZ=UTC"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := imageEnv(tc.env); !slices.Equal(got, tc.want) {
				t.Fatalf("imageEnv(%q) = %q, want %q", tc.env, got, tc.want)
			}
		})
	}
}

// TestWriteWithRoot builds an image from a binary and a tree and reads the
// layer back: every entry of the tree at its path, owned by root, modes and
// links kept, the binary once, at its path.
func TestWriteWithRoot(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable() // an ELF binary to put in
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	for _, d := range []string{"etc", "tmp", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("postgres:x:65532:65532::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/bin/dash", filepath.Join(root, "etc/sh")); err != nil {
		t.Fatal(err)
	}
	// A stale copy at the binary's path: the binary wins, written once.
	if err := os.WriteFile(filepath.Join(root, "usr/bin/prog"), []byte("stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	o := options{binary: self, tag: "local/t:dev", out: out, path: "/usr/bin/prog", root: root, workdir: "/", created: time.Unix(0, 0).UTC()}
	if err := write(o); err != nil {
		t.Fatalf("write: %v", err)
	}

	entries := layerEntries(t, out)
	want := map[string]struct {
		typ  byte
		mode int64
		link string
	}{
		"etc/":         {tar.TypeDir, 0o755, ""},
		"etc/passwd":   {tar.TypeReg, 0o644, ""},
		"etc/sh":       {tar.TypeSymlink, 0o777, "/usr/bin/dash"},
		"tmp/":         {tar.TypeDir, 0o1777, ""},
		"usr/":         {tar.TypeDir, 0o755, ""},
		"usr/bin/":     {tar.TypeDir, 0o755, ""},
		"usr/bin/prog": {tar.TypeReg, 0o755, ""},
	}
	seen := map[string]int{}
	for _, h := range entries {
		seen[h.Name]++
		w, ok := want[h.Name]
		if !ok {
			t.Errorf("unexpected entry %q", h.Name)
			continue
		}
		if h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.link || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: type %c mode %o link %q owner %d:%d, want type %c mode %o link %q owner 0:0",
				h.Name, h.Typeflag, h.Mode, h.Linkname, h.Uid, h.Gid, w.typ, w.mode, w.link)
		}
		if h.Name == "usr/bin/prog" && h.Size == int64(len("stale")) {
			t.Errorf("usr/bin/prog is the tree's stale copy, want the binary")
		}
	}
	for name := range want {
		if seen[name] != 1 {
			t.Errorf("%s appears %d times, want once", name, seen[name])
		}
	}
}

// layerEntries reads the one layer of a docker-save tarball.
func layerEntries(t *testing.T, file string) []*tar.Header {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json: %v, %s", err, files["manifest.json"])
	}
	var out []*tar.Header
	lr := tar.NewReader(bytes.NewReader(files[manifest[0].Layers[0]]))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}
