package auditlog

import (
	"fmt"
	"io"
	"os"
)

// This file is the log file grown in preallocated segments
// (Options.Preallocate), and how every reader finds the end of a log whose
// writer did not close it.
//
// Appending to a file changes its size, and making the new size durable
// costs a journal commit on every fsync: on ext4 most of an fsync's time on
// a small append. A segment file instead writes a segment of zeros ahead of
// the events and fsyncs it once; the commits then overwrite those zeros in
// place and are made durable with fdatasync, which flushes the data and the
// disk's cache but needs no journal commit while the size and the block
// allocation stay as they are (as databases do with their write-ahead log).
// The zeros are written, not only reserved with fallocate(2): a reserved
// block is "unwritten", and the first write to it changes the allocation,
// which needs the journal again.
//
// Until the writer closes, such a file ends with a run of zero bytes after
// its last line (the zero tail). A NUL byte never occurs in a line (JSON
// escapes every control character), so the tail cannot be confused with
// content: the log ends at its last non-zero byte. The line reader of this
// package (Verify, ReadEvents, the logbook shipper, the writer resuming a
// log) treats a last "line" of zero bytes only as the end of the log; a last
// line cut off by a crash and followed by zeros is still a line without its
// newline (truncated). Close cuts the tail off, so a closed log is an
// ordinary file; NewWriter cuts it off when it continues a log whose writer
// crashed.

// DefaultPreallocate is the segment size the audit proxy and the egress
// gateway grow their log files by (Options.Preallocate): about 1,500
// events, one extra fsync per segment.
const DefaultPreallocate = 1 << 20

// minPreallocate is the smallest segment Options.Preallocate accepts.
const minPreallocate = 64 << 10

// segmentFile is a log file grown in preallocated segments: Write writes at
// the end of the content, growing the file by a segment of zeros (made
// durable with fsync) when the content would pass its size; Sync is
// fdatasync; Close cuts off the zeros after the content.
type segmentFile struct {
	f       *os.File
	segment int64
	// limit is the most the file may grow to (Options.MaxBytes), 0 for
	// no limit: a segment is cut short at it.
	limit int64
	// end is the size of the content; the bytes from end to size are
	// zeros.
	end, size int64
}

// newSegmentFile continues f, whose content is its first end bytes and
// whose size is end (NewWriter has cut off any zero tail).
func newSegmentFile(f *os.File, end, segment, limit int64) *segmentFile {
	return &segmentFile{f: f, segment: segment, limit: limit, end: end, size: end}
}

// Write writes p at the end of the content.
func (s *segmentFile) Write(p []byte) (int, error) {
	if need := s.end + int64(len(p)); need > s.size {
		if err := s.grow(need); err != nil {
			return 0, err
		}
	}
	n, err := s.f.WriteAt(p, s.end)
	s.end += int64(n)
	return n, err
}

// zeroBlock is what grow writes a segment with.
var zeroBlock = make([]byte, 64<<10)

// grow makes the file at least need bytes long with whole segments of
// zeros (cut short at the limit, never below need), and makes them durable
// with fsync, so that the writes into them need only fdatasync.
func (s *segmentFile) grow(need int64) error {
	size := s.size
	for size < need {
		size += s.segment
	}
	if s.limit > 0 && size > s.limit {
		size = max(need, s.limit)
	}
	for off := s.size; off < size; {
		n := min(int64(len(zeroBlock)), size-off)
		if _, err := s.f.WriteAt(zeroBlock[:n], off); err != nil {
			return fmt.Errorf("preallocate: %w", err)
		}
		off += n
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("preallocate: fsync: %w", err)
	}
	s.size = size
	return nil
}

// Sync makes what was written durable: fdatasync, which for writes into the
// preallocated segment needs no journal commit.
func (s *segmentFile) Sync() error { return datasync(s.f) }

// Close cuts off the zeros after the content, fsyncs and closes the file.
func (s *segmentFile) Close() error {
	var err error
	if s.size > s.end {
		if err = s.f.Truncate(s.end); err == nil {
			err = s.f.Sync()
		}
		if err != nil {
			err = fmt.Errorf("cut off the preallocated tail: %w", err)
		}
	}
	if cerr := s.f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// contentEnd is the end of the content of a log file of the given size:
// the offset after its last non-zero byte, size when it has no zero tail.
func contentEnd(f io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for off := size; off > 0; {
		n := min(int64(len(buf)), off)
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return 0, fmt.Errorf("read the end of the log: %w", err)
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				return off + i + 1, nil
			}
		}
	}
	return 0, nil
}

// cutZeroTail cuts the zero tail after end off f (of the given size) and
// makes that durable, so that appending continues the content; nothing
// when there is none.
func cutZeroTail(f *os.File, end, size int64) error {
	if end == size {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("cut off the zero tail a crash left: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cut off the zero tail a crash left: fsync: %w", err)
	}
	return nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
