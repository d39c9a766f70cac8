package controllers_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// An agreement created together with its store waits for the store's first
// assessment before its own first status: it never reports (and announces
// in an event) that the store is not Ready when the store simply had not
// been looked at yet, which cost a status write, a report and an event for
// a state that never was.
func TestAgreementCreatedWithItsStoreWaitsForTheStoresFirstStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ns := newNamespace(t)
	class := encryptedClass(t).Name
	watcher, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := watcher.Watch(ctx, &v1alpha1.SharingAgreementList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	newStore(t, ns, class)
	a := newAgreement(t, ns, "school", nil)

	// Every status the agreement is given, in order, until it is in force.
	var reasons []string
	for done := false; !done; {
		select {
		case <-ctx.Done():
			t.Fatalf("the agreement did not come into force; its statuses were %v", reasons)
		case e := <-w.ResultChan():
			got, ok := e.Object.(*v1alpha1.SharingAgreement)
			if !ok || e.Type != watch.Modified {
				continue
			}
			c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionAgreementInForce)
			if c == nil || (len(reasons) > 0 && reasons[len(reasons)-1] == c.Reason) {
				continue
			}
			reasons = append(reasons, c.Reason)
			done = c.Status == metav1.ConditionTrue
		}
	}
	if len(reasons) != 1 {
		t.Errorf("the agreement's AgreementInForce went through %v; want it in force at its first status", reasons)
	}
	// Nor an event saying so.
	time.Sleep(time.Second)
	events := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.Regarding.Name == a.Name && e.Reason == v1alpha1.ReasonStoreNotReady {
			t.Errorf("event %s %q for an agreement whose store had not been assessed yet", e.Reason, e.Note)
		}
	}
}

// liveReads counts the reads of the audit trust ConfigMap from the API
// server.
type liveReads struct {
	client.Reader
	n *atomic.Int64
}

func (r liveReads) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	if key.Name == resources.AuditTrustName {
		r.n.Add(1)
	}
	return r.Reader.Get(ctx, key, o, opts...)
}

// The trust ConfigMap holds the public keys of every store, so reading it
// from the API server on every reconcile of every store grows with the
// square of the stores. A settled store finds its keys in the cached copy
// and reads nothing live.
func TestSettledStoreReadsNoTrustConfigMapLive(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	time.Sleep(time.Second) // let the cache see the trust ConfigMap with the store's key

	reads := &atomic.Int64{}
	r := &controllers.DossierStoreReconciler{Client: mgrClient, Reader: liveReads{Reader: k8s, n: reads}, Recorder: noEvents{}, Clock: fakeClock,
		AuditProxy: webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}, Certs: testCerts, TrustNamespace: operatorNamespace,
		Isolation: testIsolation}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(store)}); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("%d live reads of ConfigMap %s in 3 reconciles of a settled store; want 0", n, resources.AuditTrustName)
	}
}

// racingTrustWrites makes every store's write of the trust ConfigMap lose
// a real race once: just before the reconciler's first update goes out,
// another writer updates the ConfigMap on the API server, so the update
// is refused with a real conflict.
type racingTrustWrites struct {
	client.Client
	updates *atomic.Int64
	raced   *atomic.Bool
}

func (c racingTrustWrites) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	if o.GetName() == resources.AuditTrustName {
		c.updates.Add(1)
		if c.raced.CompareAndSwap(false, true) {
			other := &corev1.ConfigMap{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), other); err != nil {
				return err
			}
			if other.Annotations == nil {
				other.Annotations = map[string]string{}
			}
			other.Annotations["test.dossierguard.io/raced"] = time.Now().String()
			if err := k8s.Update(ctx, other); err != nil {
				return err
			}
		}
	}
	return c.Client.Update(ctx, o, opts...)
}

// Every store adds its key to the one trust ConfigMap; a write that lost
// the race to another store's is read and tried again at once, instead of
// failing the reconcile (which left the store DependencyUnavailable, with
// an event and a second status write, until the retry).
func TestTrustKeyWriteThatLostARaceIsRetriedAtOnce(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	// The test's reconciler keeps the trust keys in a namespace of its own,
	// where the running manager (which keeps putting the store's key back
	// into the operator's ConfigMap) writes nothing: the ConfigMap there
	// exists without the store's key, as if it had not been published yet,
	// and the cache has seen it.
	trustNS := newNamespace(t)
	if err := k8s.Create(ctx, resources.NewAuditTrustConfigMap(trustNS)); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		return mgrClient.Get(ctx, key(trustNS, resources.AuditTrustName), &corev1.ConfigMap{})
	})

	updates, raced := &atomic.Int64{}, &atomic.Bool{}
	r := &controllers.DossierStoreReconciler{Client: racingTrustWrites{Client: mgrClient, updates: updates, raced: raced}, Reader: k8s, Recorder: noEvents{}, Clock: fakeClock,
		AuditProxy: webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}, Certs: testCerts, TrustNamespace: operatorNamespace,
		Isolation: testIsolation}
	r.TrustNamespace = trustNS
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(store)}); err != nil {
		t.Fatalf("a reconcile whose trust write lost a race failed: %v", err)
	}
	if n := updates.Load(); n < 2 {
		t.Errorf("%d updates of the trust ConfigMap; want the lost one and its retry", n)
	}
	if !raced.Load() {
		t.Error("no write of the trust ConfigMap lost a race")
	}
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, key(trustNS, resources.AuditTrustName), cm); err != nil {
		t.Fatal(err)
	}
	published := 0
	for name := range cm.Data {
		if strings.HasPrefix(name, ns+"_"+store.Name+"_") {
			published++
		}
	}
	if published == 0 {
		t.Errorf("the store's key is not in the trust ConfigMap after the retry: %v", cm.Data)
	}
}
