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

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
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

// KubeRequests watches the DataSubjectRequests of one namespace with the
// proxy's own service account and keeps the effects of one store's. It is
// not synced until the first list has been read; the set is rebuilt on the
// first question after any change.
type KubeRequests struct {
	store    string
	informer cache.SharedIndexInformer
	log      *slog.Logger

	dirty   atomic.Bool
	mu      sync.Mutex
	current atomic.Pointer[RequestEffects]
}

// NewKubeRequests prepares a watch of namespace's DataSubjectRequests for
// store; Run starts it.
func NewKubeRequests(cfg *rest.Config, namespace, store string, log *slog.Logger) (*KubeRequests, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("data-subject requests: %w", err)
	}
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dc, 0, namespace, nil)
	k := &KubeRequests{store: store, log: log,
		informer: f.ForResource(v1alpha1.GroupVersion.WithResource("datasubjectrequests")).Informer()}
	k.dirty.Store(true)
	mark := func(any) { k.dirty.Store(true) }
	if _, err := k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: mark, DeleteFunc: mark, UpdateFunc: func(_, n any) { mark(n) },
	}); err != nil {
		return nil, fmt.Errorf("data-subject requests: %w", err)
	}
	_ = k.informer.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		// The class of the failure only: no object, no URL.
		log.Warn("watching the store's data-subject requests failed; retrying", "store", store, "error", errorClass(err))
	})
	return k, nil
}

// Run watches until ctx ends.
func (k *KubeRequests) Run(ctx context.Context) { k.informer.Run(ctx.Done()) }

// Effects is the current set, or ErrRequestsNotSynced before the first
// list was read.
func (k *KubeRequests) Effects() (*RequestEffects, error) {
	if !k.informer.HasSynced() {
		return nil, ErrRequestsNotSynced
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
