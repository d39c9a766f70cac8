package controllers_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// startGarbageCollector runs kube-controller-manager with only its garbage
// collector against the test API server (envtest runs none), until the
// test ends. The binary is in KUBEBUILDER_ASSETS: `make test` builds it
// with hack/envtest-assets.sh.
func startGarbageCollector(t *testing.T) {
	t.Helper()
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no kube-controller-manager in KUBEBUILDER_ASSETS (%v): run the tests with 'make test', or set KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh kubectl kube-controller-manager)", err)
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "garbage-collector", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", path, "--controllers=garbagecollector",
		"--leader-elect=false", "--secure-port=0", "--v=0")
	log := filepath.Join(t.TempDir(), "kube-controller-manager.log")
	out, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = out.Close()
		if t.Failed() {
			data, _ := os.ReadFile(log)
			t.Logf("kube-controller-manager:\n%s", data)
		}
	})
}

// TestReportsGoWithTheirResources: with a real garbage collector, a
// resource's Report is deleted with the resource (its owner), and the
// Reports of the other resources stay.
func TestReportsGoWithTheirResources(t *testing.T) {
	startGarbageCollector(t)
	ctx := context.Background()
	ns, store := readyStore(t)
	role := newRole(t, ns, "jeugdverpleegkundige")
	agreement := newAgreement(t, ns, "regenboog", nil)
	for _, name := range []string{"dossierstore-dossiers", "accessrole-jeugdverpleegkundige", "sharingagreement-regenboog"} {
		eventually(t, timeout, func() error { _, err := getReport(ns, name); return err })
		eventually(t, timeout, func() error { _, err := getPolicyReport(ns, name); return err })
	}
	gone := func(name string) func() error {
		return func() error {
			if _, err := getReport(ns, name); !apierrors.IsNotFound(err) {
				return fmt.Errorf("Report %s: %v; want it deleted with its resource", name, err)
			}
			if _, err := getPolicyReport(ns, name); !apierrors.IsNotFound(err) {
				return fmt.Errorf("PolicyReport %s: %v; want it deleted with its resource", name, err)
			}
			return nil
		}
	}
	// The garbage collector needs a little while to discover the kinds.
	const gcTimeout = 60 * time.Second
	if err := k8s.Delete(ctx, role); err != nil {
		t.Fatal(err)
	}
	eventually(t, gcTimeout, gone("accessrole-jeugdverpleegkundige"))
	if _, err := getReport(ns, "sharingagreement-regenboog"); err != nil {
		t.Errorf("the agreement's Report went too: %v", err)
	}
	if err := k8s.Delete(ctx, agreement); err != nil {
		t.Fatal(err)
	}
	eventually(t, gcTimeout, gone("sharingagreement-regenboog"))
	// The store goes once its finalizer has released the volume.
	if err := k8s.Delete(ctx, store); err != nil {
		t.Fatal(err)
	}
	eventually(t, gcTimeout, gone("dossierstore-dossiers"))
	eventually(t, timeout, func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(store), store)
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("store still there: %v", err)
		}
		return nil
	})
}
