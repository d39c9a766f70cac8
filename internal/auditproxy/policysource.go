package auditproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPolicyPollInterval is how often the policy file is read.
const DefaultPolicyPollInterval = 2 * time.Second

// PolicySource keeps the current access policy, read from a file (see
// FileSource).
type PolicySource struct{ *FileSource[Policy] }

// NewPolicySource returns a source for the file at path; nothing is read yet.
func NewPolicySource(path string, log *slog.Logger) *PolicySource {
	return &PolicySource{NewFileSource(path, "access policy", log, ParsePolicy, func(p *Policy) []any {
		return []any{"store", p.Doc.Store, "routes", len(p.Doc.Routes), "roles", len(p.Doc.Roles)}
	})}
}

// FileSource keeps the current document of a policy file, parsed into a T.
// Kubernetes updates a ConfigMap volume by swapping a symlink, which can
// keep modification times, so every poll reads the file and compares the
// hash of its content. A new document that fails to load is logged once
// and the last good one stays in force. The audit proxy's access policy
// and the egress gateway's egress policy are each read by one.
type FileSource[T any] struct {
	path, what string
	parse      func([]byte) (*T, error)
	describe   func(*T) []any
	log        *slog.Logger
	current    atomic.Pointer[T]

	mu       sync.Mutex // serialises Reload
	lastSeen string     // hash of the last content read, good or bad
	lastGood string     // hash of the document in force
	lastErr  string     // last read error logged
}

// NewFileSource returns a source of the file at path, whose documents parse
// makes ready; what names the document in logs and errors, describe gives
// the log attributes of a loaded one. Nothing is read yet.
func NewFileSource[T any](path, what string, log *slog.Logger, parse func([]byte) (*T, error), describe func(*T) []any) *FileSource[T] {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FileSource[T]{path: path, what: what, parse: parse, describe: describe, log: log}
}

// Current returns the document in force, nil before one loaded.
func (s *FileSource[T]) Current() *T { return s.current.Load() }

// Set puts a document in force directly (for tests and embedding).
func (s *FileSource[T]) Set(p *T) { s.current.Store(p) }

// Ready reports whether a document is in force.
func (s *FileSource[T]) Ready() error {
	if s.current.Load() == nil {
		return errors.New("no " + s.what + " is loaded yet")
	}
	return nil
}

// Reload reads the file once and puts its document in force when its content
// changed and it loads. changed reports a swap; err is why the file or a new
// document could not be loaded (the previous document then stays in force).
func (s *FileSource[T]) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.log.Error("cannot read the "+s.what+"; keeping the last good "+s.what, "path", s.path, "error", msg, "inForce", s.hashInForce())
		}
		return false, err
	}
	s.lastErr = ""
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if hash == s.lastSeen {
		return false, nil
	}
	s.lastSeen = hash
	p, err := s.parse(data)
	if err != nil {
		s.log.Error("the new "+s.what+" does not load; keeping the last good "+s.what, "path", s.path, "sha256", hash, "error", err.Error(), "inForce", s.hashInForce())
		return false, err
	}
	s.current.Store(p)
	s.lastGood = hash
	s.log.Info(s.what+" loaded", append([]any{"path", s.path, "sha256", hash}, s.describe(p)...)...)
	return true, nil
}

func (s *FileSource[T]) hashInForce() string {
	if s.lastGood == "" || s.current.Load() == nil {
		return "none"
	}
	return s.lastGood
}

// Run polls the file every interval (DefaultPolicyPollInterval when 0) until
// ctx ends.
func (s *FileSource[T]) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPolicyPollInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.Reload()
		}
	}
}
