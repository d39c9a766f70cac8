package controllers

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

func testPublicKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestWithTrustKeys(t *testing.T) {
	store := func(name string) *v1alpha1.DossierStore {
		return &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: "youth", Name: name}}
	}
	a, b, kept, other := testPublicKey(t), testPublicKey(t), testPublicKey(t), testPublicKey(t)
	base, _, err := resources.WithTrustKey(resources.NewAuditTrustConfigMap("dossierguard-system"), store("kept"), kept)
	if err != nil {
		t.Fatal(err)
	}
	// An entry of the name of clash's key that holds another key.
	clash := testPublicKey(t)
	base.Data[resources.TrustKeyName(store("clash"), clash)] = base.Data[resources.TrustKeyName(store("kept"), kept)]

	for _, tc := range []struct {
		name        string
		reqs        []trustRequest
		wantChanged bool
		wantRefused []bool
		wantKeys    map[string]bool // entry name: present afterwards
	}{
		{
			name:        "the keys of several stores in one write",
			reqs:        []trustRequest{{store: store("a"), pubs: []ed25519.PublicKey{a}}, {store: store("b"), pubs: []ed25519.PublicKey{b}}},
			wantChanged: true, wantRefused: []bool{false, false},
			wantKeys: map[string]bool{resources.TrustKeyName(store("a"), a): true, resources.TrustKeyName(store("b"), b): true},
		},
		{
			name:        "keys already kept change nothing",
			reqs:        []trustRequest{{store: store("kept"), pubs: []ed25519.PublicKey{kept}}},
			wantChanged: false, wantRefused: []bool{false},
			wantKeys: map[string]bool{resources.TrustKeyName(store("kept"), kept): true},
		},
		{
			name: "a request with a clashing entry is refused whole, the others go on",
			reqs: []trustRequest{
				{store: store("clash"), pubs: []ed25519.PublicKey{other, clash}},
				{store: store("a"), pubs: []ed25519.PublicKey{a}},
			},
			wantChanged: true, wantRefused: []bool{true, false},
			wantKeys: map[string]bool{resources.TrustKeyName(store("clash"), other): false, resources.TrustKeyName(store("a"), a): true},
		},
		{
			name:        "only a refused request: nothing to write",
			reqs:        []trustRequest{{store: store("clash"), pubs: []ed25519.PublicKey{clash}}},
			wantChanged: false, wantRefused: []bool{true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(base.Data)
			next, changed, refused := withTrustKeys(base, tc.reqs)
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			for i, want := range tc.wantRefused {
				if (refused[i] != nil) != want {
					t.Errorf("request %d: refused %v, want refused %v", i, refused[i], want)
				}
			}
			for name, want := range tc.wantKeys {
				if _, ok := next.Data[name]; ok != want {
					t.Errorf("entry %s present %v, want %v", name, ok, want)
				}
			}
			if len(base.Data) != before {
				t.Error("the ConfigMap read was changed; want a copy")
			}
		})
	}
}

// TestTrustWritesGathersConcurrentRequests: requests that come while a
// write is under way go into one next write, and each gets its own outcome.
func TestTrustWritesGathersConcurrentRequests(t *testing.T) {
	var w trustWrites
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]string
	refuse := errors.New("refused")
	write := func(_ context.Context, reqs []trustRequest) []error {
		var names []string
		for _, r := range reqs {
			names = append(names, r.store.Name)
		}
		mu.Lock()
		batches = append(batches, names)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // the first write takes a while
		}
		errs := make([]error, len(reqs))
		for i, r := range reqs {
			if r.store.Name == "refused" {
				errs[i] = refuse
			}
		}
		return errs
	}
	req := func(name string) trustRequest {
		return trustRequest{store: &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: name}}}
	}
	ctx := context.Background()
	firstDone := make(chan error, 1)
	go func() { firstDone <- w.publish(ctx, req("first"), write) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 1 })

	names := []string{"s1", "s2", "refused", "s3"}
	results := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = w.publish(ctx, req(n), write) }()
	}
	waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.pending) == len(names) })
	close(release)
	if err := <-firstDone; err != nil {
		t.Errorf("first request: %v", err)
	}
	wg.Wait()
	for i, n := range names {
		if want := n == "refused"; (results[i] != nil) != want || (want && !errors.Is(results[i], refuse)) {
			t.Errorf("request %s: %v", n, results[i])
		}
	}
	if len(batches) != 2 || len(batches[1]) != len(names) {
		t.Errorf("writes %v; want the first alone, then the four that came while it wrote, together", batches)
	}

	// With nothing pending the writer has stopped; a new request starts another.
	if err := w.publish(ctx, req("later"), write); err != nil {
		t.Errorf("a request after the writer stopped: %v", err)
	}
	if len(batches) != 3 {
		t.Errorf("%d writes; want a third for the later request", len(batches))
	}
}

func TestTrustWritesCallerWhoseContextEnds(t *testing.T) {
	var w trustWrites
	release := make(chan struct{})
	write := func(_ context.Context, reqs []trustRequest) []error {
		<-release
		return make([]error, len(reqs))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := w.publish(ctx, trustRequest{store: &v1alpha1.DossierStore{}}, write)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("publish with an ended context: %v; want its error", err)
	}
	close(release)
	// The write goes on without the caller, and the writer stops.
	waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return !w.writing })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
