package logbook

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// DefaultListen is the OTLP/HTTP port (4318, as the OTLP specification
// assigns it).
const DefaultListen = ":4318"

// DefaultSchema is the PostgreSQL schema of the logbook's tables.
const DefaultSchema = "dossierguard_logbook"

// ServeConfig configures Serve.
type ServeConfig struct {
	// Listen is the address of the OTLP/HTTP receiver and the probes.
	Listen string
	// Listener, when set, is used instead of Listen (tests).
	Listener net.Listener
	// TLSCertFile and TLSKeyFile serve TLS when both are set.
	TLSCertFile, TLSKeyFile string
	// DB is the database; its search_path leads to the logbook schema.
	DB *pgxpool.Pool
	// Migrate applies the migrations at startup (needs the owner's rights).
	Migrate bool
	// TrustKeys are checkpoint public keys to add, by store.
	TrustKeys map[string][]ed25519.PublicKey
	// ReloadTrustKeys, when set, is asked every ReloadInterval (a minute
	// when zero) for the trusted keys again, such as a mounted ConfigMap to
	// which the operator adds the keys of new stores; keys not held yet are
	// added. A key is never removed.
	ReloadTrustKeys func() (map[string][]ed25519.PublicKey, error)
	ReloadInterval  time.Duration
	// MaxRequestBytes bounds a request; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// ShutdownTimeout is how long requests in flight may take after ctx ends.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Senders authenticates the sender of every export request
	// (KubernetesSenders); nil accepts anyone who reaches the listener.
	Senders SenderAuthenticator
}

// Serve runs the logbook until ctx ends: it migrates when asked, adds the
// trusted keys, and serves OTLP/HTTP. On shutdown it stops accepting,
// finishes the requests in flight (their transactions commit or roll back
// and their senders get an answer), then returns.
func Serve(ctx context.Context, cfg ServeConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Migrate {
		applied, err := Migrate(ctx, cfg.DB)
		if err != nil {
			return fmt.Errorf("logbook: %w (SQLSTATE %s)", errors.Unwrap(err), sqlState(err))
		}
		log.Info("Schema migrated", "applied", applied)
	}
	l, err := New(ctx, cfg.DB, Config{})
	if err != nil {
		return fmt.Errorf("logbook: %w", err)
	}
	l.senders = cfg.Senders
	held, err := l.trustKeys(ctx, cfg.TrustKeys)
	if err != nil {
		return err
	}
	if cfg.ReloadTrustKeys != nil {
		rctx, stop := context.WithCancel(ctx)
		reloaded := make(chan struct{})
		go func() {
			defer close(reloaded)
			l.reloadTrustKeys(rctx, cfg, held, log)
		}()
		defer func() { stop(); <-reloaded }()
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("logbook: listen: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           l.Handler(log, cfg.MaxRequestBytes),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCertFile != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCertFile, cfg.TLSKeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("Logbook listening", "address", ln.Addr().String(), "tls", cfg.TLSCertFile != "", "senderAuthentication", cfg.Senders != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("logbook: serve: %w", err)
	case <-ctx.Done():
	}
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("logbook: shutdown: %w", err)
	}
	log.Info("Logbook stopped")
	return nil
}

// trustKeys adds the keys given at startup and returns the set of them, by
// store/key_id.
func (l *Logbook) trustKeys(ctx context.Context, keys map[string][]ed25519.PublicKey) (map[string]bool, error) {
	held := map[string]bool{}
	for st, ks := range keys {
		for _, k := range ks {
			if err := l.TrustKey(ctx, st, k); err != nil {
				return nil, fmt.Errorf("logbook: trust a key of store %s (SQLSTATE %s)", st, sqlState(err))
			}
			held[st+"/"+auditlog.KeyID(k)] = true
		}
	}
	return held, nil
}

// reloadTrustKeys adds, every cfg.ReloadInterval until ctx ends, the keys of
// cfg.ReloadTrustKeys that are not in held. A failure is logged (by
// SQLSTATE for the database) and tried again at the next tick.
func (l *Logbook) reloadTrustKeys(ctx context.Context, cfg ServeConfig, held map[string]bool, log *slog.Logger) {
	every := cfg.ReloadInterval
	if every <= 0 {
		every = time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		keys, err := cfg.ReloadTrustKeys()
		if err != nil {
			log.Warn("Trusted keys not all read; the readable ones are added", "error", err.Error())
		}
		for st, ks := range keys {
			for _, k := range ks {
				id := st + "/" + auditlog.KeyID(k)
				if held[id] {
					continue
				}
				if err := l.TrustKey(ctx, st, k); err != nil {
					log.Warn("Trusted key not added; tried again later", "store", st, "sqlstate", sqlState(err))
					continue
				}
				held[id] = true
				log.Info("Trusted a checkpoint key", "store", st, "keyID", auditlog.KeyID(k))
			}
		}
	}
}
