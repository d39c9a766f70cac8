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

// PolicySource keeps the current access policy, read from a file. Kubernetes
// updates a ConfigMap volume by swapping a symlink, which can keep
// modification times, so every poll reads the file and compares the hash of
// its content. A new document that fails to load is logged once and the last
// good policy stays in force.
type PolicySource struct {
	path    string
	log     *slog.Logger
	current atomic.Pointer[Policy]

	mu       sync.Mutex // serialises Reload
	lastSeen string     // hash of the last content read, good or bad
	lastErr  string     // last read error logged
}

// NewPolicySource returns a source for the file at path; nothing is read yet.
func NewPolicySource(path string, log *slog.Logger) *PolicySource {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PolicySource{path: path, log: log}
}

// Current returns the policy in force, nil before one loaded.
func (s *PolicySource) Current() *Policy { return s.current.Load() }

// Set puts a policy in force directly (for tests and embedding).
func (s *PolicySource) Set(p *Policy) { s.current.Store(p) }

// Ready reports whether a policy is in force.
func (s *PolicySource) Ready() error {
	if s.current.Load() == nil {
		return errors.New("no access policy is loaded yet")
	}
	return nil
}

// Reload reads the file once and puts its document in force when its content
// changed and it loads. changed reports a swap; err is why the file or a new
// document could not be loaded (the previous policy then stays in force).
func (s *PolicySource) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.log.Error("cannot read the access policy; keeping the last good policy", "path", s.path, "error", msg, "inForce", s.hashInForce())
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
	p, err := ParsePolicy(data)
	if err != nil {
		s.log.Error("the new access policy does not load; keeping the last good policy", "path", s.path, "sha256", hash, "error", err.Error(), "inForce", s.hashInForce())
		return false, err
	}
	s.current.Store(p)
	s.log.Info("access policy loaded", "path", s.path, "sha256", hash, "store", p.Doc.Store, "routes", len(p.Doc.Routes), "roles", len(p.Doc.Roles))
	return true, nil
}

func (s *PolicySource) hashInForce() string {
	if p := s.current.Load(); p != nil {
		return p.Hash
	}
	return "none"
}

// Run polls the file every interval (DefaultPolicyPollInterval when 0) until
// ctx ends.
func (s *PolicySource) Run(ctx context.Context, interval time.Duration) {
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
