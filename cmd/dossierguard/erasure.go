package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/dsr"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/retention"
)

// pendingErasures are the policy's store's granted Erasure requests that
// this policy has not erased yet: no status.erasure entry of the policy
// with the result Erased. A request being deleted is left alone; a
// PartiallyGranted erasure is not carried out by the sweeper (which part
// is a decision it cannot take) and is never listed; nor is one whose
// spec.erasure.notBefore day has not begun at now.
func pendingErasures(list []v1alpha1.DataSubjectRequest, policy *v1alpha1.RetentionPolicy, now time.Time) []*v1alpha1.DataSubjectRequest {
	var out []*v1alpha1.DataSubjectRequest
	for i := range list {
		r := &list[i]
		s := &r.Spec
		if s.Type != v1alpha1.RequestErasure || s.StoreRef.Name != policy.Spec.StoreRef.Name ||
			s.Decision == nil || s.Decision.Outcome != v1alpha1.DecisionGranted || !r.DeletionTimestamp.IsZero() ||
			!dsr.ErasureDue(r, now) {
			continue
		}
		done := false
		for _, run := range r.Status.Erasure {
			done = done || (run.Policy == policy.Name && run.Result == v1alpha1.ErasureErased)
		}
		if !done {
			out = append(out, r)
		}
	}
	return out
}

// weighed reports whether the request records the child's-interest
// weighing that lets an erasure go ahead within a statutory minimum.
func weighed(r *v1alpha1.DataSubjectRequest) bool {
	return r.Spec.Erasure != nil && r.Spec.Erasure.ChildInterestWeighing != nil
}

// runErasures carries out the pending erasures of the policy's store in
// the policy's tables, prints each proof as one JSON line and reports it in
// the request's status.erasure. A dry run (the policy's or --dry-run)
// erases nothing. Errors name the request, never the dossier.
func runErasures(ctx context.Context, c client.Client, policy *v1alpha1.RetentionPolicy, cfg retention.Config, db retention.DB, out io.Writer) error {
	if cfg.DryRun {
		return nil
	}
	list := &v1alpha1.DataSubjectRequestList{}
	if err := c.List(ctx, list, client.InNamespace(policy.Namespace)); err != nil {
		return fmt.Errorf("list the DataSubjectRequests of namespace %s: %w", policy.Namespace, err)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	pending := pendingErasures(list.Items, policy, now())
	if len(pending) == 0 {
		return nil
	}
	key, err := policyStoreKey(ctx, c, policy)
	if err != nil {
		return err
	}
	var errs []error
	for _, req := range pending {
		rep, err := retention.Erase(ctx, db, retention.Erasure{
			Rules: cfg.Rules, Key: key, Dossier: string(req.Spec.Dossier), Weighed: weighed(req), Now: cfg.Now, Timeout: cfg.BatchTimeout,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("erasure of DataSubjectRequest %s: %s", req.Name, rep.Message))
		}
		if werr := rep.WriteJSON(out); werr != nil {
			errs = append(errs, fmt.Errorf("write the proof of erasure of DataSubjectRequest %s: %w", req.Name, werr))
		}
		if perr := reportErasure(context.WithoutCancel(ctx), c, req, rep.Summary(policy.Name)); perr != nil {
			errs = append(errs, perr)
		}
	}
	return errors.Join(errs...)
}

// retentionDecisions reads, for a sweep of the policy, the dossiers that
// granted RetentionExtension requests of its store keep at the sweep's now.
// Any failure (the requests, the store's cap, the pseudonym key) is an
// error, and the sweep then destroys nothing. The store and its key are
// read only when the store has a decided extension request.
func retentionDecisions(c client.Client, policy *v1alpha1.RetentionPolicy) func(context.Context, time.Time) (retention.Kept, error) {
	return func(ctx context.Context, now time.Time) (retention.Kept, error) {
		list := &v1alpha1.DataSubjectRequestList{}
		if err := c.List(ctx, list, client.InNamespace(policy.Namespace)); err != nil {
			return retention.Kept{}, fmt.Errorf("list the DataSubjectRequests of namespace %s: %w", policy.Namespace, err)
		}
		if !dsr.HasExtensions(list.Items, policy.Spec.StoreRef.Name) {
			return retention.Kept{}, nil
		}
		store := &v1alpha1.DossierStore{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: policy.Namespace, Name: policy.Spec.StoreRef.Name}, store); err != nil {
			return retention.Kept{}, fmt.Errorf("read DossierStore %s for its retention extension cap: %w", policy.Spec.StoreRef.Name, err)
		}
		dossiers, n, err := dsr.KeptDossiers(list.Items, store.Name, dsr.MaxRetentionExtension(store), now)
		if err != nil || n == 0 {
			return retention.Kept{}, err
		}
		key, err := policyStoreKey(ctx, c, policy)
		if err != nil {
			return retention.Kept{}, err
		}
		return retention.Kept{Key: key, Dossiers: dossiers, Decisions: n}, nil
	}
}

// policyStoreKey reads the pseudonym key of the policy's store.
func policyStoreKey(ctx context.Context, c client.Client, policy *v1alpha1.RetentionPolicy) ([]byte, error) {
	store := &v1alpha1.DossierStore{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: policy.Namespace, Name: policy.Spec.StoreRef.Name}, store); err != nil {
		return nil, fmt.Errorf("read DossierStore %s for its pseudonym key: %w", policy.Spec.StoreRef.Name, err)
	}
	name, _ := resources.PseudonymKeyRef(store)
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: policy.Namespace, Name: name}, secret); err != nil {
		return nil, fmt.Errorf("read the pseudonym key Secret %s: %w", name, err)
	}
	return resources.ReadPseudonymKey(store, secret)
}

// reportErasure puts the run into the request's status.erasure, replacing
// the policy's earlier entry, with an optimistic lock so that another
// policy's sweeper reporting at the same time is not overwritten.
func reportErasure(ctx context.Context, c client.Client, req *v1alpha1.DataSubjectRequest, run v1alpha1.ErasureRun) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		before := req.DeepCopy()
		req.Status.Erasure = withErasureRun(req.Status.Erasure, run)
		err := c.Status().Patch(ctx, req, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(err) {
			if gerr := c.Get(ctx, client.ObjectKeyFromObject(req), req); gerr != nil {
				return gerr
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("report the erasure in DataSubjectRequest %s status: %w", req.Name, err)
	}
	return nil
}

// withErasureRun is runs with the entry of run's policy replaced by run (or
// run added), in policy order. An Erased entry is never replaced: a
// scheduled run and the operator's --erasures-only Job may both carry out
// the same erasure, and the second, finding nothing left, must not wipe the
// first one's proof.
func withErasureRun(runs []v1alpha1.ErasureRun, run v1alpha1.ErasureRun) []v1alpha1.ErasureRun {
	for _, r := range runs {
		if r.Policy == run.Policy && r.Result == v1alpha1.ErasureErased {
			return runs
		}
	}
	out := make([]v1alpha1.ErasureRun, 0, len(runs)+1)
	added := false
	for _, r := range runs {
		switch {
		case r.Policy == run.Policy:
			continue
		case !added && r.Policy > run.Policy:
			out = append(out, run)
			added = true
		}
		out = append(out, r)
	}
	if !added {
		out = append(out, run)
	}
	return out
}
