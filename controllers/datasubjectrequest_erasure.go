package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// +kubebuilder:rbac:groups=privacy.dossierguard.io,resources=retentionpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch

// erasurePolicies are the store's RetentionPolicies for which a granted
// Erasure request still needs a run: the request is Granted, not being
// deleted, and the policy has not reported on it yet. A policy that has
// reported (Erased, or Held, WeighingRequired or Failed, which the
// scheduled runs retry) needs no Job of its own. An erasure whose
// spec.erasure.notBefore day has not begun at now needs none yet.
func erasurePolicies(r *v1alpha1.DataSubjectRequest, policies []v1alpha1.RetentionPolicy, now time.Time) []*v1alpha1.RetentionPolicy {
	s := &r.Spec
	if s.Type != v1alpha1.RequestErasure || s.Decision == nil || s.Decision.Outcome != v1alpha1.DecisionGranted || !r.DeletionTimestamp.IsZero() ||
		!dsr.ErasureDue(r, now) {
		return nil
	}
	var out []*v1alpha1.RetentionPolicy
	for i := range policies {
		p := &policies[i]
		if p.Spec.StoreRef.Name != s.StoreRef.Name || !p.DeletionTimestamp.IsZero() {
			continue
		}
		reported := false
		for _, run := range r.Status.Erasure {
			reported = reported || run.Policy == p.Name
		}
		if !reported {
			out = append(out, p)
		}
	}
	return out
}

// startErasures creates, for every policy of the store that has not yet
// reported on a granted erasure, a Job from the policy's sweeper CronJob
// that carries out only the erasures, so that the erasure does not wait
// for the next scheduled run; a dated erasure (spec.erasure.notBefore) from
// the start of its day, when the reconcile is requeued. The Job is applied once: while it exists
// (running, finished or failed) it is left alone, and after the policy
// has reported none is made again. A policy whose sweeper CronJob is not
// there yet is picked up when the CronJob appears (it is watched).
func (r *DataSubjectRequestReconciler) startErasures(ctx context.Context, request *v1alpha1.DataSubjectRequest, now time.Time) error {
	if request.Spec.Type != v1alpha1.RequestErasure {
		return nil
	}
	list := &v1alpha1.RetentionPolicyList{}
	if err := r.List(ctx, list, client.InNamespace(request.Namespace)); err != nil {
		return fmt.Errorf("list the RetentionPolicies of store %s: %w", request.Spec.StoreRef.Name, err)
	}
	for _, policy := range erasurePolicies(request, list.Items, now) {
		existing := &batchv1.Job{}
		err := r.Get(ctx, client.ObjectKey{Namespace: request.Namespace, Name: resources.ErasureJobName(request, policy)}, existing)
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("read the erasure Job of RetentionPolicy %s: %w", policy.Name, err)
		}
		cron := &batchv1.CronJob{}
		if err := r.cronJobReader().Get(ctx, client.ObjectKey{Namespace: policy.Namespace, Name: resources.SweeperName(policy)}, cron); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("read the sweeper CronJob of RetentionPolicy %s: %w", policy.Name, err)
		}
		job, err := resources.ErasureJob(request, policy, cron)
		if err != nil {
			return err
		}
		if _, err := applyChild(ctx, r.Client, job, &batchv1.Job{}); err != nil {
			return fmt.Errorf("apply the erasure Job of RetentionPolicy %s: %w", policy.Name, err)
		}
	}
	return nil
}

// cronJobReader reads the sweeper CronJobs whole (Reader).
func (r *DataSubjectRequestReconciler) cronJobReader() client.Reader {
	if r.Reader != nil {
		return r.Reader
	}
	return r.Client
}

// cronJobToRequests maps a sweeper CronJob to the requests of its store,
// so that a granted erasure whose policy's CronJob appears later starts.
func cronJobToRequests(c client.Client) func(context.Context, client.Object) []reconcile.Request {
	refs := referrers(c, &v1alpha1.DataSubjectRequestList{})
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		name := o.GetLabels()[v1alpha1.LabelStore]
		if name == "" || o.GetLabels()[v1alpha1.LabelRetentionPolicy] == "" {
			return nil
		}
		store := &v1alpha1.DossierStore{}
		store.Namespace, store.Name = o.GetNamespace(), name
		return refs(ctx, store)
	}
}
