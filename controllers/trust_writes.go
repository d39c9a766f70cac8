package controllers

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// trustWriteTimeout bounds one write of the trust ConfigMap (a read and an
// update or create, retried after a lost race).
const trustWriteTimeout = 30 * time.Second

// trustRequest is one store's public checkpoint keys to keep in the trust
// ConfigMap.
type trustRequest struct {
	store *v1alpha1.DossierStore
	pubs  []ed25519.PublicKey
}

// trustWrites gathers the keys that store reconciles publish at the same
// time into one write of the trust ConfigMap, a group commit: every store
// writes that one ConfigMap, and with many store reconciles at once their
// own writes would mostly lose races to each other (each a conflict, a new
// read and another try). A write runs in a goroutine of its own while any
// request is pending; the requests that come while it writes go into the
// next one. Each request is answered only after the write that holds its
// keys succeeded, so a caller never goes on with a key that is not kept.
// The zero value is ready to use.
type trustWrites struct {
	mu      sync.Mutex
	pending []pendingTrust
	writing bool
}

type pendingTrust struct {
	req  trustRequest
	done chan error // buffered: the writer never waits for a caller
}

// writeTrust writes the keys of every request at once, with one outcome
// per request.
type writeTrust func(ctx context.Context, reqs []trustRequest) []error

// publish has req's keys written with those of the requests pending at the
// same time, and returns once they are kept, or why not; a caller whose
// context ends first gets its error (the write goes on).
func (w *trustWrites) publish(ctx context.Context, req trustRequest, write writeTrust) error {
	done := make(chan error, 1)
	w.mu.Lock()
	w.pending = append(w.pending, pendingTrust{req: req, done: done})
	if !w.writing {
		w.writing = true
		go w.run(write)
	}
	w.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("wait for the public checkpoint keys to be kept: %w", ctx.Err())
	}
}

// run writes the pending requests, one batch after the other, until none
// is pending.
func (w *trustWrites) run(write writeTrust) {
	for {
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		if len(batch) == 0 {
			w.writing = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		reqs := make([]trustRequest, len(batch))
		for i, p := range batch {
			reqs[i] = p.req
		}
		ctx, cancel := context.WithTimeout(context.Background(), trustWriteTimeout)
		errs := write(ctx, reqs)
		cancel()
		for i, p := range batch {
			p.done <- errs[i]
		}
	}
}

// withTrustKeys is a copy of the trust ConfigMap with the keys of every
// request added, whether any key was missing, and per request why its keys
// cannot be kept (nil when they are). A request with a key whose entry
// holds another key is refused whole, and changes nothing; the other
// requests go on.
func withTrustKeys(cm *corev1.ConfigMap, reqs []trustRequest) (*corev1.ConfigMap, bool, []error) {
	refused := make([]error, len(reqs))
	next, changed := cm, false
	for i, req := range reqs {
		candidate, added := next, false
		for _, pub := range req.pubs {
			var a bool
			var err error
			if candidate, a, err = resources.WithTrustKey(candidate, req.store, pub); err != nil {
				refused[i] = err
				break
			}
			added = added || a
		}
		if refused[i] == nil {
			next, changed = candidate, changed || added
		}
	}
	return next, changed, refused
}
