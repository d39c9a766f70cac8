package auditproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// DefaultKubeTokenDir is where the injected proxy finds its service
// account token and the cluster's CA (a projected volume mounted into the
// proxy alone).
const DefaultKubeTokenDir = "/var/run/dossierguard/kube"

// KubeConfig is the proxy's connection to the API server: the in-cluster
// address from the environment, the token and CA files in dir.
func KubeConfig(dir string) (*rest.Config, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not running in a cluster")
	}
	token, ca := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	for _, f := range []string{token, ca} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("the service account token volume is not mounted: %w", err)
		}
	}
	return &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, port),
		BearerTokenFile: token, // client-go reads it again as it is rotated
		TLSClientConfig: rest.TLSClientConfig{CAFile: ca},
		UserAgent:       "dossierguard-audit-proxy",
	}, nil
}

// WatchFailureGrace is how long the set read last stays in force after the
// watch failed, while it re-lists; after that every request for a dossier
// is refused until a list or watch succeeds again. With the watch's own
// delay it keeps a restriction recorded during an outage within 10 s.
const WatchFailureGrace = 5 * time.Second

// KubeRequests watches the DataSubjectRequests of one namespace with the
// proxy's own service account and keeps the effects of one store's. It is
// not synced until the first list has been read, and not usable while the
// watch has failed for longer than WatchFailureGrace; the set is rebuilt on
// the first question after any change.
type KubeRequests struct {
	store    string
	informer cache.SharedIndexInformer
	log      *slog.Logger
	now      func() time.Time

	// failingSince is when the watch last failed (Unix nanoseconds), 0
	// while the last list or watch succeeded.
	failingSince atomic.Int64

	dirty   atomic.Bool
	mu      sync.Mutex
	current atomic.Pointer[RequestEffects]
}

// NewKubeRequests prepares a watch of namespace's DataSubjectRequests for
// store; Run starts it.
func NewKubeRequests(cfg *rest.Config, namespace, store string, log *slog.Logger) (*KubeRequests, error) {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("data-subject requests: %w", err)
	}
	ri := dc.Resource(v1alpha1.GroupVersion.WithResource("datasubjectrequests")).Namespace(namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return ri.List(ctx, o) },
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return ri.Watch(ctx, o)
		},
	}
	return newKubeRequests(lw, store, log, time.Now)
}

// newKubeRequests watches through lw; every list or watch that succeeds
// marks the watch healthy, every failure reported by the reflector marks it
// failing.
func newKubeRequests(lw *cache.ListWatch, store string, log *slog.Logger, now func() time.Time) (*KubeRequests, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &KubeRequests{store: store, log: log, now: now}
	list, watchFn := lw.ListWithContextFunc, lw.WatchFuncWithContext
	tracked := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			obj, err := list(ctx, o)
			k.observe(err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, o)
			k.observe(err)
			return w, err
		},
	}
	k.informer = cache.NewSharedIndexInformer(tracked, &unstructured.Unstructured{}, 0, cache.Indexers{})
	k.dirty.Store(true)
	mark := func(any) { k.dirty.Store(true) }
	if _, err := k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: mark, DeleteFunc: mark, UpdateFunc: func(_, n any) { mark(n) },
	}); err != nil {
		return nil, fmt.Errorf("data-subject requests: %w", err)
	}
	_ = k.informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		k.observe(err)
		// The class of the failure only: no object, no URL.
		log.Warn("watching the store's data-subject requests failed; retrying", "store", store, "error", errorClass(err))
	})
	return k, nil
}

// observe records the outcome of a list or watch.
func (k *KubeRequests) observe(err error) {
	if err == nil {
		k.failingSince.Store(0)
		return
	}
	k.failingSince.CompareAndSwap(0, k.now().UnixNano())
}

// ErrWatchFailing is returned while the watch has been failing for longer
// than WatchFailureGrace.
var ErrWatchFailing = errors.New("the watch of the store's data-subject requests is failing")

// Run watches until ctx ends.
func (k *KubeRequests) Run(ctx context.Context) { k.informer.Run(ctx.Done()) }

// Effects is the current set; ErrRequestsNotSynced before the first list
// was read, ErrWatchFailing while the watch has failed for longer than
// WatchFailureGrace.
func (k *KubeRequests) Effects() (*RequestEffects, error) {
	if !k.informer.HasSynced() {
		return nil, ErrRequestsNotSynced
	}
	if since := k.failingSince.Load(); since != 0 && k.now().Sub(time.Unix(0, since)) > WatchFailureGrace {
		return nil, ErrWatchFailing
	}
	if !k.dirty.Load() {
		if e := k.current.Load(); e != nil {
			return e, nil
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dirty.Swap(false) || k.current.Load() == nil {
		set, err := k.rebuild()
		if err != nil {
			k.dirty.Store(true)
			return nil, err
		}
		k.current.Store(set)
	}
	return k.current.Load(), nil
}

// errUndecodable: a request could not be read, and it could be a
// restriction; nothing is served for any dossier until it can.
var errUndecodable = errors.New("a data-subject request of the store could not be read")

func (k *KubeRequests) rebuild() (*RequestEffects, error) {
	items := k.informer.GetStore().List()
	reqs := make([]v1alpha1.DataSubjectRequest, 0, len(items))
	for _, it := range items {
		u, ok := it.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		var r v1alpha1.DataSubjectRequest
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
			// Unreachable with the API's schema; fail closed all the same.
			k.log.Error("a data-subject request does not decode; refusing every request for a dossier", "request", u.GetName())
			return nil, errUndecodable
		}
		reqs = append(reqs, r)
	}
	set := NewRequestEffects(k.store, reqs)
	k.log.Info("data-subject requests loaded", "store", k.store, "requests", len(reqs), "dossiersWithEffects", set.Len())
	return set, nil
}
