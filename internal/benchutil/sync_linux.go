//go:build linux

package benchutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync is fdatasync(2).
func datasync(f *os.File) error {
	return unix.Fdatasync(int(f.Fd()))
}

// fallocate reserves size bytes for f without writing them (mode 0: the
// size grows, the blocks are allocated unwritten).
func fallocate(f *os.File, size int64) error {
	return unix.Fallocate(int(f.Fd()), 0, 0, size)
}
