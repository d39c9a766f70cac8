// Command image builds the dossierguard container image without a Docker
// engine: one layer holding the static binary at /dossierguard, a config that
// runs it as 65532:65532, written as a `docker save` style tarball that
// `ctr -n k8s.io images import`, `docker load` and `podman load` accept.
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false \
//	    -tags timetzdata -ldflags "-s -w -buildid= -X main.version=dev" \
//	    -o bin/image/dossierguard ./cmd/dossierguard
//	go run ./hack/image -binary bin/image/dossierguard -out bin/image/dossierguard.tar
//
// (`make image` does both.) The result is reproducible: every timestamp is
// SOURCE_DATE_EPOCH (0 when unset), ownership and modes are fixed, and the
// same binary gives the same tarball, byte for byte, and so the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options describe one image.
type Options struct {
	// Binary is the static linux/amd64 dossierguard binary.
	Binary string
	// Tag names the image in the tarball, such as dossierguard:dev.
	Tag string
	// Created is every timestamp of the image.
	Created time.Time
	// Version, Source and Revision go into the OCI labels; Licenses too, but
	// only when set: the image claims no licence the project has not declared.
	Version, Source, Revision, Licenses string
}

// The image's fixed facts.
const (
	binaryPath = "dossierguard"
	user       = "65532:65532"
	title      = "dossierguard"
	describe   = "Kubernetes operator enforcing the privacy controls of Dutch municipal social services"
)

func main() {
	opts := Options{}
	out := flag.String("out", "bin/image/dossierguard.tar", "Tarball to write.")
	flag.StringVar(&opts.Binary, "binary", "", "The static linux/amd64 dossierguard binary (required).")
	flag.StringVar(&opts.Tag, "tag", "dossierguard:dev", "Image name and tag inside the tarball.")
	flag.StringVar(&opts.Version, "version", "dev", "org.opencontainers.image.version.")
	flag.StringVar(&opts.Source, "source", "https://github.com/dossierguard/dossierguard", "org.opencontainers.image.source.")
	flag.StringVar(&opts.Revision, "revision", "", "org.opencontainers.image.revision (a commit), omitted when empty.")
	flag.StringVar(&opts.Licenses, "licenses", "", "org.opencontainers.image.licenses (an SPDX expression), omitted when empty.")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fail(err)
	}
	opts.Created = created
	img, err := Build(opts)
	if err != nil {
		fail(err)
	}
	if err := Write(*out, opts.Tag, img); err != nil {
		fail(err)
	}
	digest, err := img.Digest()
	if err != nil {
		fail(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		fail(err)
	}
	fmt.Printf("wrote %s: %s, manifest %s, config (image ID) %s\n", *out, opts.Tag, digest, id)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}

// sourceDateEpoch parses SOURCE_DATE_EPOCH (seconds since 1970); empty is 0.
func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if err != nil || s < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a non-negative number of seconds", v)
	}
	return time.Unix(s, 0).UTC(), nil
}

// Build assembles the image in memory.
func Build(opts Options) (v1.Image, error) {
	if opts.Binary == "" {
		return nil, errors.New("-binary is required: build it with CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o bin/image/dossierguard ./cmd/dossierguard")
	}
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, err
	}
	if err := checkStaticAMD64(opts.Binary, bin); err != nil {
		return nil, err
	}
	layerTar, err := layerTarball(bin, opts.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}

	labels := map[string]string{
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": describe,
		"org.opencontainers.image.source":      opts.Source,
		"org.opencontainers.image.version":     opts.Version,
		"org.opencontainers.image.created":     opts.Created.Format(time.RFC3339),
	}
	if opts.Revision != "" {
		labels["org.opencontainers.image.revision"] = opts.Revision
	}
	if opts.Licenses != "" {
		labels["org.opencontainers.image.licenses"] = opts.Licenses
	}
	created := v1.Time{Time: opts.Created}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			User:       user,
			Entrypoint: []string{"/" + binaryPath},
			Cmd:        []string{"manager"},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "hack/image: /dossierguard (static linux/amd64), /tmp",
		},
	})
}

// checkStaticAMD64 refuses what would not run: another architecture, or a
// binary that needs a dynamic loader the image does not have.
func checkStaticAMD64(path string, bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("%s is not a Linux (ELF) binary: %w", path, err)
	}
	defer func() { _ = f.Close() }() // read from memory: closing cannot fail
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("%s is built for %s, not amd64: build it with GOARCH=amd64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and the image has no C library: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// layerTarball is the single layer: /tmp (for tools that expect it; the
// pod's root is read-only and mounts its own) and /dossierguard, owned by
// root, not writable by the user it runs as.
func layerTarball(bin []byte, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		hdr  tar.Header
		data []byte
	}{
		{tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil},
		{tar.Header{Typeflag: tar.TypeReg, Name: binaryPath, Mode: 0o755, Size: int64(len(bin))}, bin},
	}
	for _, e := range entries {
		hdr := e.hdr
		hdr.Uid, hdr.Gid = 0, 0
		hdr.ModTime = created
		hdr.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes img as a `docker save` tarball tagged tag, atomically.
func Write(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", tag, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
