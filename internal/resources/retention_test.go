package resources

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// The sweeper's pod is no workload pod of the store: it carries no store
// label, which the webhook would take for one (and refuse, since the
// store's workload selector does not select it).
func TestSweeperPodIsNotAWorkloadPod(t *testing.T) {
	p := &v1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bewaartermijn", Namespace: "ns"},
		Spec: v1alpha1.RetentionPolicySpec{StoreRef: v1alpha1.StoreReference{Name: "dossiers"}}}
	labels := SweeperCronJob(p, "img", 3600).Spec.JobTemplate.Spec.Template.Labels
	if _, ok := labels[v1alpha1.LabelStore]; ok {
		t.Errorf("sweeper pod labels %v carry %s", labels, v1alpha1.LabelStore)
	}
	if labels[v1alpha1.LabelRetentionPolicy] != "bewaartermijn" {
		t.Errorf("sweeper pod labels %v do not name the policy", labels)
	}
}
