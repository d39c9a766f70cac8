package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/internal/resources"
)

// applyChild writes desired with server-side apply (one field owner, forced
// ownership) unless the live object in the cache already has every field
// dossierguard owns, so that reconciling an unchanged resource makes no
// writes. live is an empty object of the child's type; it is filled from the
// cache. It reports whether a write was made.
func applyChild(ctx context.Context, c client.Client, desired applyConfiguration, live client.Object) (bool, error) {
	want, err := typedFrom(desired, live)
	if err != nil {
		return false, err
	}
	err = c.Get(ctx, client.ObjectKeyFromObject(want), live)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, err
	case upToDate(want, live):
		return false, nil
	}
	if err := c.Apply(ctx, desired, client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil {
		return false, err
	}
	return true, nil
}

// applyConfiguration is what server-side apply accepts.
type applyConfiguration = runtime.ApplyConfiguration

// typedFrom converts an apply configuration into a typed object of live's type.
func typedFrom(desired runtime.ApplyConfiguration, live client.Object) (client.Object, error) {
	data, err := json.Marshal(desired)
	if err != nil {
		return nil, fmt.Errorf("encode desired object: %w", err)
	}
	want := reflect.New(reflect.TypeOf(live).Elem()).Interface().(client.Object)
	if err := json.Unmarshal(data, want); err != nil {
		return nil, fmt.Errorf("decode desired object: %w", err)
	}
	return want, nil
}

// upToDate compares the fields dossierguard owns. Everything under a spec
// (or the data and rules) must be equal, so that an edit by someone else,
// such as an extra ingress rule, is reverted; labels, annotations and owner
// references need only be present.
func upToDate(want, live client.Object) bool {
	if !subset(want.GetLabels(), live.GetLabels()) || !subset(want.GetAnnotations(), live.GetAnnotations()) ||
		!hasOwners(want.GetOwnerReferences(), live.GetOwnerReferences()) {
		return false
	}
	switch w := want.(type) {
	case *networkingv1.NetworkPolicy:
		return equality.Semantic.DeepEqual(w.Spec, live.(*networkingv1.NetworkPolicy).Spec)
	case *corev1.Secret:
		l := live.(*corev1.Secret)
		return w.Type == l.Type && equality.Semantic.DeepEqual(w.Data, l.Data)
	case *rbacv1.Role:
		return equality.Semantic.DeepEqual(w.Rules, live.(*rbacv1.Role).Rules)
	case *rbacv1.RoleBinding:
		l := live.(*rbacv1.RoleBinding)
		return w.RoleRef == l.RoleRef && equality.Semantic.DeepEqual(w.Subjects, l.Subjects)
	case *corev1.PersistentVolumeClaim:
		l := live.(*corev1.PersistentVolumeClaim)
		return equality.Semantic.DeepEqual(w.Spec.StorageClassName, l.Spec.StorageClassName) &&
			w.Spec.Resources.Requests.Storage().Cmp(*l.Spec.Resources.Requests.Storage()) == 0
	case *corev1.ConfigMap:
		l := live.(*corev1.ConfigMap)
		return equality.Semantic.DeepEqual(w.Data, l.Data)
	case *corev1.ServiceAccount:
		l := live.(*corev1.ServiceAccount)
		return equality.Semantic.DeepEqual(w.AutomountServiceAccountToken, l.AutomountServiceAccountToken)
	case *batchv1.CronJob:
		return cronJobUpToDate(w, live.(*batchv1.CronJob))
	default:
		return false
	}
}

func subset(want, live map[string]string) bool {
	for k, v := range want {
		if got, ok := live[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func hasOwners(want, live []metav1.OwnerReference) bool {
	for _, w := range want {
		found := false
		for _, l := range live {
			if l.UID == w.UID && l.Kind == w.Kind && (l.Controller != nil) == (w.Controller != nil) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// cronJobUpToDate compares the CronJob fields dossierguard sets; the API
// server defaults others (such as the pod's DNS policy) that it leaves alone.
func cronJobUpToDate(want, live *batchv1.CronJob) bool {
	w, l := want.Spec, live.Spec
	if w.Schedule != l.Schedule || !equality.Semantic.DeepEqual(w.TimeZone, l.TimeZone) ||
		!equality.Semantic.DeepEqual(w.Suspend, l.Suspend) || w.ConcurrencyPolicy != l.ConcurrencyPolicy ||
		!equality.Semantic.DeepEqual(w.StartingDeadlineSeconds, l.StartingDeadlineSeconds) ||
		!equality.Semantic.DeepEqual(w.SuccessfulJobsHistoryLimit, l.SuccessfulJobsHistoryLimit) ||
		!equality.Semantic.DeepEqual(w.FailedJobsHistoryLimit, l.FailedJobsHistoryLimit) {
		return false
	}
	wj, lj := w.JobTemplate.Spec, l.JobTemplate.Spec
	if !equality.Semantic.DeepEqual(wj.BackoffLimit, lj.BackoffLimit) || !equality.Semantic.DeepEqual(wj.ActiveDeadlineSeconds, lj.ActiveDeadlineSeconds) {
		return false
	}
	wp, lp := wj.Template.Spec, lj.Template.Spec
	if wp.ServiceAccountName != lp.ServiceAccountName || len(wp.Containers) != len(lp.Containers) ||
		!equality.Semantic.DeepDerivative(wp.SecurityContext, lp.SecurityContext) {
		return false
	}
	for i := range wp.Containers {
		wc, lc := wp.Containers[i], lp.Containers[i]
		if wc.Image != lc.Image || !equality.Semantic.DeepEqual(wc.Args, lc.Args) || !equality.Semantic.DeepEqual(wc.Env, lc.Env) ||
			!equality.Semantic.DeepEqual(wc.SecurityContext, lc.SecurityContext) || !equality.Semantic.DeepEqual(wc.Resources, lc.Resources) {
			return false
		}
	}
	return true
}
