package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/internal/resources"
)

// applyChild writes desired with server-side apply (one field owner, forced
// ownership) unless the live object in the cache already holds exactly the
// desired configuration under dossierguard's field owner, so that
// reconciling an unchanged resource makes no writes. The comparison is
// generic: the managed fields of the field owner say what dossierguard last
// applied (and still owns), so any difference from what the builders want
// now, whichever field it is, is applied and the API server merges it. A
// field someone else has taken over is no longer in the extract, so it is
// applied again and ownership forced back. live is an empty object of the
// child's type; it is filled from the cache. It reports whether a write was
// made. A comparison that found the child as desired is remembered
// (knownApplied), so that the next reconcile of an unchanged store does not
// compare again. The kinds comparedByHash are told in step from their
// metadata instead (applyHashed), and cached without their content.
func applyChild(ctx context.Context, c client.Client, desired applyConfiguration, live client.Object) (bool, error) {
	if comparedByHash(live) {
		return applyHashed(ctx, c, desired, live)
	}
	data, err := json.Marshal(desired)
	if err != nil {
		return false, fmt.Errorf("encode desired object: %w", err)
	}
	want, err := decodeAs(data, live)
	if err != nil {
		return false, err
	}
	err = c.Get(ctx, client.ObjectKeyFromObject(want), live)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, err
	default:
		if knownApplied.holds(live, data) {
			return false, nil
		}
		same, err := appliedAlready(want, live)
		if err != nil {
			return false, err
		}
		if same {
			knownApplied.remember(live, data)
			return false, nil
		}
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
	return decodeAs(data, live)
}

// decodeAs decodes an encoded apply configuration into a new typed object of
// live's type.
func decodeAs(data []byte, live client.Object) (client.Object, error) {
	want := reflect.New(reflect.TypeOf(live).Elem()).Interface().(client.Object)
	if err := json.Unmarshal(data, want); err != nil {
		return nil, fmt.Errorf("decode desired object: %w", err)
	}
	return want, nil
}

// appliedAlready reports whether the fields dossierguard owns in live, as its
// managed fields record them, are exactly want. Both sides go through the
// typed object so that equal quantities written differently compare equal.
func appliedAlready(want, live client.Object) (bool, error) {
	owned, err := extractOwned(live)
	if err != nil {
		return false, fmt.Errorf("read the fields %s owns: %w", resources.FieldOwner, err)
	}
	got, err := typedFrom(owned, live)
	if err != nil {
		return false, err
	}
	return equality.Semantic.DeepEqual(want, got), nil
}

// extractOwned is the apply configuration of the fields dossierguard's field
// owner holds in live, for every kind of child dossierguard applies.
func extractOwned(live client.Object) (runtime.ApplyConfiguration, error) {
	owner := resources.FieldOwner
	switch l := live.(type) {
	case *corev1.Secret:
		return corev1ac.ExtractSecret(l, owner)
	case *corev1.ConfigMap:
		return corev1ac.ExtractConfigMap(l, owner)
	case *corev1.PersistentVolumeClaim:
		return corev1ac.ExtractPersistentVolumeClaim(l, owner)
	case *corev1.Service:
		return corev1ac.ExtractService(l, owner)
	case *appsv1.Deployment:
		return appsv1ac.ExtractDeployment(l, owner)
	case *rbacv1.ClusterRoleBinding:
		return rbacv1ac.ExtractClusterRoleBinding(l, owner)
	case *policyv1.PodDisruptionBudget:
		return policyv1ac.ExtractPodDisruptionBudget(l, owner)
	default:
		return nil, fmt.Errorf("no field extraction for %T", live)
	}
}
