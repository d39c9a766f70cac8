//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package auditlog

import "os"

// lockFile is a no-op where flock(2) is not available; the operator runs on
// Linux.
func lockFile(*os.File) error { return nil }
