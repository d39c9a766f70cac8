package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// specOrMetadataChanged lets spec, label and annotation changes through and
// filters out status-only updates, such as the reconcilers' own writes.
var specOrMetadataChanged = predicate.Or(
	predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{})

// writeStatus patches the status subresource once, only when it changed.
func writeStatus(ctx context.Context, c client.Client, before, after client.Object, oldStatus, newStatus any) error {
	if equality.Semantic.DeepEqual(oldStatus, newStatus) {
		return nil
	}
	// An object deleted meanwhile has no status to write.
	if err := c.Status().Patch(ctx, after, client.MergeFrom(before)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
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
		setCondition(obj, conditions, v1alpha1.ConditionCompliant, false, ReasonControlFailed,
			fmt.Sprintf("%s (%s): %s", failed.Control, failed.Reference, failed.Message))
		return
	}
	setCondition(obj, conditions, v1alpha1.ConditionCompliant, true, ReasonAllControlsPass,
		fmt.Sprintf("all %d controls pass", len(controls)))
}
