package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

// floorNamespace receives the plain client's copies.
const floorNamespace = "floor"

// floorWorkers is how many writes the plain client has in flight (and how
// many creates the benchmark has in flight); the manager runs 16
// reconcilers of each of 6 kinds by default, most of them idle or waiting
// on the API server.
const floorWorkers = 24

// childKinds are the kinds of what the manager writes beside the
// resources' own status: every child, the Reports and the Events.
var childKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Version: "v1", Kind: "PersistentVolumeClaim"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
	{Group: "openreports.io", Version: "v1alpha1", Kind: "Report"},
	{Group: "events.k8s.io", Version: "v1", Kind: "Event"},
}

// runFloor writes, with a plain concurrent client and once each, what the
// manager ended up with in the benchmark's namespace: the n stores, roles,
// agreements and retention policies (created with their finalizers, then
// their status written once), and a copy of every child, Report and Event.
// It reports how long that took and the writes the API server received, by
// verb and resource. This is the least a controller could write to reach
// the same state; it decides nothing.
func runFloor(ctx context.Context, b *testing.B, env *testenv.Env, n int) (time.Duration, map[string]float64) {
	c := unlimitedClient(b, env)
	var writes []func() error
	for _, list := range []client.ObjectList{&v1alpha1.DossierStoreList{}, &v1alpha1.AccessRoleList{}, &v1alpha1.SharingAgreementList{}, &v1alpha1.RetentionPolicyList{}} {
		items := listUnstructured(ctx, b, env.Client, list)
		for _, item := range items {
			writes = append(writes, func() error {
				status := item.Object["status"]
				copied := floorCopy(item)
				if err := c.Create(ctx, copied); err != nil {
					return fmt.Errorf("create %s %s: %w", item.GetKind(), item.GetName(), err)
				}
				copied.Object["status"] = status
				if err := c.Status().Update(ctx, copied); err != nil {
					return fmt.Errorf("status of %s %s: %w", item.GetKind(), item.GetName(), err)
				}
				return nil
			})
		}
	}
	for _, gvk := range childKinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := env.Client.List(ctx, l, client.InNamespace("bench")); err != nil {
			b.Fatal(err)
		}
		for i := range l.Items {
			item := &l.Items[i]
			if gvk.Kind == "ConfigMap" && item.GetName() == "kube-root-ca.crt" {
				continue // not the manager's
			}
			writes = append(writes, func() error {
				copied := floorCopy(item)
				delete(copied.Object, "status")
				if gvk.Kind == "Event" {
					_ = unstructured.SetNestedField(copied.Object, floorNamespace, "regarding", "namespace")
				}
				if err := c.Create(ctx, copied); err != nil {
					return fmt.Errorf("create %s %s: %w", gvk.Kind, item.GetName(), err)
				}
				return nil
			})
		}
	}

	// The operator's namespace holds one ConfigMap for all stores.
	trust := &unstructured.Unstructured{}
	trust.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "dossierguard-system", Name: resources.AuditTrustName}, trust); err != nil {
		b.Fatal(err)
	}
	writes = append(writes, func() error { return c.Create(ctx, floorCopy(trust)) })
	events := map[string]int{}
	for _, w := range eventReasons(ctx, b, env) {
		events[w]++
	}
	fmt.Printf("events the manager emitted (%d stores), by kind and reason:\n", n)
	for _, k := range sortedKeys(toFloat(events), nil) {
		fmt.Printf("  %-60s %6d\n", k, events[k])
	}

	before := apiserverWrites(b, env)
	start := time.Now()
	failed := concurrently(floorWorkers, writes)
	took := time.Since(start)
	if failed != nil {
		b.Fatalf("floor: %v", failed)
	}
	kinds := writesBetween(before, apiserverWrites(b, env))
	for _, k := range []string{"POST dossierstores", "POST accessroles", "POST sharingagreements", "POST retentionpolicies"} {
		kinds[k] -= float64(n)
	}
	return took, kinds
}

// eventReasons are the kind, reason and type of every Event in the
// benchmark's namespace.
func eventReasons(ctx context.Context, b *testing.B, env *testenv.Env) []string {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(schema.GroupVersionKind{Group: "events.k8s.io", Version: "v1", Kind: "EventList"})
	if err := env.Client.List(ctx, l, client.InNamespace("bench")); err != nil {
		b.Fatal(err)
	}
	out := make([]string, 0, len(l.Items))
	for _, e := range l.Items {
		kind, _, _ := unstructured.NestedString(e.Object, "regarding", "kind")
		reason, _, _ := unstructured.NestedString(e.Object, "reason")
		typ, _, _ := unstructured.NestedString(e.Object, "type")
		out = append(out, kind+" "+reason+" ("+typ+")")
	}
	return out
}

func toFloat(m map[string]int) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

func listUnstructured(ctx context.Context, b *testing.B, c client.Client, list client.ObjectList) []*unstructured.Unstructured {
	gvk, err := c.GroupVersionKindFor(list)
	if err != nil {
		b.Fatal(err)
	}
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk)
	if err := c.List(ctx, l, client.InNamespace("bench")); err != nil {
		b.Fatal(err)
	}
	out := make([]*unstructured.Unstructured, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, &l.Items[i])
	}
	return out
}

// floorCopy is o in the floor's namespace without what the API server sets
// (identity, versions, managed fields) and without owner references (the
// owners' UIDs are those of the originals).
func floorCopy(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := o.DeepCopy()
	c.SetNamespace(floorNamespace)
	c.SetUID("")
	c.SetResourceVersion("")
	c.SetCreationTimestamp(metav1.Time{})
	c.SetManagedFields(nil)
	c.SetOwnerReferences(nil)
	c.SetGeneration(0)
	return c
}

// concurrently runs the jobs with workers of them at a time and returns the
// first error, after every job ran.
func concurrently(workers int, jobs []func() error) error {
	queue := make(chan func() error)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range queue {
				if err := job(); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, job := range jobs {
		queue <- job
	}
	close(queue)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// unlimitedClient is a client of the control plane without a client-side
// rate limit, as the manager has none.
func unlimitedClient(b *testing.B, env *testenv.Env) client.Client {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, -1
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	return c
}
