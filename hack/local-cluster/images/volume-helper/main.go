// Command volume-helper makes and removes the directories of the local
// cluster's volumes. local-path-provisioner runs it in a helper pod with the
// volumes' parent directory mounted (its setupCommand and teardownCommand,
// hack/local-cluster/volumes.sh), in place of the busybox shell scripts
// upstream uses: there is no busybox image here, and a static program needs
// no shell.
//
//	volume-helper -a create -p /var/lib/local-cluster-volumes/pvc-... [-m Filesystem] [-s BYTES]
//	volume-helper -a delete -p /var/lib/local-cluster-volumes/pvc-...
//
// The path must be absolute and clean, its parent (the mounted directory)
// must exist, and its name must start with "pvc-": it never removes the
// parent or anything outside it.
// Created directories are mode 0777, as upstream's script makes them, so
// that a pod running as any user can write its volume; the parent directory
// on the node is 0700 and root's, so no other user of the node can reach it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	action := flag.String("a", "", "create or delete")
	dir := flag.String("p", "", "the volume's directory")
	mode := flag.String("m", "Filesystem", "the volume mode (only Filesystem is supported)")
	flag.String("s", "", "the requested size in bytes (not enforced: the directory shares the node's disk)")
	flag.Parse()
	if err := run(*action, *dir, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "volume-helper:", err)
		os.Exit(1)
	}
}

func run(action, dir, mode string) error {
	if err := check(dir); err != nil {
		return err
	}
	switch action {
	case "create":
		if mode != "Filesystem" {
			return fmt.Errorf("-m %q: only volume mode Filesystem is supported", mode)
		}
		if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		// Mkdir applies the umask; the mode must not depend on it.
		if err := os.Chmod(dir, 0o777); err != nil {
			return err
		}
		fmt.Printf("created %s\n", dir)
		return nil
	case "delete":
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Printf("deleted %s\n", dir)
		return nil
	}
	return fmt.Errorf("-a %q: want create or delete", action)
}

// check accepts only an absolute, clean path whose last element names a
// provisioned volume (pvc-...) and whose parent exists: the mounted parent.
func check(dir string) error {
	if dir == "" {
		return errors.New("-p: the volume's directory is required")
	}
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return fmt.Errorf("-p %q: want an absolute, clean path", dir)
	}
	base := filepath.Base(dir)
	if !strings.HasPrefix(base, "pvc-") {
		return fmt.Errorf("-p %q: the directory's name must start with pvc- (a provisioned volume)", dir)
	}
	parent, err := os.Stat(filepath.Dir(dir))
	if err != nil {
		return fmt.Errorf("-p %q: the parent directory: %w", dir, err)
	}
	if !parent.IsDir() {
		return fmt.Errorf("-p %q: the parent is not a directory", dir)
	}
	return nil
}
