package controllers_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	v1alpha1 "github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testIsolation is how the suite's manager is installed: with a logbook in
// the operator's namespace, as the chart sets it with logbook.enabled.
var testIsolation = resources.IsolationExtras{Logbook: &resources.PodPeer{
	Namespace: operatorNamespace, Port: resources.DefaultLogbookPort,
	PodLabels: map[string]string{"app.kubernetes.io/component": "logbook", "app.kubernetes.io/instance": "dossierguard"}}}

// With a logbook configured, every store's isolation policy lets the
// workload send to the logbook's pods on its port, and the rule comes back
// when someone removes it.
func TestIsolationAdmitsLogbook(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	policy := &networkingv1.NetworkPolicy{}
	hasLogbook := func() error {
		if err := k8s.Get(ctx, key(ns, "dossiers-isolation"), policy); err != nil {
			return err
		}
		for _, rule := range policy.Spec.Egress {
			if len(rule.To) != 1 || len(rule.Ports) != 1 || rule.Ports[0].Port.IntVal != 4318 {
				continue
			}
			peer := rule.To[0]
			if peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels[resources.NamespaceNameLabel] == operatorNamespace &&
				peer.PodSelector != nil && reflect.DeepEqual(peer.PodSelector.MatchLabels, testIsolation.Logbook.PodLabels) {
				return nil
			}
		}
		return fmt.Errorf("no egress rule to the logbook: %+v", policy.Spec.Egress)
	}
	eventually(t, timeout, hasLogbook)
	if len(policy.Spec.Ingress) != 1 {
		t.Errorf("ingress rules %+v; without proxy metrics namespaces only the proxy port's", policy.Spec.Ingress)
	}

	// Someone removes every egress rule but DNS.
	policy.Spec.Egress = policy.Spec.Egress[:1]
	if err := k8s.Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, hasLogbook)
}
