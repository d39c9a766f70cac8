package resources

import (
	"crypto/rand"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"k8s.io/utils/ptr"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// Data-key layout in the store's Secret: data "key-<n>" holds version n (32
// random bytes); annotations record the current version and when each
// version was created. Older versions stay for decryption.
const (
	KeySize                  = 32
	AnnotationCurrentVersion = "privacy.dossierguard.io/current-key-version"
	annotationCreatedPrefix  = "privacy.dossierguard.io/key-created-"
	keyDataPrefix            = "key-"
)

// KeyVersion is one data key.
type KeyVersion struct {
	Version int32
	Key     []byte
	Created time.Time
}

// KeyRing is the set of data-key versions of a store; the highest is current.
type KeyRing struct {
	Versions []KeyVersion // ascending by version
}

// Current is the newest version, or nil for an empty ring.
func (k KeyRing) Current() *KeyVersion {
	if len(k.Versions) == 0 {
		return nil
	}
	return &k.Versions[len(k.Versions)-1]
}

// NextRotation is when the current key expires.
func (k KeyRing) NextRotation(period time.Duration) time.Time {
	if c := k.Current(); c != nil {
		return c.Created.Add(period)
	}
	return time.Time{}
}

// NeedsRotation says whether a new version is due at now (or the ring is empty).
func (k KeyRing) NeedsRotation(now time.Time, period time.Duration) bool {
	return k.Current() == nil || !now.Before(k.NextRotation(period))
}

// Rotate returns the ring with a new random version created at now.
func (k KeyRing) Rotate(now time.Time, random io.Reader) (KeyRing, error) {
	if random == nil {
		random = rand.Reader
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(random, key); err != nil {
		return k, fmt.Errorf("generate data key: %w", err)
	}
	next := int32(1)
	if c := k.Current(); c != nil {
		next = c.Version + 1
	}
	versions := append(append([]KeyVersion(nil), k.Versions...), KeyVersion{Version: next, Key: key, Created: now.UTC().Truncate(time.Second)})
	return KeyRing{Versions: versions}, nil
}

// ReadKeyRing parses a data-key Secret. A nil Secret is an empty ring. A
// malformed Secret is an error that never quotes key material.
func ReadKeyRing(secret *corev1.Secret) (KeyRing, error) {
	if secret == nil {
		return KeyRing{}, nil
	}
	var ring KeyRing
	for name, key := range secret.Data {
		if !strings.HasPrefix(name, keyDataPrefix) {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimPrefix(name, keyDataPrefix), 10, 32)
		if err != nil || v < 1 {
			return KeyRing{}, fmt.Errorf("data key entry %q has no valid version number", name)
		}
		if len(key) != KeySize {
			return KeyRing{}, fmt.Errorf("data key version %d has %d bytes, want %d", v, len(key), KeySize)
		}
		created, err := time.Parse(time.RFC3339, secret.Annotations[annotationCreatedPrefix+strconv.FormatInt(v, 10)])
		if err != nil {
			return KeyRing{}, fmt.Errorf("data key version %d has no valid creation time", v)
		}
		ring.Versions = append(ring.Versions, KeyVersion{Version: int32(v), Key: key, Created: created})
	}
	sort.Slice(ring.Versions, func(i, j int) bool { return ring.Versions[i].Version < ring.Versions[j].Version })
	return ring, nil
}

// Key Secrets are create-once: NewDataKeySecret and NewAuditKeysSecret are
// created when a live read confirms that none exists, and never applied or
// overwritten afterwards. A rotation is an update of the Secret as read
// (WithKeyVersion, with its resourceVersion, so that a write someone made
// since fails with a conflict instead of being lost) that keeps every
// existing version.

// NewDataKeySecret is the data-key Secret as it is created, with every
// version of ring.
func NewDataKeySecret(store *v1alpha1.DossierStore, ring KeyRing) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: KeySecretName(store), Namespace: store.Namespace,
			Labels: StoreLabels(store, "data-key"), Annotations: map[string]string{}, OwnerReferences: []metav1.OwnerReference{storeOwnerRef(store)}},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{},
	}
	for _, v := range ring.Versions {
		s = WithKeyVersion(s, v)
	}
	return s
}

// WithKeyVersion is a copy of secret with version v added and made current.
// Every other entry and annotation is kept as it is.
func WithKeyVersion(secret *corev1.Secret, v KeyVersion) *corev1.Secret {
	s := secret.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	id := strconv.FormatInt(int64(v.Version), 10)
	s.Data[keyDataPrefix+id] = v.Key
	s.Annotations[annotationCreatedPrefix+id] = v.Created.UTC().Format(time.RFC3339)
	s.Annotations[AnnotationCurrentVersion] = id
	return s
}

// AdoptKeySecret is a copy of a key Secret with the store's labels and
// controller reference where they are missing (someone took them off), and
// whether anything was missing. The keys are not touched.
func AdoptKeySecret(secret *corev1.Secret, store *v1alpha1.DossierStore, component string) (*corev1.Secret, bool) {
	s := secret.DeepCopy()
	changed := false
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	for k, v := range StoreLabels(store, component) {
		if s.Labels[k] != v {
			s.Labels[k], changed = v, true
		}
	}
	owned := false
	for _, o := range s.OwnerReferences {
		owned = owned || o.UID == store.UID
	}
	if !owned {
		s.OwnerReferences, changed = append(s.OwnerReferences, storeOwnerRef(store)), true
	}
	return s, changed
}

func storeOwnerRef(store *v1alpha1.DossierStore) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "DossierStore", Name: store.Name, UID: store.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
}

// WorkloadAccessRole is all the workload's ServiceAccount may do through
// the API: read exactly the store's data-key Secret, and get, list and watch
// the DataSubjectRequests of the store's namespace, which the audit proxy
// (it runs as that ServiceAccount) needs to enforce restrictions and
// objections within seconds of their decision. A request holds pseudonyms
// and dates, never an identifier. Both rules are for the same subject, so
// one Role grants them, exactly as two Roles did (TestWorkloadAccess).
func WorkloadAccessRole(store *v1alpha1.DossierStore) *rbacv1ac.RoleApplyConfiguration {
	return rbacv1ac.Role(WorkloadAccessName(store), store.Namespace).
		WithLabels(StoreLabels(store, "workload-access")).
		WithOwnerReferences(StoreOwner(store)).
		WithRules(
			rbacv1ac.PolicyRule().
				WithAPIGroups("").
				WithResources("secrets").
				WithResourceNames(KeySecretName(store)).
				WithVerbs("get"),
			rbacv1ac.PolicyRule().
				WithAPIGroups(v1alpha1.GroupVersion.Group).
				WithResources("datasubjectrequests").
				WithVerbs("get", "list", "watch"))
}

// WorkloadAccessBinding grants the workload Role to the workload's
// ServiceAccount, and to no one else.
func WorkloadAccessBinding(store *v1alpha1.DossierStore) *rbacv1ac.RoleBindingApplyConfiguration {
	return rbacv1ac.RoleBinding(WorkloadAccessName(store), store.Namespace).
		WithLabels(StoreLabels(store, "workload-access")).
		WithOwnerReferences(StoreOwner(store)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(WorkloadAccessName(store))).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(store.Spec.Workload.ServiceAccountName).WithNamespace(store.Namespace))
}
