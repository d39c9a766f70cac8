package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// AdmissionPolicyFile holds the admission policies an installation has
// (the chart renders the same from it, hack/sync-chart.sh).
const AdmissionPolicyFile = "config/admission/store-finalizer.yaml"

// installAdmissionPolicies creates the admission policies of
// AdmissionPolicyFile and waits until the API server applies them: until a
// store created in a dry run comes back with its finalizer. The API server
// loads a new policy a moment after it is created, and a test that creates
// a store at once would otherwise race it.
func installAdmissionPolicies(ctx context.Context, c client.Client) error {
	data, err := os.ReadFile(filepath.Join(RepoRoot(), AdmissionPolicyFile))
	if err != nil {
		return err
	}
	objs, err := DecodeManifests(data)
	if err != nil {
		return fmt.Errorf("%s: %w", AdmissionPolicyFile, err)
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	probe := func() (bool, error) {
		s := &v1alpha1.DossierStore{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-probe-", Namespace: "default"},
			Spec: v1alpha1.DossierStoreSpec{
				Service: v1alpha1.ServiceYouthAndFamilyCentre, Organisation: "probe",
				DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
				Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "probe"}},
					ServiceAccountName: "probe", AppPort: 8080},
				Storage: v1alpha1.StorageSpec{StorageClassName: "probe", Size: "1Gi"},
			},
		}
		if err := c.Create(ctx, s, client.DryRunAll); err != nil {
			return false, err
		}
		return slices.Contains(s.Finalizers, v1alpha1.StoreFinalizer), nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, err := probe()
		switch {
		case ok:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("the admission policies of %s do not act after 60 s (last error: %v)", AdmissionPolicyFile, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
