package policyfile

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPollInterval is how often a Source reads its file.
const DefaultPollInterval = 2 * time.Second

// Source keeps the current document of a policy file, parsed into a T.
// Kubernetes updates a ConfigMap volume by swapping a symlink, which can
// keep modification times, so every poll reads the file and compares the
// Hash of its content. A new document that fails to load is logged once
// and the last good one stays in force; before one has loaded, Current is
// nil and Ready fails.
type Source[T any] struct {
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

// NewSource returns a source of the file at path, whose documents parse
// makes ready (see Load); what names the document in logs and errors,
// describe gives the log attributes of a loaded one. Nothing is read yet.
func NewSource[T any](path, what string, log *slog.Logger, parse func([]byte) (*T, error), describe func(*T) []any) *Source[T] {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source[T]{path: path, what: what, parse: parse, describe: describe, log: log}
}

// Current returns the document in force, nil before one loaded.
func (s *Source[T]) Current() *T { return s.current.Load() }

// Set puts a document in force directly (for tests and embedding).
func (s *Source[T]) Set(p *T) { s.current.Store(p) }

// Ready reports whether a document is in force.
func (s *Source[T]) Ready() error {
	if s.current.Load() == nil {
		return errors.New("no " + s.what + " is loaded yet")
	}
	return nil
}

// Reload reads the file once and puts its document in force when its content
// changed and it loads. changed reports a swap; err is why the file or a new
// document could not be loaded (the previous document then stays in force).
func (s *Source[T]) Reload() (changed bool, err error) {
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
	hash := Hash(data)
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

func (s *Source[T]) hashInForce() string {
	if s.lastGood == "" || s.current.Load() == nil {
		return "none"
	}
	return s.lastGood
}

// Run polls the file every interval (DefaultPollInterval when 0) until ctx
// ends.
func (s *Source[T]) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
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
