package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// nudge makes the store reconcile now (pods are not watched) with a merge
// patch of an annotation, which never conflicts with the reconciler's writes.
func nudge(t *testing.T, s *v1alpha1.DossierStore) {
	t.Helper()
	fresh := getStore(t, s)
	patch := client.MergeFrom(fresh.DeepCopy())
	if fresh.Annotations == nil {
		fresh.Annotations = map[string]string{}
	}
	fresh.Annotations["test.dossierguard.io/nudge"] = time.Now().Format(time.RFC3339Nano)
	if err := k8s.Patch(context.Background(), fresh, patch); err != nil {
		t.Fatal(err)
	}
}

// AuditActive uses the webhook's checks, never a container's name: a decoy
// container named audit-proxy, or the real proxy in a pod labelled for
// another store, does not count as audited.
func TestAuditActiveIsNotFooledByAName(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	class := encryptedClass(t)
	s := newStore(t, ns, class.Name, func(s *v1alpha1.DossierStore) {
		s.Spec.Audit = &v1alpha1.AuditSpec{Identity: &v1alpha1.IdentitySpec{TrustedProxy: &v1alpha1.TrustedProxySpec{CIDRs: []string{"127.0.0.1/32"}}}}
	})
	eventually(t, 20*time.Second, storeCondition(s, v1alpha1.ConditionAuditActive, metav1.ConditionTrue, "NoWorkloadPods"))

	decoy := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "decoy", Namespace: ns, Labels: map[string]string{"app": "dossier"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "case-management:1"},
			{Name: webhook.SidecarName, Image: "busybox:1", Command: []string{"sleep", "infinity"}}}}}
	if err := k8s.Create(ctx, decoy); err != nil {
		t.Fatal(err)
	}
	nudge(t, s)
	eventually(t, 20*time.Second, storeCondition(s, v1alpha1.ConditionAuditActive, metav1.ConditionFalse, "PodsWithoutAuditProxy"))
	if err := k8s.Delete(ctx, decoy, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}

	// The proxy exactly as the webhook injects it counts.
	store := getStore(t, s)
	cfg := webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}
	real := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "real", Namespace: ns, Labels: map[string]string{"app": "dossier"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "case-management:1"}}}}
	webhook.Inject(real, store, cfg)
	if err := k8s.Create(ctx, real); err != nil {
		t.Fatal(err)
	}
	nudge(t, s)
	eventually(t, 20*time.Second, storeCondition(s, v1alpha1.ConditionAuditActive, metav1.ConditionTrue, "AllPodsAudited"))

	// The same proxy in a pod the store selects but that is labelled for
	// another store does not.
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other-label", Namespace: ns,
		Labels: map[string]string{"app": "dossier"}}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "case-management:1"}}}}
	webhook.Inject(other, store, cfg)
	other.Labels["privacy.dossierguard.io/store"] = "another-store"
	if err := k8s.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	nudge(t, s)
	eventually(t, 20*time.Second, storeCondition(s, v1alpha1.ConditionAuditActive, metav1.ConditionFalse, "PodsWithoutAuditProxy"))
	if c := getStore(t, s); !containsString(c.Status.Conditions, "other-label") {
		t.Errorf("the AuditActive message does not name the pod labelled for another store")
	}
}

func containsString(conditions []metav1.Condition, s string) bool {
	for _, c := range conditions {
		if c.Type == v1alpha1.ConditionAuditActive && strings.Contains(c.Message, s) {
			return true
		}
	}
	return false
}
