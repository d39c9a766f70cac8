package auditproxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// fakeAPI serves one list of requests and watches that it can break.
type fakeAPI struct {
	mu      sync.Mutex
	items   []v1alpha1.DataSubjectRequest
	down    bool
	watches []*watch.FakeWatcher
}

func (f *fakeAPI) lw(t *testing.T) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.down {
				return nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
			}
			list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "privacy.dossierguard.io/v1alpha1", "kind": "DataSubjectRequestList"}}
			list.SetResourceVersion("1")
			list.Items = f.objects(t)
			return list, nil
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.down {
				return nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
			}
			items := f.objects(t)
			w := watch.NewFakeWithChanSize(len(items)+1, false)
			if o.SendInitialEvents != nil && *o.SendInitialEvents {
				// A streaming list: the items, then the bookmark that ends them.
				for i := range items {
					w.Add(&items[i])
				}
				end := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "privacy.dossierguard.io/v1alpha1", "kind": "DataSubjectRequest"}}
				end.SetResourceVersion("1")
				end.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
				w.Action(watch.Bookmark, end)
			}
			f.watches = append(f.watches, w)
			return w, nil
		},
	}
}

func (f *fakeAPI) objects(t *testing.T) []unstructured.Unstructured {
	var out []unstructured.Unstructured
	for i := range f.items {
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&f.items[i])
		if err != nil {
			t.Error(err)
		}
		u := unstructured.Unstructured{Object: obj}
		u.SetAPIVersion("privacy.dossierguard.io/v1alpha1")
		u.SetKind("DataSubjectRequest")
		u.SetName(fmt.Sprintf("r-%d", i))
		u.SetResourceVersion("1")
		out = append(out, u)
	}
	return out
}

// breakDown takes the API server away: open watches end, new ones fail.
func (f *fakeAPI) breakDown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	for _, w := range f.watches {
		w.Stop()
	}
	f.watches = nil
}

func (f *fakeAPI) restore() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
}

// TestKubeRequestsFailClosed: not synced before the first list; the
// restriction read is enforced; when the watch fails for longer than the
// grace every request for a dossier is refused, and when the API server is
// back the set is enforced again.
func TestKubeRequestsFailClosed(t *testing.T) {
	a := DossierPseudonym(testPseudonymKey, "D-1")
	api := &fakeAPI{items: []v1alpha1.DataSubjectRequest{subjectRequest(v1alpha1.RequestRestriction, a)}}
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	k, err := newKubeRequests(api.lw(t), "wijkteam-dossiers", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Effects(); !errors.Is(err, ErrRequestsNotSynced) {
		t.Fatalf("before the first list: %v, want ErrRequestsNotSynced", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go k.Run(ctx)
	route := routeNamed(t, "read-dossier")
	wait := func(what string, check func() error) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := check()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	enforced := func() error {
		set, err := k.Effects()
		if err != nil {
			return err
		}
		if r, _ := set.Check(a, TargetOf(&accesspolicy.Document{}, route, []string{"basis"}), effectsNow); r != RefusedRestricted {
			return errors.New("the restriction is not enforced")
		}
		return nil
	}
	wait("synced", enforced)

	api.breakDown()
	wait("the watch fails", func() error {
		if k.failingSince.Load() == 0 {
			return errors.New("no failure observed yet")
		}
		return nil
	})
	if err := enforced(); err != nil {
		t.Errorf("within the grace the last set stays in force: %v", err)
	}
	offset.Store(int64(WatchFailureGrace + time.Second))
	if _, err := k.Effects(); !errors.Is(err, ErrWatchFailing) {
		t.Errorf("after the grace: %v, want ErrWatchFailing", err)
	}

	api.restore()
	wait("the watch is back", enforced)
}
