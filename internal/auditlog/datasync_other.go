//go:build !linux

package auditlog

import "os"

// datasync is fsync where fdatasync(2) is not used; the operator runs on
// Linux.
func datasync(f *os.File) error { return f.Sync() }
