package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// specOrMetadataChanged lets spec, label and annotation changes through and
// filters out status-only updates, such as the reconcilers' own writes.
var specOrMetadataChanged = predicate.Or(
	predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{})

// errStaleRead marks a status write refused because the object changed
// after it was read from the cache; the reconcile is simply repeated.
var errStaleRead = errors.New("the object changed since it was read")

// staleRetry is how soon a reconcile that read a stale object runs again.
const staleRetry = 200 * time.Millisecond

// writeStatus writes the status subresource once, only when it changed,
// with optimistic locking: a status computed from a stale read is refused
// (errStaleRead) instead of moving lastTransitionTime or repeating an event.
// It reports whether the status was written. The status is the
// reconciler's alone and the write is conditional on the resourceVersion
// read, so it is an update of the object as read, not a merge patch: the
// API server takes an update for half the CPU of a patch, which it must
// first apply to the stored object encoded as JSON and decode again
// (docs/benchmarks.md). The object is read without its managed fields
// (CacheOptions), which the update leaves as they are on the server.
func writeStatus(ctx context.Context, c client.Client, obj client.Object, oldStatus, newStatus any) (bool, error) {
	if equality.Semantic.DeepEqual(oldStatus, newStatus) {
		return false, nil
	}
	err := c.Status().Update(ctx, obj)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err): // deleted meanwhile: no status to write
		return false, nil
	case apierrors.IsConflict(err):
		return false, errStaleRead
	default:
		return false, fmt.Errorf("write status: %w", err)
	}
}

// finish turns a reconcile's outcome into its result: a stale read is
// retried shortly without counting as an error.
func finish(requeueAfter time.Duration, statusErr error, errs ...error) (ctrl.Result, error) {
	if errors.Is(statusErr, errStaleRead) {
		return ctrl.Result{RequeueAfter: staleRetry}, errors.Join(errs...)
	}
	return ctrl.Result{RequeueAfter: requeueAfter}, errors.Join(append(errs, statusErr)...)
}

func setCondition(obj metav1.Object, conditions *[]metav1.Condition, t string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: message, ObservedGeneration: obj.GetGeneration(),
	})
}

// setCompliantCondition summarises the compliance rows of any kind.
func setCompliantCondition(obj metav1.Object, conditions *[]metav1.Condition, controls []v1alpha1.ComplianceControl) {
	if failed := compliance.FirstFailure(controls); failed != nil {
		setCondition(obj, conditions, v1alpha1.ConditionCompliant, false, v1alpha1.ReasonControlFailed,
			fmt.Sprintf("%s (%s): %s", failed.Control, failed.Reference, failed.Message))
		return
	}
	setCondition(obj, conditions, v1alpha1.ConditionCompliant, true, v1alpha1.ReasonAllControlsPass,
		fmt.Sprintf("all %d controls pass", len(controls)))
}
