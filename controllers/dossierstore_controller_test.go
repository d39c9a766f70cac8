package controllers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/resources"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

const timeout = 15 * time.Second

func key(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

func TestEncryptedClassGivesReadyCompliantStore(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := encryptedClass(t)
	store := newStore(t, ns, sc.Name)
	newRole(t, ns, "coach")

	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonStoreReady))
	// Compliance needs more than the store itself: retention must be proven.
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionCompliant, metav1.ConditionFalse, v1alpha1.ReasonControlFailed))
	store = getStore(t, store)
	if c := findControl(store.Status.Compliance, "RetentionEnforced"); c == nil || c.Reason != "NoRetentionPolicy" {
		t.Errorf("RetentionEnforced control %+v; want NoRetentionPolicy", c)
	}
	if store.Status.Encryption != "Verified" || store.Status.KeyVersion != 1 || store.Status.ClaimName != "dossiers-dossiers" {
		t.Errorf("status = encryption %q, key %d, claim %q; want Verified, 1, dossiers-dossiers",
			store.Status.Encryption, store.Status.KeyVersion, store.Status.ClaimName)
	}
	for _, c := range []string{v1alpha1.ConditionEncryptionVerified, v1alpha1.ConditionVolumeProvisioned, v1alpha1.ConditionKeyRotated, v1alpha1.ConditionNetworkIsolated} {
		if err := storeCondition(store, c, metav1.ConditionTrue, "")(); err != nil {
			t.Error(err)
		}
	}
	encryption := findControl(store.Status.Compliance, "EncryptionAtRest")
	if encryption == nil || encryption.Result != v1alpha1.ResultPass || encryption.Reference != "AVG art. 32(1)(a); BIO 8.24" ||
		!strings.Contains(strings.Join(encryption.Evidence, " "), "kmsKeyId=arn:aws:kms") {
		t.Errorf("EncryptionAtRest control = %+v; want Pass with the key reference as evidence", encryption)
	}

	claim := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(ctx, key(ns, "dossiers-dossiers"), claim); err != nil {
		t.Fatalf("claim: %v", err)
	}
	if *claim.Spec.StorageClassName != sc.Name || claim.Spec.Resources.Requests.Storage().String() != "10Gi" || !ownedBy(claim, store) {
		t.Errorf("claim = class %s size %s owners %v", *claim.Spec.StorageClassName, claim.Spec.Resources.Requests.Storage(), claim.OwnerReferences)
	}

	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "dossiers-datakey"), secret); err != nil {
		t.Fatalf("data key: %v", err)
	}
	if len(secret.Data["key-1"]) != 32 || !ownedBy(secret, store) || secret.Labels[resources.LabelManagedBy] != "dossierguard" {
		t.Errorf("data key Secret: %d key bytes, owners %v, labels %v", len(secret.Data["key-1"]), secret.OwnerReferences, secret.Labels)
	}
	// Key material never appears in status.
	statusJSON, _ := json.Marshal(store.Status)
	for _, k := range secret.Data {
		if strings.Contains(string(statusJSON), base64.StdEncoding.EncodeToString(k)) || strings.Contains(string(statusJSON), fmt.Sprintf("%x", k)) {
			t.Error("status contains key material")
		}
	}

	role := &rbacv1.Role{}
	if err := k8s.Get(ctx, key(ns, "dossiers-workload"), role); err != nil {
		t.Fatalf("role: %v", err)
	}
	if len(role.Rules) != 2 || strings.Join(role.Rules[0].ResourceNames, ",") != "dossiers-datakey" || strings.Join(role.Rules[0].Verbs, ",") != "get" ||
		strings.Join(role.Rules[1].Resources, ",") != "datasubjectrequests" || strings.Join(role.Rules[1].Verbs, ",") != "get,list,watch" {
		t.Errorf("workload rules = %+v; want get on exactly the data-key Secret, and get, list, watch on the requests", role.Rules)
	}
	binding := &rbacv1.RoleBinding{}
	if err := k8s.Get(ctx, key(ns, "dossiers-workload"), binding); err != nil {
		t.Fatalf("binding: %v", err)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != "dossier-app" {
		t.Errorf("binding subjects = %+v; want only ServiceAccount dossier-app", binding.Subjects)
	}

	policy := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, key(ns, "dossiers-isolation"), policy); err != nil {
		t.Fatalf("network policy: %v", err)
	}
	if len(policy.Spec.PolicyTypes) != 2 || len(policy.Spec.Ingress) != 1 || policy.Spec.Ingress[0].Ports[0].Port.IntVal != 8443 {
		t.Errorf("isolation policy = %+v; want ingress and egress, ingress only to 8443", policy.Spec)
	}
}

func TestUnverifiedClassWithholdsClaimAndAttestationFlipsIt(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := plainClass(t)
	store := newStore(t, ns, sc.Name)

	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionEncryptionVerified, metav1.ConditionFalse, "NoEncryptionEvidence"))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonEncryptionUnverified))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionVolumeProvisioned, metav1.ConditionFalse, v1alpha1.ReasonClaimWithheld))
	store = getStore(t, store)
	if msg := findCondition(store, v1alpha1.ConditionEncryptionVerified).Message; !strings.Contains(msg, sc.Name) {
		t.Errorf("EncryptionVerified message %q does not name the class", msg)
	}
	if store.Status.Encryption != "Unverified" || store.Status.ClaimName != "" {
		t.Errorf("status encryption %q claim %q; want Unverified and no claim", store.Status.Encryption, store.Status.ClaimName)
	}
	assertNoClaim(t, ns)

	// The platform team attests encryption: the store becomes Ready without being touched.
	generation := store.Generation
	setAnnotation(t, sc, "true")
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionEncryptionVerified, metav1.ConditionTrue, "AttestedByPlatformTeam"))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonStoreReady))
	if getStore(t, store).Generation != generation {
		t.Error("the store's spec changed; only the StorageClass should have")
	}
	if err := k8s.Get(ctx, key(ns, "dossiers-dossiers"), &corev1.PersistentVolumeClaim{}); err != nil {
		t.Errorf("no claim after attestation: %v", err)
	}
	if got := getStore(t, store).Status.Encryption; got != "Attested" {
		t.Errorf("encryption = %q; want Attested", got)
	}

	// Withdrawing the attestation flips the status back; the existing volume is kept.
	setAnnotation(t, sc, "")
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionEncryptionVerified, metav1.ConditionFalse, "NoEncryptionEvidence"))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonEncryptionUnverified))
	if err := k8s.Get(ctx, key(ns, "dossiers-dossiers"), &corev1.PersistentVolumeClaim{}); err != nil {
		t.Errorf("existing claim removed when encryption became unverified: %v", err)
	}
}

func TestMissingStorageClass(t *testing.T) {
	ns := newNamespace(t)
	store := newStore(t, ns, "does-not-exist")
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionEncryptionVerified, metav1.ConditionFalse, "StorageClassNotFound"))
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionCompliant, metav1.ConditionFalse, v1alpha1.ReasonControlFailed))
	assertNoClaim(t, ns)
}

func TestKeyRotationAddsVersionAndKeepsOld(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := encryptedClass(t)
	store := newStore(t, ns, sc.Name, func(s *v1alpha1.DossierStore) { s.Spec.Encryption.KeyRotationPeriod = "24h" })
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	first := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "dossiers-datakey"), first); err != nil {
		t.Fatal(err)
	}
	store = getStore(t, store)
	if d := store.Status.NextKeyRotation.Sub(fakeClock.Now()); d < 23*time.Hour || d > 24*time.Hour {
		t.Errorf("next rotation %s is %s away; want about 24h", store.Status.NextKeyRotation.Time, d)
	}

	fakeClock.Step(25 * time.Hour)
	t.Cleanup(func() { fakeClock.Step(-25 * time.Hour) }) // other tests run on real time
	touch(t, store)
	eventually(t, timeout, func() error {
		if s := getStore(t, store); s.Status.KeyVersion != 2 {
			return fmt.Errorf("key version %d; want 2", s.Status.KeyVersion)
		}
		return nil
	})
	rotated := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "dossiers-datakey"), rotated); err != nil {
		t.Fatal(err)
	}
	if string(rotated.Data["key-1"]) != string(first.Data["key-1"]) {
		t.Error("version 1 changed; older keys must stay for decryption")
	}
	if len(rotated.Data["key-2"]) != 32 || string(rotated.Data["key-2"]) == string(first.Data["key-1"]) {
		t.Error("version 2 is not a fresh 32-byte key")
	}
	if rotated.Annotations[resources.AnnotationCurrentVersion] != "2" {
		t.Errorf("current version annotation %q; want 2", rotated.Annotations[resources.AnnotationCurrentVersion])
	}
	if d := getStore(t, store).Status.NextKeyRotation.Sub(fakeClock.Now()); d < 23*time.Hour || d > 24*time.Hour {
		t.Errorf("next rotation not moved a period ahead: %s away", d)
	}
}

func TestDeletingStoreRetainsClaimByDefault(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := encryptedClass(t)
	store := newStore(t, ns, sc.Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	store = getStore(t, store)
	if err := k8s.Delete(ctx, store); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(store), &v1alpha1.DossierStore{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("store still there: %v", err)
	})
	claim := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(ctx, key(ns, "dossiers-dossiers"), claim); err != nil {
		t.Fatalf("claim gone after deleting the store: %v", err)
	}
	// Without an owner reference garbage collection keeps the claim.
	if ownedBy(claim, store) || claim.Annotations[v1alpha1.AnnotationRetained] != "dossiers" {
		t.Errorf("claim owners %v annotations %v; want released and marked as retained", claim.OwnerReferences, claim.Annotations)
	}
}

func TestDeletionPolicyDeleteLeavesClaimToGarbageCollection(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := encryptedClass(t)
	store := newStore(t, ns, sc.Name, func(s *v1alpha1.DossierStore) { s.Spec.Storage.DeletionPolicy = v1alpha1.DeletionDelete })
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	store = getStore(t, store)
	if err := k8s.Delete(ctx, store); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(store), &v1alpha1.DossierStore{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("store still there: %v", err)
		}
		return nil
	})
	// envtest runs no garbage collector; the owner reference is what makes
	// a real cluster delete the claim.
	claim := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(ctx, key(ns, "dossiers-dossiers"), claim); err != nil {
		t.Fatal(err)
	}
	if !ownedBy(claim, store) {
		t.Errorf("claim owners %v; want the store, for garbage collection", claim.OwnerReferences)
	}
}

func TestUnchangedStoreMakesNoWrites(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := encryptedClass(t)
	store := newStore(t, ns, sc.Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	time.Sleep(time.Second) // let the manager settle
	versions := resourceVersions(t, ns)

	writes := &atomic.Int64{}
	r := &controllers.DossierStoreReconciler{Client: countingClient{Client: mgrClient, n: writes}, Reader: k8s, Recorder: noEvents{}, Clock: fakeClock,
		AuditProxy: webhook.Config{Image: controllers.DefaultSweeperImage, NativeSidecar: true}, Certs: testCerts, TrustNamespace: operatorNamespace,
		Isolation: testIsolation}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(store)}); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d writes reconciling an unchanged store; want 0", n)
	}
	if after := resourceVersions(t, ns); fmt.Sprint(after) != fmt.Sprint(versions) {
		t.Errorf("resource versions changed:\nbefore %v\nafter  %v", versions, after)
	}
}

func TestEditedNetworkPolicyIsRestored(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	sc := encryptedClass(t)
	store := newStore(t, ns, sc.Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	policy := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, key(ns, "dossiers-isolation"), policy); err != nil {
		t.Fatal(err)
	}
	// Someone opens the app port to everyone.
	policy.Spec.Ingress = append(policy.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{})
	if err := k8s.Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, func() error {
		if err := k8s.Get(ctx, key(ns, "dossiers-isolation"), policy); err != nil {
			return err
		}
		if len(policy.Spec.Ingress) != 1 {
			return fmt.Errorf("%d ingress rules; want the one to the proxy port", len(policy.Spec.Ingress))
		}
		return nil
	})
}

func resourceVersions(t *testing.T, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for name, obj := range map[string]client.Object{
		"store":  &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "dossiers"}},
		"claim":  &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-dossiers"}},
		"key":    &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-datakey"}},
		"role":   &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-workload"}},
		"bind":   &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-workload"}},
		"policy": &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-isolation"}},
		"access": &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dossiers-access-policy"}},
	} {
		if err := k8s.Get(ctx, key(ns, obj.GetName()), obj); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = obj.GetResourceVersion()
	}
	return out
}

func assertNoClaim(t *testing.T, ns string) {
	t.Helper()
	claims := &corev1.PersistentVolumeClaimList{}
	if err := k8s.List(context.Background(), claims, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(claims.Items) != 0 {
		t.Errorf("%d claims on an unverified class; want none", len(claims.Items))
	}
}

func setAnnotation(t *testing.T, sc *storagev1.StorageClass, value string) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(sc), sc); err != nil {
		t.Fatal(err)
	}
	if sc.Annotations == nil {
		sc.Annotations = map[string]string{}
	}
	if value == "" {
		delete(sc.Annotations, "privacy.dossierguard.io/encrypted-at-rest")
	} else {
		sc.Annotations["privacy.dossierguard.io/encrypted-at-rest"] = value
	}
	if err := k8s.Update(ctx, sc); err != nil {
		t.Fatal(err)
	}
}

// touch changes an annotation so that the store is reconciled again.
func touch(t *testing.T, s *v1alpha1.DossierStore) {
	t.Helper()
	updateRetrying(t, s, func(s *v1alpha1.DossierStore) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations["test/touched"] = time.Now().String()
	})
}

func ownedBy(obj client.Object, owner client.Object) bool {
	for _, o := range obj.GetOwnerReferences() {
		if o.UID == owner.GetUID() && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

func findControl(controls []v1alpha1.ComplianceControl, name string) *v1alpha1.ComplianceControl {
	for i := range controls {
		if controls[i].Control == name {
			return &controls[i]
		}
	}
	return nil
}

func findCondition(s *v1alpha1.DossierStore, t string) metav1.Condition {
	for _, c := range s.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return metav1.Condition{}
}

// TestStoreHasItsFinalizerFromAdmission: the API server sets the store's
// finalizer when it is created (config/admission, which the suite
// installs as an installation has it), beside the finalizers the store came
// with, so the operator has no update to make for it; a store that lost it
// gets it back from the operator.
func TestStoreHasItsFinalizerFromAdmission(t *testing.T) {
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name, func(s *v1alpha1.DossierStore) {
		s.Finalizers = []string{"example.com/keep"}
	})
	// The object Create returns is what admission made of it, before any
	// reconcile.
	if !slices.Contains(store.Finalizers, v1alpha1.StoreFinalizer) || !slices.Contains(store.Finalizers, "example.com/keep") {
		t.Fatalf("finalizers at creation %v; want %s beside example.com/keep", store.Finalizers, v1alpha1.StoreFinalizer)
	}
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	updateRetrying(t, store, func(s *v1alpha1.DossierStore) {
		s.Finalizers = []string{"example.com/keep"}
	})
	eventually(t, timeout, func() error {
		if got := getStore(t, store); !slices.Contains(got.Finalizers, v1alpha1.StoreFinalizer) {
			return fmt.Errorf("finalizers %v; want %s back", got.Finalizers, v1alpha1.StoreFinalizer)
		}
		return nil
	})
	updateRetrying(t, store, func(s *v1alpha1.DossierStore) {
		s.Finalizers = slices.DeleteFunc(s.Finalizers, func(f string) bool { return f == "example.com/keep" })
	})
}
