//go:build !linux

package benchutil

import "os"

// datasync is fsync where fdatasync(2) is not used.
func datasync(f *os.File) error { return f.Sync() }

// fallocate grows f to size where fallocate(2) is not available.
func fallocate(f *os.File, size int64) error { return f.Truncate(size) }
