package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// staleSecrets answers Gets of one Secret with an old copy of it, as a
// cache that has not seen the latest write would.
type staleSecrets struct {
	client.Client
	stale *corev1.Secret
}

func (c staleSecrets) Get(ctx context.Context, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if s, ok := obj.(*corev1.Secret); ok && k == client.ObjectKeyFromObject(c.stale) {
		c.stale.DeepCopyInto(s)
		return nil
	}
	return c.Client.Get(ctx, k, obj, opts...)
}

// rotateToVersion2 moves the clock past a 1h rotation period (and back
// after the test) until the store's data key is at version 2.
func rotateToVersion2(t *testing.T, store *v1alpha1.DossierStore) {
	t.Helper()
	fakeClock.Step(2 * time.Hour)
	t.Cleanup(func() { fakeClock.Step(-2 * time.Hour) })
	nudge(t, store)
	eventually(t, timeout, func() error {
		if v := getStore(t, store).Status.KeyVersion; v != 2 {
			return fmt.Errorf("key version %d; want 2", v)
		}
		return nil
	})
}

// The cache holds only Secrets with dossierguard's managed-by label.
// Remove the label from the key Secrets of a store with two data-key
// versions, reconcile: every version and every audit key survives, and the
// Secrets are dossierguard's again.
func TestUnlabelledKeySecretsKeepEveryVersion(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name, func(s *v1alpha1.DossierStore) { s.Spec.Encryption.KeyRotationPeriod = "1h" })
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	rotateToVersion2(t, store)
	original := map[string]map[string][]byte{}
	for _, name := range []string{"dossiers-datakey", "dossiers-audit-signing", "dossiers-pseudonym"} {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, key(ns, name), s); err != nil {
			t.Fatal(err)
		}
		original[name] = s.Data
		delete(s.Labels, resources.LabelManagedBy)
		if err := k8s.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if len(original["dossiers-datakey"]) != 2 {
		t.Fatalf("data key Secret holds %d versions; want 2", len(original["dossiers-datakey"]))
	}
	// The label's removal takes the Secrets out of the cache, which
	// reconciles the store; reconcile once more for good measure.
	nudge(t, store)
	eventually(t, timeout, func() error {
		for name, data := range original {
			s := &corev1.Secret{}
			if err := k8s.Get(ctx, key(ns, name), s); err != nil {
				return err
			}
			if s.Labels[resources.LabelManagedBy] != resources.ManagedByValue {
				return fmt.Errorf("%s: managed-by label not restored yet", name)
			}
			if len(s.Data) != len(data) {
				t.Fatalf("%s holds %d entries after the reconcile, had %d", name, len(s.Data), len(data))
			}
			for k, v := range data {
				if string(s.Data[k]) != string(v) {
					t.Fatalf("%s: %s was replaced", name, k)
				}
			}
		}
		return nil
	})
}

// A rotation decided on a stale read (a cache behind the API server) must
// not write over a version it did not see: it updates with the read's
// resourceVersion, conflicts, and destroys nothing.
func TestRotationOnAStaleReadDestroysNoVersion(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name, func(s *v1alpha1.DossierStore) { s.Spec.Encryption.KeyRotationPeriod = "1h" })
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	stale := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "dossiers-datakey"), stale); err != nil {
		t.Fatal(err)
	}
	// Version 2 is added behind the stale copy's back.
	rotateToVersion2(t, store)
	live := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "dossiers-datakey"), live); err != nil {
		t.Fatal(err)
	}
	// A reconciler that reads the stale copy, when version 2 is due again.
	fakeClock.Step(2 * time.Hour)
	t.Cleanup(func() { fakeClock.Step(-2 * time.Hour) })
	r := &controllers.DossierStoreReconciler{Client: staleSecrets{Client: mgrClient, stale: stale}, Reader: k8s, Recorder: noEvents{}, Clock: fakeClock,
		AuditProxy: webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}, Certs: testCerts, TrustNamespace: operatorNamespace}
	_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(store)})
	after := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "dossiers-datakey"), after); err != nil {
		t.Fatal(err)
	}
	for k, v := range live.Data {
		if string(after.Data[k]) != string(v) {
			t.Errorf("%s was overwritten by a rotation on a stale read", k)
		}
	}
}
