// Package httpserve starts and stops dossierguard's serving roles, the
// audit proxy and the egress gateway, the same way: a listener for the
// role's requests and one for its probes and metrics, and a graceful
// shutdown that loses nothing the role accepted for its audit log.
//
// On shutdown (the context ends, which the command ties to SIGTERM, or a
// server fails) Serve
//
//  1. makes readiness fail (Role.BeginShutdown), so that no new traffic is
//     sent to the pod;
//  2. stops accepting and lets the requests in flight finish, up to the
//     shutdown timeout, after which their connections are closed;
//  3. closes hijacked connections (Options.CloseHijacked), which
//     http.Server.Shutdown leaves alone;
//  4. waits for the role's requests and the completion events they started
//     (Role.Wait);
//  5. stops the role's background work (Options.Stop) and closes the audit
//     log with a final checkpoint (Options.AuditLog);
//  6. stops the health server last, so that the probes answer until then.
package httpserve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultShutdownTimeout bounds the wait for requests in flight when
// Options.ShutdownTimeout is 0; it stays under Kubernetes' default grace
// period of 30 seconds.
const DefaultShutdownTimeout = 25 * time.Second

// healthShutdownTimeout bounds the health server's own shutdown.
const healthShutdownTimeout = time.Second

// Role is a serving role's handler, as Serve runs it.
type Role interface {
	// ServeHTTP serves the role's requests.
	http.Handler
	// HealthHandler serves the probes (and the metrics) on the health
	// listener.
	HealthHandler() http.Handler
	// BeginShutdown makes readiness fail.
	BeginShutdown()
	// Wait returns when every request being served has finished and every
	// event it left to be appended in the background has been.
	Wait()
}

// Listeners are a role's two listeners: its requests and its probes.
type Listeners struct {
	Serve, Health net.Listener
}

// Listen returns ln and hln, opening a TCP listener on addr or healthAddr
// for the one that is nil (tests pass listeners of their own). On error
// nothing stays open.
func Listen(addr, healthAddr string, ln, hln net.Listener) (Listeners, error) {
	var err error
	if ln == nil {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return Listeners{}, fmt.Errorf("listen on %s: %w", addr, err)
		}
	}
	if hln == nil {
		if hln, err = net.Listen("tcp", healthAddr); err != nil {
			_ = ln.Close()
			return Listeners{}, fmt.Errorf("listen on %s: %w", healthAddr, err)
		}
	}
	return Listeners{Serve: ln, Health: hln}, nil
}

// Close closes both listeners; closing one that a server has closed
// already is harmless.
func (l Listeners) Close() {
	if l.Serve != nil {
		_ = l.Serve.Close()
	}
	if l.Health != nil {
		_ = l.Health.Close()
	}
}

// Options are how Serve runs a role.
type Options struct {
	// TLS, when set, makes the role's listener serve TLS with it (the
	// probes stay plain HTTP).
	TLS *tls.Config
	// ShutdownTimeout bounds the wait for requests in flight
	// (DefaultShutdownTimeout when 0).
	ShutdownTimeout time.Duration
	// CloseHijacked, when set, closes the connections the role took over
	// from the server (WebSocket tunnels), after the server stopped.
	CloseHijacked func()
	// Stop, when set, stops the role's background work (policy polling,
	// watches, key rotation) once every request has finished.
	Stop func()
	// AuditLog is closed last, with its final checkpoint. Required.
	AuditLog io.Closer
	// Log receives what Serve logs; nil discards it.
	Log *slog.Logger
}

// Serve serves role on l until ctx ends or a server fails, then shuts down
// as the package describes. It returns the server's failure and the audit
// log's closing error, joined; nil after a clean shutdown.
func Serve(ctx context.Context, l Listeners, role Role, opts Options) error {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srv := &http.Server{Handler: role, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: errLog, TLSConfig: opts.TLS}
	health := &http.Server{Handler: role.HealthHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}

	serveErr := make(chan error, 2)
	go func() {
		if opts.TLS != nil {
			serveErr <- srv.ServeTLS(l.Serve, "", "")
		} else {
			serveErr <- srv.Serve(l.Serve)
		}
	}()
	go func() { serveErr <- health.Serve(l.Health) }()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight")
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
		log.Error("server stopped; shutting down", "error", err.Error())
	}
	return errors.Join(runErr, shutdown(role, srv, health, opts, timeout, log))
}

// shutdown is steps 1 to 6 of the package documentation.
func shutdown(role Role, srv, health *http.Server, opts Options, timeout time.Duration, log *slog.Logger) error {
	role.BeginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight after the shutdown timeout; closing their connections", "timeout", timeout.String())
		_ = srv.Close()
	}
	cancel()
	if opts.CloseHijacked != nil {
		opts.CloseHijacked()
	}
	role.Wait()
	if opts.Stop != nil {
		opts.Stop()
	}
	var err error
	if opts.AuditLog == nil {
		err = errors.New("no audit log to close")
	} else if cerr := opts.AuditLog.Close(); cerr != nil {
		err = fmt.Errorf("close the audit log: %w", cerr)
		log.Error("closing the audit log failed", "error", cerr.Error())
	} else {
		log.Info("audit log closed with a final checkpoint")
	}
	hctx, hcancel := context.WithTimeout(context.Background(), healthShutdownTimeout)
	_ = health.Shutdown(hctx)
	hcancel()
	return err
}
