package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// TestGrantedErasureStartsAJob: a granted Erasure request gets one Job,
// made from the policy's sweeper CronJob, that runs only the erasures; it
// is not made again while it exists nor once the policy has reported on
// the request; undecided and refused requests get none.
func TestGrantedErasureStartsAJob(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	policy := newPolicy(t, ns, "bewaartermijn", nil)
	now := time.Now()
	erasure := func(r *v1alpha1.DataSubjectRequest) { r.Spec.Type = v1alpha1.RequestErasure }
	granted := newRequest(t, ns, "wissen", now, erasure, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(now.Truncate(time.Second))}
	})
	open := newRequest(t, ns, "open", now, erasure)
	refused := newRequest(t, ns, "geweigerd", now, erasure, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionRefused, DecidedAt: metav1.NewTime(now.Truncate(time.Second)),
			RefusalGrounds: []v1alpha1.RefusalGround{v1alpha1.GroundPrivacyOfOthers}, Explanation: "the dossier holds a third party's data"}
	})
	// Granted, but to be carried out from a later day: no Job yet.
	dated := newRequest(t, ns, "later-wissen", now, erasure, func(r *v1alpha1.DataSubjectRequest) {
		r.Spec.Erasure = &v1alpha1.ErasureSpec{NotBefore: dsr.DateOf(now.AddDate(0, 1, 0)).String()}
		r.Spec.Decision = &v1alpha1.RequestDecision{Outcome: v1alpha1.DecisionGranted, DecidedAt: metav1.NewTime(now.Truncate(time.Second))}
	})
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		t.Fatal(err)
	}

	job := &batchv1.Job{}
	jobKey := client.ObjectKey{Namespace: ns, Name: resources.ErasureJobName(granted, policy)}
	eventually(t, 20*time.Second, func() error {
		if err := k8s.Get(ctx, jobKey, job); err != nil {
			return err
		}
		c := job.Spec.Template.Spec.Containers
		if len(c) != 1 || !slices.Contains(c[0].Args, resources.ErasuresOnlyFlag) || !slices.Contains(c[0].Args, "--policy="+policy.Name) {
			return fmt.Errorf("job containers %+v; want one retention-sweep --policy=%s %s", c, policy.Name, resources.ErasuresOnlyFlag)
		}
		if job.Spec.Template.Spec.ServiceAccountName != resources.SweeperName(policy) {
			return fmt.Errorf("job runs as %q, want the sweeper's ServiceAccount", job.Spec.Template.Spec.ServiceAccountName)
		}
		if o := metav1.GetControllerOf(job); o == nil || o.UID != granted.UID {
			return fmt.Errorf("job controller %+v; want the request", o)
		}
		return nil
	})
	uid := job.UID

	// Reconciling the request again leaves the Job as it is.
	touch := func(r *v1alpha1.DataSubjectRequest) {
		t.Helper()
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(r), r); err != nil {
				return err
			}
			if r.Annotations == nil {
				r.Annotations = map[string]string{}
			}
			r.Annotations["test/touch"] = time.Now().String()
			return k8s.Update(ctx, r)
		}); err != nil {
			t.Fatal(err)
		}
	}
	touch(granted)
	touch(open)
	touch(refused)
	touch(dated)
	time.Sleep(2 * time.Second)
	if err := k8s.Get(ctx, jobKey, job); err != nil || job.UID != uid {
		t.Errorf("job after another reconcile: %v, uid %s; want the same Job %s", err, job.UID, uid)
	}
	for _, r := range []*v1alpha1.DataSubjectRequest{open, refused, dated} {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.ErasureJobName(r, policy)}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
			t.Errorf("request %s: erasure Job lookup gave %v; want none (not granted, or not yet due)", r.Name, err)
		}
	}

	// The policy reports the erasure and the Job is gone (its TTL): no new one.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(granted), granted); err != nil {
			return err
		}
		granted.Status.Erasure = []v1alpha1.ErasureRun{{Policy: policy.Name, Time: metav1.NewTime(time.Now().Truncate(time.Second)), Result: v1alpha1.ErasureErased}}
		return k8s.Status().Update(ctx, granted)
	}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		if err := k8s.Get(ctx, jobKey, &batchv1.Job{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("job still there: %v", err)
		}
		return nil
	})
	touch(granted)
	time.Sleep(2 * time.Second)
	if err := k8s.Get(ctx, jobKey, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Job was made again after the policy reported Erased: %v", err)
	}
}
