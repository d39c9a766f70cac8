package controllers_test

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/metrics"
)

// seriesOf gathers the manager's registry: the values of metric's series of
// the object, by their labels.
func seriesOf(metric, kind, ns, name string) (map[string]float64, error) {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["namespace"] == ns && labels["name"] == name {
				out[fmt.Sprint(labels)] = m.GetGauge().GetValue()
			}
		}
	}
	return out, nil
}

// countsOf gathers the manager's registry: the values of the count
// metric's series of a kind in a namespace, by their labels.
func countsOf(metric, kind, ns string) (map[string]float64, error) {
	return seriesOf(metric, kind, ns, "")
}

// TestMetricsFollowTheResources: the reconcilers set a store's and an
// agreement's series from their status and remove them with the resource.
func TestMetricsFollowTheResources(t *testing.T) {
	ns, store := readyStore(t)
	a := newAgreement(t, ns, "consent", nil)
	eventually(t, timeout, agreementCondition(a, v1alpha1.ConditionAgreementInForce, metav1.ConditionTrue, "InForce"))
	eventually(t, timeout, func() error {
		s, err := seriesOf(metrics.AgreementInForce, metrics.KindSharingAgreement, ns, a.Name)
		if err != nil || len(s) != 1 {
			return fmt.Errorf("in-force series %v (err %v), want one", s, err)
		}
		for _, v := range s {
			if v != 1 {
				return fmt.Errorf("in force %v, want 1", v)
			}
		}
		if s, _ := seriesOf(metrics.AgreementNextTransition, metrics.KindSharingAgreement, ns, a.Name); len(s) != 1 {
			return fmt.Errorf("next-transition series %v, want one", s)
		}
		if s, _ := countsOf(metrics.Controls, metrics.KindDossierStore, ns); len(s) == 0 {
			return fmt.Errorf("no counts of the store's controls")
		}
		if s, _ := countsOf(metrics.Controls, metrics.KindSharingAgreement, ns); len(s) == 0 {
			return fmt.Errorf("no counts of the agreement's controls")
		}
		if s, _ := seriesOf(metrics.DataKeyNextRotation, metrics.KindDossierStore, ns, store.Name); len(s) != 1 {
			return fmt.Errorf("next-rotation series %v, want one", s)
		}
		return nil
	})

	if err := k8s.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		for _, m := range []string{metrics.AgreementInForce, metrics.AgreementNextTransition, metrics.ControlResult, metrics.ControlInfo} {
			if s, err := seriesOf(m, metrics.KindSharingAgreement, ns, a.Name); err != nil || len(s) != 0 {
				return fmt.Errorf("%s series of the deleted agreement: %v (err %v)", m, s, err)
			}
		}
		// It was the namespace's only agreement: its counts go with it.
		if s, err := countsOf(metrics.Controls, metrics.KindSharingAgreement, ns); err != nil || len(s) != 0 {
			return fmt.Errorf("counts of the agreements of %s after the only one went: %v (err %v)", ns, s, err)
		}
		return nil
	})
}
