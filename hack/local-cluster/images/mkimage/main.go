// Command mkimage writes a one-layer container image holding a single static
// binary, as a `docker save` style tarball that `ctr -n k8s.io images import`
// (and `docker load`, `podman load`) accept. No Docker engine is needed.
//
//	mkimage -binary bin/pause -tag local/pause:dev -out pause.tar [-user 65535:65535] [-- ARGS...]
//
// The binary lands at /<name> (-path to change it) and is the entrypoint;
// arguments after -- become the image's Cmd. With -root DIR, the files,
// directories and symbolic links under DIR go into the layer too, owned by
// root with their modes, at the same paths below / (a dynamically linked
// program with its libraries, say); the binary may then be dynamic. The config names os and
// architecture (containerd drops images whose config lacks them), and every
// timestamp is SOURCE_DATE_EPOCH (0 when unset), so the same binary always
// gives the same tarball and the same image ID.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	binary, tag, out, path, user, arch, workdir, root string
	env                                               []string
	ports                                             []string
	cmd                                               []string
	created                                           time.Time
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var o options
	var env, ports listFlag
	flag.StringVar(&o.binary, "binary", "", "static binary to put in the image (required)")
	flag.StringVar(&o.tag, "tag", "", "image name and tag, such as local/pause:dev (required)")
	flag.StringVar(&o.out, "out", "", "tarball to write (required)")
	flag.StringVar(&o.path, "path", "", "where the binary goes in the image (default /<binary's name>)")
	flag.StringVar(&o.user, "user", "", "user[:group] the image runs as (default: the runtime's, root)")
	flag.StringVar(&o.arch, "arch", "", "architecture for the config (default: from the binary's ELF header)")
	flag.StringVar(&o.workdir, "workdir", "/", "working directory")
	flag.StringVar(&o.root, "root", "", "a directory whose tree goes into the image as well (at /)")
	flag.Var(&env, "env", "NAME=VALUE for the config (repeatable)")
	flag.Var(&ports, "expose", "port[/proto] to declare (repeatable)")
	flag.Parse()
	o.env, o.ports, o.cmd = env, ports, flag.Args()
	if o.binary == "" || o.tag == "" || o.out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if o.path == "" {
		o.path = "/" + filepath.Base(o.binary)
	}
	o.created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fatal(fmt.Errorf("SOURCE_DATE_EPOCH: %w", err))
		}
		o.created = time.Unix(n, 0).UTC()
	}
	if err := write(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}

// archOf maps the binary's ELF machine to an OCI architecture name.
func archOf(file string) (string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", fmt.Errorf("%s is not an ELF binary: %w", file, err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_ARM:
		return "arm", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	}
	return "", fmt.Errorf("unknown ELF machine %v; pass -arch", f.Machine)
}

// imageEnv is the config's environment: a default PATH unless -env sets
// one (a name twice would leave which one a runtime uses to chance), then
// the -env values in order.
func imageEnv(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
}

// addTree writes the tree under root into tw, in lexical order, owned by
// root, every time set to created; skip (the binary's path) is left out.
// written records the directories written.
func addTree(tw *tar.Writer, root, skip string, created time.Time, written map[string]bool) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		if name == skip {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: created, Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
			if info.Mode()&os.ModeSticky != 0 {
				h.Mode |= 0o1000
			}
			written[h.Name] = true
			return tw.WriteHeader(h)
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
			return tw.WriteHeader(h)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return fmt.Errorf("%s: only directories, regular files and symbolic links can go into an image", p)
	})
}

func write(o options) error {
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return err
	}
	if o.arch == "" {
		if o.arch, err = archOf(o.binary); err != nil {
			return err
		}
	}
	if o.arch != runtime.GOARCH {
		fmt.Fprintf(os.Stderr, "mkimage: note: image architecture %s differs from this machine's %s\n", o.arch, runtime.GOARCH)
	}

	// The layer: the parent directories, then the binary.
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	name := strings.TrimPrefix(path.Clean(o.path), "/")
	if name == "" || name == "." {
		return errors.New("-path must name a file")
	}
	written := map[string]bool{}
	if o.root != "" {
		if err := addTree(tw, o.root, name, o.created, written); err != nil {
			return err
		}
	}
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/") + "/"
		if written[dir] {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: o.created, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(bin)), ModTime: o.created, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerDigest := sha256.Sum256(layer.Bytes())
	layerHex := hex.EncodeToString(layerDigest[:])

	type containerConfig struct {
		User         string              `json:"User,omitempty"`
		Env          []string            `json:"Env,omitempty"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd,omitempty"`
		WorkingDir   string              `json:"WorkingDir,omitempty"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
		Labels       map[string]string   `json:"Labels,omitempty"`
	}
	cc := containerConfig{
		User:       o.user,
		Env:        imageEnv(o.env),
		Entrypoint: []string{"/" + name},
		Cmd:        o.cmd,
		WorkingDir: o.workdir,
		Labels:     map[string]string{"org.opencontainers.image.title": path.Base(name)},
	}
	for _, p := range o.ports {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		if cc.ExposedPorts == nil {
			cc.ExposedPorts = map[string]struct{}{}
		}
		cc.ExposedPorts[p] = struct{}{}
	}
	config := map[string]any{
		"architecture": o.arch,
		"os":           "linux",
		"created":      o.created.Format(time.RFC3339),
		"config":       cc,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}},
		"history":      []map[string]any{{"created": o.created.Format(time.RFC3339), "created_by": "mkimage " + path.Base(name)}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return err
	}
	configDigest := sha256.Sum256(configJSON)
	configHex := hex.EncodeToString(configDigest[:])

	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configHex + ".json",
		"RepoTags": []string{o.tag},
		"Layers":   []string{layerHex + "/layer.tar"},
	}})
	if err != nil {
		return err
	}

	// The archive, written beside the target and renamed into place.
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.out), ".mkimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	aw := tar.NewWriter(tmp)
	add := func(name string, data []byte) error {
		if err := aw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: o.created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := aw.Write(data)
		return err
	}
	if err := aw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: layerHex + "/", Mode: 0o755, ModTime: o.created, Format: tar.FormatPAX}); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{layerHex + "/layer.tar", layer.Bytes()},
		{layerHex + "/VERSION", []byte("1.0")},
		{configHex + ".json", configJSON},
		{"manifest.json", manifest},
	} {
		if err := add(f.name, f.data); err != nil {
			return err
		}
	}
	if err := aw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), o.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mkimage: %s (%s/linux, image ID sha256:%s) -> %s\n", o.tag, o.arch, configHex[:12], o.out)
	return nil
}
