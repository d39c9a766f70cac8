package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	programs   = map[string]string{}
	programDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hack-image-test-")
	if err != nil {
		panic(err)
	}
	programDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildProgram compiles a tiny static program for the given architecture,
// standing in for the dossierguard binary (which takes minutes to build),
// once per test binary.
func buildProgram(t *testing.T, goarch string) string {
	t.Helper()
	if p, ok := programs[goarch]; ok {
		return p
	}
	dir := filepath.Join(programDir, goarch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"dossierguard\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/fake\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "dossierguard")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in binary: %v\n%s", err, b)
	}
	programs[goarch] = out
	return out
}

func options(binary string, created time.Time) Options {
	return Options{Binary: binary, Tag: "dossierguard:dev", Created: created, Version: "1.2.3", Source: "https://github.com/dossierguard/dossierguard"}
}

// build writes the image of binary to a fresh file and returns its bytes.
func build(t *testing.T, opts Options) (string, []byte) {
	t.Helper()
	img, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sub", "dossierguard.tar")
	if err := Write(out, opts.Tag, img); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, data
}

// TestReproducible: the same binary, copied elsewhere with another
// modification time, gives the same tarball byte for byte, and so the same
// manifest and config digests; another SOURCE_DATE_EPOCH gives another image.
func TestReproducible(t *testing.T) {
	bin := buildProgram(t, "amd64")
	copyBin := filepath.Join(t.TempDir(), "dossierguard")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyBin, data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(copyBin, time.Now().Add(-48*time.Hour), time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(0, 0).UTC()
	_, a := build(t, options(bin, epoch))
	_, b := build(t, options(copyBin, epoch))
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same binary differ")
	}
	imgA, _ := Build(options(bin, epoch))
	imgB, _ := Build(options(copyBin, epoch))
	da, _ := imgA.Digest()
	db, _ := imgB.Digest()
	if da != db {
		t.Errorf("manifest digests differ: %s and %s", da, db)
	}
	imgC, _ := Build(options(bin, time.Unix(1767225600, 0).UTC()))
	if dc, _ := imgC.Digest(); dc == da {
		t.Error("another SOURCE_DATE_EPOCH gives the same digest: the timestamps are not in the image")
	}
}

// TestImage reads the tarball back as `docker load` and `ctr import` would:
// manifest.json tags it dossierguard:dev; the config runs /dossierguard
// manager as 65532:65532 on linux/amd64 with the OCI labels; the one layer
// holds /dossierguard (0755, root-owned, the epoch as time) and /tmp.
func TestImage(t *testing.T) {
	bin := buildProgram(t, "amd64")
	created := time.Unix(1767225600, 0).UTC()
	path, data := build(t, options(bin, created))

	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(readTarFile(t, data, "manifest.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{"dossierguard:dev"}) || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json = %+v, want one image tagged dossierguard:dev with one layer", manifest)
	}

	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cfg.Config.User)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/dossierguard"}) || !slices.Equal(cfg.Config.Cmd, []string{"manager"}) {
		t.Errorf("entrypoint %v cmd %v, want [/dossierguard] [manager]", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if !cfg.Created.Equal(created) {
		t.Errorf("created %v, want %v", cfg.Created, created)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":   "dossierguard",
		"org.opencontainers.image.source":  "https://github.com/dossierguard/dossierguard",
		"org.opencontainers.image.version": "1.2.3",
	} {
		if cfg.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Config.Labels[k], v)
		}
	}
	if _, ok := cfg.Config.Labels["org.opencontainers.image.licenses"]; ok {
		t.Error("a licence label without -licenses: the image must not claim a licence the project has not declared")
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	want, _ := os.ReadFile(bin)
	tr := tar.NewReader(rc)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = true
		if !h.ModTime.Equal(created) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: time %v owner %d:%d, want %v and 0:0", h.Name, h.ModTime, h.Uid, h.Gid, created)
		}
		switch h.Name {
		case "dossierguard":
			if h.Mode != 0o755 {
				t.Errorf("/dossierguard mode %o, want 755", h.Mode)
			}
			got, _ := io.ReadAll(tr)
			if !bytes.Equal(got, want) {
				t.Error("/dossierguard is not the binary")
			}
		case "tmp/":
			if h.Mode != 0o1777 {
				t.Errorf("/tmp mode %o, want 1777", h.Mode)
			}
		default:
			t.Errorf("unexpected %s in the layer", h.Name)
		}
	}
	if !seen["dossierguard"] {
		t.Error("no /dossierguard in the layer")
	}
}

// TestRefusesWhatWouldNotRun: not an ELF file, or another architecture.
func TestRefusesWhatWouldNotRun(t *testing.T) {
	script := filepath.Join(t.TempDir(), "dossierguard")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ binary, want string }{
		"script": {script, "is not a Linux (ELF) binary"},
		"arm64":  {buildProgram(t, "arm64"), "not amd64"},
		"none":   {"", "-binary is required"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Build(options(c.binary, time.Unix(0, 0)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build(%s) = %v, want an error containing %q", name, err, c.want)
			}
		})
	}
}

func TestSourceDateEpoch(t *testing.T) {
	if got, err := sourceDateEpoch(""); err != nil || !got.Equal(time.Unix(0, 0)) {
		t.Errorf("empty: %v %v", got, err)
	}
	if got, err := sourceDateEpoch("1767225600"); err != nil || got.Year() != 2026 {
		t.Errorf("1767225600: %v %v", got, err)
	}
	if _, err := sourceDateEpoch("yesterday"); err == nil {
		t.Error("yesterday accepted")
	}
}

func readTarFile(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the tarball: %v", name, err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
