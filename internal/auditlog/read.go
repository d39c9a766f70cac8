package auditlog

import (
	"fmt"
	"io"
)

// ReadEvents calls fn for every event line of a log, in order, skipping
// checkpoints and genesis lines. Each line is checked as ParseRecord checks
// it (hash, version, members), but not the chain or the signatures: verify
// the log first (Verify) when the answer matters. The record's Line is valid
// only during fn. Its errors name the line, never its content.
func ReadEvents(r io.Reader, fn func(*Record) error) error {
	lr := newLineReader(r)
	for n := 1; ; n++ {
		line, _, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", n, err)
		}
		if len(line) == 0 {
			continue
		}
		rec, err := ParseRecord(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if rec.Event == nil {
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
