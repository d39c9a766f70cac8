package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	parent := t.TempDir()
	vol := filepath.Join(parent, "pvc-1234_wijkteam_wijkteam-dossiers-dossiers")
	for _, tc := range []struct {
		name, action, dir, mode, wantErr string
	}{
		{name: "relative path", action: "create", dir: "pvc-1", mode: "Filesystem", wantErr: "absolute, clean"},
		{name: "unclean path", action: "delete", dir: parent + "/x/../pvc-1", mode: "Filesystem", wantErr: "absolute, clean"},
		{name: "the parent itself", action: "delete", dir: parent, mode: "Filesystem", wantErr: "must start with pvc-"},
		{name: "not a volume", action: "delete", dir: filepath.Join(parent, "etc"), mode: "Filesystem", wantErr: "must start with pvc-"},
		{name: "missing parent", action: "create", dir: filepath.Join(parent, "gone", "pvc-1"), mode: "Filesystem", wantErr: "parent directory"},
		{name: "no path", action: "create", dir: "", mode: "Filesystem", wantErr: "-p: the volume's directory is required"},
		{name: "block mode", action: "create", dir: vol, mode: "Block", wantErr: "only volume mode Filesystem"},
		{name: "unknown action", action: "resize", dir: vol, mode: "Filesystem", wantErr: "want create or delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.action, tc.dir, tc.mode)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run(%q, %q, %q) = %v, want an error containing %q", tc.action, tc.dir, tc.mode, err, tc.wantErr)
			}
		})
	}
}

func TestCreateAndDelete(t *testing.T) {
	parent := t.TempDir()
	vol := filepath.Join(parent, "pvc-1234_wijkteam_claim")
	keep := filepath.Join(parent, "pvc-other")
	if err := os.Mkdir(keep, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := run("create", vol, "Filesystem"); err != nil {
		t.Fatalf("create: %v", err)
	}
	fi, err := os.Stat(vol)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Fatalf("after create: %v, %v; want a directory of mode 0777", fi, err)
	}
	if err := run("create", vol, "Filesystem"); err != nil {
		t.Fatalf("create again (idempotent): %v", err)
	}
	if err := os.WriteFile(filepath.Join(vol, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run("delete", vol, "Filesystem"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Fatalf("after delete the volume is still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("delete touched another volume: %v", err)
	}
}
