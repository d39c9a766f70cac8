package auditproxy

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"time"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// DefaultSigningKeyPollInterval is how often the signing-key directory is
// read for a newer active version.
const DefaultSigningKeyPollInterval = 10 * time.Second

// SigningKeySource follows a versioned signing-key directory (the store's
// <store>-audit-signing Secret, mounted; auditlog.ReadSigningKeyDir): the
// audit log signs with the newest version whose activation time has come,
// and switches to a newer one when the kubelet has written it and its time
// comes, without a restart and without holding up an event (the writer
// takes the key at its next checkpoint, which names it).
type SigningKeySource struct {
	dir     string
	now     func() time.Time
	log     *slog.Logger
	version int
}

// NewSigningKeySource follows dir; now is the clock (time.Now when nil).
func NewSigningKeySource(dir string, now func() time.Time, log *slog.Logger) *SigningKeySource {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SigningKeySource{dir: dir, now: now, log: log}
}

// Load reads the directory and returns the version to sign with now.
func (s *SigningKeySource) Load() (auditlog.SigningKey, error) {
	keys, err := auditlog.ReadSigningKeyDir(s.dir)
	if err != nil {
		return auditlog.SigningKey{}, err
	}
	return auditlog.ActiveSigningKey(keys, s.now())
}

// Start loads the version to sign with now and remembers it as in use.
func (s *SigningKeySource) Start() (ed25519.PrivateKey, error) {
	k, err := s.Load()
	if err != nil {
		return nil, err
	}
	s.version = k.Version
	s.log.Info("Signing audit checkpoints", "keyID", k.ID(), "version", k.Version)
	return k.Key, nil
}

// Check reads the directory once and, when a newer version is active, gives
// it to use. A directory that cannot be read, or a damaged version, keeps
// the key in use (it still verifies) and is logged.
func (s *SigningKeySource) Check(use func(ed25519.PrivateKey) error) {
	k, err := s.Load()
	if err != nil {
		s.log.Warn("Signing-key directory not read; the key in use is kept", "error", err.Error())
		return
	}
	if k.Version <= s.version {
		return
	}
	if err := use(k.Key); err != nil {
		s.log.Warn("Signing key not taken into use; the key in use is kept", "version", k.Version, "error", err.Error())
		return
	}
	s.version = k.Version
	s.log.Info("Signing audit checkpoints with a rotated key", "keyID", k.ID(), "version", k.Version)
}

// Run calls Check every interval until ctx ends.
func (s *SigningKeySource) Run(ctx context.Context, every time.Duration, use func(ed25519.PrivateKey) error) {
	if every <= 0 {
		every = DefaultSigningKeyPollInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.Check(use)
		}
	}
}
