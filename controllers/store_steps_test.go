package controllers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestRunStoreStepsRunsAPhaseAtOnce: the steps of a phase run at once, at
// most storeStepParallelism of them; a later phase starts only after the
// earlier one is done and sees what it found; every step runs even when
// others fail, and the errors come back in the steps' order.
func TestRunStoreStepsRunsAPhaseAtOnce(t *testing.T) {
	var running, most atomic.Int32
	var mu sync.Mutex
	release := make(chan struct{})
	errFirst, errLast := errors.New("first"), errors.New("last")
	step := func(err error) storeStep {
		return func(context.Context, *v1alpha1.DossierStore, *storeFacts) error {
			n := running.Add(1)
			mu.Lock()
			if n > most.Load() {
				most.Store(n)
			}
			mu.Unlock()
			<-release
			running.Add(-1)
			return err
		}
	}
	first := []storeStep{step(errFirst)}
	for i := 0; i < 2*storeStepParallelism; i++ {
		first = append(first, step(nil))
	}
	first = append(first, func(_ context.Context, _ *v1alpha1.DossierStore, f *storeFacts) error {
		f.keyAccess = true
		return nil
	})
	var sawKeyAccess bool
	second := []storeStep{func(_ context.Context, _ *v1alpha1.DossierStore, f *storeFacts) error {
		sawKeyAccess = f.keyAccess
		if running.Load() != 0 {
			t.Error("a step of the second phase ran while the first phase still ran")
		}
		return errLast
	}}

	done := make(chan []error)
	go func() { done <- runStoreSteps(context.Background(), &v1alpha1.DossierStore{}, &storeFacts{}, [][]storeStep{first, second}) }()
	// Wait until the first phase has as many steps running as it may.
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() < storeStepParallelism && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for a step too many to start
	if got := running.Load(); got != storeStepParallelism {
		t.Errorf("%d steps of the phase running at once, want %d", got, storeStepParallelism)
	}
	close(release)
	errs := <-done
	if most.Load() > storeStepParallelism {
		t.Errorf("%d steps ran at once, want at most %d", most.Load(), storeStepParallelism)
	}
	if len(errs) != len(first)+len(second) {
		t.Fatalf("%d errors, want one per step (%d)", len(errs), len(first)+len(second))
	}
	if errs[0] != errFirst || errs[len(errs)-1] != errLast {
		t.Errorf("errors %v: want the first step's first and the last step's last", errs)
	}
	for _, err := range errs[1 : len(errs)-1] {
		if err != nil {
			t.Errorf("a step without error reported %v", err)
		}
	}
	if !sawKeyAccess {
		t.Error("the second phase did not see what the first phase found")
	}
}
