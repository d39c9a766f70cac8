package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// comparedByHash says whether children of live's kind are told in step by
// applyHashed, from their metadata alone, and so are cached without the
// content dossierguard writes into them (trimmedChild). These are the
// kinds whose content nothing but applyChild reads: Roles, RoleBindings,
// ServiceAccounts, NetworkPolicies (of which the egress summary reads only
// the policy types, which the cache keeps) and the sweepers' CronJobs (an
// erasure Job is made from the CronJob as read from the API server).
func comparedByHash(live client.Object) bool {
	switch live.(type) {
	case *rbacv1.Role, *rbacv1.RoleBinding, *corev1.ServiceAccount, *networkingv1.NetworkPolicy, *batchv1.CronJob:
		return true
	default:
		return false
	}
}

// hashedChild is a child's desired configuration as applyHashed applies
// it: encoded, with the SHA-256 of that encoding, which the object applied
// carries as its annotation.
type hashedChild struct {
	data []byte
	hash string
	key  client.ObjectKey
}

// namedConfiguration is an apply configuration that says whose it is, as
// every built-in kind's does.
type namedConfiguration interface {
	GetName() *string
	GetNamespace() *string
}

// hashedChildOf encodes desired and hashes the encoding. The encoding of
// an apply configuration is deterministic (its fields in declaration
// order, map keys sorted), so the same configuration has the same hash in
// every reconcile and every manager.
func hashedChildOf(desired applyConfiguration) (hashedChild, error) {
	data, err := json.Marshal(desired)
	if err != nil {
		return hashedChild{}, fmt.Errorf("encode desired object: %w", err)
	}
	sum := sha256.Sum256(data)
	child := hashedChild{data: data, hash: hex.EncodeToString(sum[:])}
	named, ok := desired.(namedConfiguration)
	if !ok || named.GetName() == nil {
		obj, err := child.object()
		if err != nil {
			return hashedChild{}, err
		}
		child.key = client.ObjectKeyFromObject(obj)
		return child, nil
	}
	child.key.Name = *named.GetName()
	if ns := named.GetNamespace(); ns != nil {
		child.key.Namespace = *ns
	}
	return child, nil
}

// object is the configuration to apply: the desired one, annotated with
// its hash.
func (h hashedChild) object() (*unstructured.Unstructured, error) {
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(h.data); err != nil {
		return nil, fmt.Errorf("decode desired object: %w", err)
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[v1alpha1.AnnotationAppliedHash] = h.hash
	obj.SetAnnotations(annotations)
	return obj, nil
}

// applyHashed is applyChild for the kinds comparedByHash. The live child
// is in step when it carries the hash of the configuration wanted now and
// dossierguard's applied fields, as its managed fields record them, are
// exactly the fields of that configuration: a field someone else changed
// since is theirs (the API server moves it to their entry), and one they
// removed is no longer in dossierguard's; either way the child is applied
// again, which takes the field back, as applyChild does for every kind.
func applyHashed(ctx context.Context, c client.Client, desired applyConfiguration, live client.Object) (bool, error) {
	want, err := hashedChildOf(desired)
	if err != nil {
		return false, err
	}
	key := []byte("hashed\x00" + want.hash)
	err = c.Get(ctx, want.key, live)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, err
	case live.GetAnnotations()[v1alpha1.AnnotationAppliedHash] != want.hash:
	case knownApplied.holds(live, key):
		return false, nil
	default:
		obj, err := want.object()
		if err != nil {
			return false, err
		}
		same, err := ownsExactly(live.GetManagedFields(), obj)
		if err != nil {
			return false, err
		}
		if same {
			knownApplied.remember(live, key)
			return false, nil
		}
	}
	obj, err := want.object()
	if err != nil {
		return false, err
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil {
		return false, err
	}
	// The API server's answer is decoded into obj: the child as it is now
	// holds exactly this configuration, so the reconcile its own watch
	// event brings finds it in step without comparing again.
	if obj.GetResourceVersion() != "" {
		live.SetNamespace(obj.GetNamespace())
		live.SetName(obj.GetName())
		live.SetUID(obj.GetUID())
		live.SetResourceVersion(obj.GetResourceVersion())
		knownApplied.remember(live, key)
	}
	return true, nil
}

// ownsExactly says whether dossierguard's applied managed-fields entry
// holds exactly the fields of applied: those the API server recorded when
// it applied that configuration.
func ownsExactly(entries []metav1.ManagedFieldsEntry, applied *unstructured.Unstructured) (bool, error) {
	var owned *fieldpath.Set
	for _, e := range entries {
		if e.Manager == resources.FieldOwner && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" && e.FieldsV1 != nil {
			owned = &fieldpath.Set{}
			if err := owned.FromJSON(bytes.NewReader(e.FieldsV1.GetRawBytes())); err != nil {
				return false, nil // unreadable: applied again, which writes it anew
			}
		}
	}
	if owned == nil {
		return false, nil
	}
	wanted, err := fieldsOf(applied)
	if err != nil {
		return false, fmt.Errorf("read the fields %s applies: %w", resources.FieldOwner, err)
	}
	return wanted.Equals(owned), nil
}

// fieldsOf is the set of fields the API server records for an apply of
// obj: the fields of the configuration, as the types' schemas say, but
// those of the object's identity that the server never records as owned.
func fieldsOf(obj *unstructured.Unstructured) (*fieldpath.Set, error) {
	typed, err := childTypes().ObjectToTyped(obj)
	if err != nil {
		return nil, err
	}
	set, err := typed.ToFieldSet()
	if err != nil {
		return nil, err
	}
	return set.Difference(unownedFields), nil
}

// childTypes converts the children's kinds to the structured values whose
// field sets the API server records, from the same schemas.
var childTypes = sync.OnceValue(func() managedfields.TypeConverter {
	return applyconfigurations.NewTypeConverter(clientgoscheme.Scheme)
})

// unownedFields are the fields no manager's entry holds, as the API
// server's field manager strips them (the type and the identity).
var unownedFields = fieldpath.NewSet(
	fieldpath.MakePathOrDie("apiVersion"),
	fieldpath.MakePathOrDie("kind"),
	fieldpath.MakePathOrDie("metadata"),
	fieldpath.MakePathOrDie("metadata", "name"),
	fieldpath.MakePathOrDie("metadata", "namespace"),
	fieldpath.MakePathOrDie("metadata", "creationTimestamp"),
	fieldpath.MakePathOrDie("metadata", "selfLink"),
	fieldpath.MakePathOrDie("metadata", "uid"),
	fieldpath.MakePathOrDie("metadata", "clusterName"),
	fieldpath.MakePathOrDie("metadata", "generation"),
	fieldpath.MakePathOrDie("metadata", "managedFields"),
	fieldpath.MakePathOrDie("metadata", "resourceVersion"),
)

// trimmedChild drops, on a child's way into the cache, the content that
// applyHashed tells in step from the metadata, for the kinds
// comparedByHash: a Role's rules, a RoleBinding's subjects and role, a
// ServiceAccount's secrets, a NetworkPolicy's selector and rules (not its
// policy types), a CronJob's job template (not its schedule or status).
// It keeps dossierguard's managed fields only (ownManagedFieldsOnly).
// Such an object is never written back (applyHashed applies the wanted
// configuration), so nothing is lost. Anything else passes unchanged.
func trimmedChild(in any) (any, error) {
	switch o := in.(type) {
	case *rbacv1.Role:
		o.Rules = nil
	case *rbacv1.RoleBinding:
		o.Subjects, o.RoleRef = nil, rbacv1.RoleRef{}
	case *corev1.ServiceAccount:
		o.Secrets, o.ImagePullSecrets = nil, nil
	case *networkingv1.NetworkPolicy:
		o.Spec = networkingv1.NetworkPolicySpec{PolicyTypes: o.Spec.PolicyTypes}
	case *batchv1.CronJob:
		o.Spec.JobTemplate = batchv1.JobTemplateSpec{}
	}
	return ownManagedFieldsOnly(in)
}
