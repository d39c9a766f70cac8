package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestUpdatesFromTheCacheKeepManagedFields: the manager caches
// DossierStores without managed fields (CacheOptions) and updates them as
// read (the finalizer); the API server must keep the managed fields of
// whoever wrote the store, so that their next apply still owns its fields.
func TestUpdatesFromTheCacheKeepManagedFields(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := &v1alpha1.DossierStore{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "DossierStore"},
		ObjectMeta: metav1.ObjectMeta{Name: "dossiers", Namespace: ns, Labels: map[string]string{"team": "jeugd"}},
		Spec: v1alpha1.DossierStoreSpec{
			Service:        v1alpha1.ServiceYouthAndFamilyCentre,
			Organisation:   "Gemeente Voorbeeldstad",
			DataCategories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
			Workload: v1alpha1.WorkloadSpec{
				Selector:           metav1.LabelSelector{MatchLabels: map[string]string{"app": "dossier"}},
				ServiceAccountName: "dossier-app", AppPort: 8080,
			},
			Storage: v1alpha1.StorageSpec{StorageClassName: encryptedClass(t).Name, Size: "10Gi"},
		},
	}
	// Applied by a GitOps tool, as municipal IT would.
	//nolint:staticcheck // client.Apply with a typed object is the plain way to apply one here
	if err := k8s.Patch(ctx, store, client.Apply, client.FieldOwner("gitops"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		got := &v1alpha1.DossierStore{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(store), got); err != nil {
			return err
		}
		if !hasFinalizer(got) {
			return fmt.Errorf("no finalizer yet")
		}
		var managers []string
		gitops := false
		for _, e := range got.ManagedFields {
			managers = append(managers, e.Manager+"/"+string(e.Operation))
			if e.Manager == "gitops" && e.Operation == metav1.ManagedFieldsOperationApply && e.FieldsV1 != nil &&
				strings.Contains(e.FieldsV1.GetRawString(), `"f:spec"`) && strings.Contains(e.FieldsV1.GetRawString(), `"f:team"`) {
				gitops = true
			}
		}
		if !gitops {
			return fmt.Errorf("the applier's managed fields are gone after the manager's update: managers %v", managers)
		}
		return nil
	})
}

func hasFinalizer(s *v1alpha1.DossierStore) bool {
	for _, f := range s.Finalizers {
		if f == v1alpha1.StoreFinalizer {
			return true
		}
	}
	return false
}
