package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func newActivity(t *testing.T, ns, name string, mutate func(*v1alpha1.ProcessingActivity)) *v1alpha1.ProcessingActivity {
	t.Helper()
	a := &v1alpha1.ProcessingActivity{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.ProcessingActivitySpec{
			DisplayName: "Ondersteuning van gezinnen",
			Purpose:     "Ondersteuning van gezinnen bij opvoeden en opgroeien",
			LegalBasis:  v1alpha1.BasisPublicTask, LegalReference: "Jeugdwet art. 2.3",
			Service:               v1alpha1.ServiceYouthAndFamilyCentre,
			DataSubjectCategories: []string{"jeugdigen", "ouders"},
			DataCategories:        []v1alpha1.DataCategory{v1alpha1.CategoryIdentity, v1alpha1.CategoryContact},
			Retention: v1alpha1.ActivityRetention{PolicyRef: v1alpha1.RetentionPolicyReference{Name: "bewaartermijn"},
				Description: "20 jaar nadat de hulp is beëindigd"},
			Controller:            "Gemeente Voorbeeldstad",
			DataProtectionOfficer: v1alpha1.DataProtectionOfficer{Name: "Functionaris gegevensbescherming", Email: "fg@voorbeeldstad.nl"},
		},
	}
	if mutate != nil {
		mutate(a)
	}
	if err := k8s.Create(context.Background(), a); err != nil {
		t.Fatalf("create activity: %v", err)
	}
	return a
}

func activityControl(a *v1alpha1.ProcessingActivity, control string, result v1alpha1.ComplianceResult, reason string) func() error {
	return func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(a), a); err != nil {
			return err
		}
		for _, c := range a.Status.Compliance {
			if c.Control == control {
				if c.Result != result || c.Reason != reason {
					return fmt.Errorf("%s is %s/%s (%s); want %s/%s", control, c.Result, c.Reason, c.Message, result, reason)
				}
				return nil
			}
		}
		return fmt.Errorf("no %s control yet", control)
	}
}

// TestProcessingActivityStatus: the activity lists the roles, agreements
// and routes that serve it, derives recipients and measures, and fails
// PurposeLimitation when one of them uses a category it does not declare,
// and ActivityRetention while its retention policy is missing.
func TestProcessingActivityStatus(t *testing.T) {
	ctx := context.Background()
	ns, store := readyStore(t)
	a := newActivity(t, ns, "ondersteuning", nil)
	eventually(t, timeout, activityControl(a, v1alpha1.ControlActivityRetention, v1alpha1.ResultFail, v1alpha1.ReasonRetentionPolicyNotFound))
	eventually(t, timeout, func() error {
		return conditionIs(a, func() []metav1.Condition { return a.Status.Conditions }, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonRetentionPolicyNotFound)
	})
	if a.Status.ActivityID != "ondersteuning" {
		t.Errorf("activityID %q; want the object's name without spec.registerID", a.Status.ActivityID)
	}

	coach := newRole(t, ns, "coach", func(r *v1alpha1.AccessRole) { r.Spec.ProcessingActivities = []v1alpha1.ActivityName{"ondersteuning"} })
	newAgreement(t, ns, "school", func(s *v1alpha1.SharingAgreement) {
		s.Spec.ProcessingActivities = []v1alpha1.ActivityName{"ondersteuning"}
		s.Spec.Categories = []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}
	})
	other := newRole(t, ns, "other") // serves nothing: not a reference
	lost := newRole(t, ns, "lost", func(r *v1alpha1.AccessRole) { r.Spec.ProcessingActivities = []v1alpha1.ActivityName{"gone"} })
	for role, reason := range map[*v1alpha1.AccessRole]string{coach: v1alpha1.ReasonActivitiesFound, other: v1alpha1.ReasonNoActivity, lost: v1alpha1.ReasonActivityNotFound} {
		status := metav1.ConditionFalse
		if reason == v1alpha1.ReasonActivitiesFound {
			status = metav1.ConditionTrue
		}
		eventually(t, timeout, func() error {
			return conditionIs(role, func() []metav1.Condition { return role.Status.Conditions }, v1alpha1.ConditionActivityAssigned, status, reason)
		})
	}
	// The migration path: a role without activities keeps working.
	eventually(t, timeout, func() error {
		return conditionIs(other, func() []metav1.Condition { return other.Status.Conditions }, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	eventually(t, timeout, activityControl(a, v1alpha1.ControlPurposeLimitation, v1alpha1.ResultPass, v1alpha1.ReasonCategoriesCovered))
	eventually(t, timeout, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(a), a); err != nil {
			return err
		}
		if len(a.Status.References) != 2 || a.Status.References[0].Name != "coach" || a.Status.References[1].Name != "school" {
			return fmt.Errorf("references %+v; want the role coach and the agreement school", a.Status.References)
		}
		if !slices.Equal(a.Status.Recipients, []string{"De Regenboog (School)"}) {
			return fmt.Errorf("recipients %v", a.Status.Recipients)
		}
		if !slices.ContainsFunc(a.Status.Measures, func(m string) bool {
			return m == "EncryptionAtRest (AVG art. 32(1)(a); BIO 8.24): DossierStore/dossiers"
		}) {
			return fmt.Errorf("measures %v; want the store's EncryptionAtRest", a.Status.Measures)
		}
		return nil
	})

	// A route that serves the activity with a category it does not declare.
	updateRetrying(t, store, func(store *v1alpha1.DossierStore) {
		store.Spec.Audit = &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{{
			Name: "read-plan", Method: "GET", Path: "/api/dossiers/{dossier}/plan",
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryPlan}, Action: v1alpha1.ActionRead,
			ProcessingActivities: []v1alpha1.ActivityName{"ondersteuning"},
		}}}
	})
	eventually(t, timeout, activityControl(a, v1alpha1.ControlPurposeLimitation, v1alpha1.ResultFail, v1alpha1.ReasonCategoriesNotDeclared))
	c := a.Status.Compliance[0]
	if want := "DossierStore/dossiers route read-plan uses plan, which spec.dataCategories does not declare"; len(c.Message) < len(want) || c.Message[:len(want)] != want {
		t.Errorf("PurposeLimitation message %q; want it to start with %q", c.Message, want)
	}
	eventually(t, timeout, func() error {
		return conditionIs(a, func() []metav1.Condition { return a.Status.Conditions }, v1alpha1.ConditionCompliant, metav1.ConditionFalse, v1alpha1.ReasonControlFailed)
	})

	// The retention policy appears: the activity follows its result.
	newPolicy(t, ns, "bewaartermijn", nil)
	eventually(t, timeout, func() error {
		err := activityControl(a, v1alpha1.ControlActivityRetention, v1alpha1.ResultFail, v1alpha1.ReasonRetentionPolicyNotFound)()
		if err == nil {
			return fmt.Errorf("the activity still reports its retention policy missing")
		}
		for _, c := range a.Status.Compliance {
			if c.Control == v1alpha1.ControlActivityRetention && c.Reason == v1alpha1.ReasonRetentionPolicyFailing && c.Result != v1alpha1.ResultPass {
				return nil
			}
		}
		return err
	})
}

// TestStoreRouteActivities: a store's ActivityAssigned summarises its audit
// routes: a route naming an activity that does not exist, then a route
// naming none, are warnings (False) while the store stays Ready; once every
// route names an activity that exists it is True, and False again when the
// activity is deleted.
func TestStoreRouteActivities(t *testing.T) {
	ctx := context.Background()
	ns, store := readyStore(t)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionActivityAssigned, metav1.ConditionTrue, v1alpha1.ReasonActivitiesFound))

	route := func(name string, activities ...v1alpha1.ActivityName) v1alpha1.AuditRoute {
		return v1alpha1.AuditRoute{Name: name, Method: "GET", Path: "/api/" + name,
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity}, Action: v1alpha1.ActionRead, ProcessingActivities: activities}
	}
	updateRetrying(t, store, func(s *v1alpha1.DossierStore) {
		s.Spec.Audit = &v1alpha1.AuditSpec{Routes: []v1alpha1.AuditRoute{route("list", "ondersteuning"), route("legacy")}}
	})
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionActivityAssigned, metav1.ConditionFalse, v1alpha1.ReasonActivityNotFound))

	// The activity appears: only the route without one is left to warn of.
	a := newActivity(t, ns, "ondersteuning", nil)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionActivityAssigned, metav1.ConditionFalse, v1alpha1.ReasonNoActivity))
	c := meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionActivityAssigned)
	if want := "1 of 2 audit routes name no processing activity (legacy)"; !strings.HasPrefix(c.Message, want) {
		t.Errorf("ActivityAssigned message %q; want it to start with %q", c.Message, want)
	}
	// A warning: the store keeps working, Ready and Compliant as before.
	if err := storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonStoreReady)(); err != nil {
		t.Error(err)
	}
	if got := meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionCompliant); got != nil && strings.Contains(got.Message, v1alpha1.ConditionActivityAssigned) {
		t.Errorf("Compliant %q counts ActivityAssigned", got.Message)
	}

	updateRetrying(t, store, func(s *v1alpha1.DossierStore) {
		s.Spec.Audit.Routes = []v1alpha1.AuditRoute{route("list", "ondersteuning"), route("legacy", "ondersteuning")}
	})
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionActivityAssigned, metav1.ConditionTrue, v1alpha1.ReasonActivitiesFound))

	if err := k8s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionActivityAssigned, metav1.ConditionFalse, v1alpha1.ReasonActivityNotFound))
}
