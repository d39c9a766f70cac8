//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package auditlog

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on the log file, so that a
// second writer (another sidecar on the same volume) cannot interleave lines
// and break the chain. The lock goes with the file descriptor.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
