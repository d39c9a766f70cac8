package resources

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/auditlog"
)

// A store's audit keys live in two Secrets with separate readers:
//
//   - <store>-audit-signing holds the versioned Ed25519 keys that sign the
//     audit log's checkpoints (the files of auditlog.ReadSigningKeyDir).
//     Only the audit proxy mounts it. Rotation adds a version; every
//     version's public key is in the trust ConfigMap before the version is
//     written here, and a version becomes active only SigningKeyActivationDelay
//     after it is written, so that every verifier knows it first.
//   - <store>-pseudonym holds the key that pseudonymises data subjects
//     (PseudonymKey). The audit proxy mounts it, and people who query the
//     logbook for one dossier (`dossierguard audit query`) read it, through
//     the store's <store>-pseudonym-reader Role. It is never rotated: a new
//     key would give every dossier a new pseudonym and split its history.
//
// Stores made before the split have one Secret, <store>-audit-keys
// (LegacyAuditKeysName), with both keys; the reconciler copies its keys
// into the two Secrets unchanged (SplitLegacyAuditKeys) and removes it.
const (
	// PseudonymKey is the data key of the pseudonym Secret.
	PseudonymKey = "pseudonym.key"

	// Keys of the legacy audit-keys Secret.
	LegacySigningKey   = "signing.key"
	LegacyVerifyKey    = "signing.pub"
	LegacyPseudonymKey = "pseudonym.key"

	// SigningKeyActivationDelay is how long after a signing-key version is
	// written the audit proxy may sign with it: time for its public key,
	// written to the trust ConfigMap before, to reach the logbook (the
	// kubelet's sync of the mounted ConfigMap, up to a minute, and the
	// logbook's --trust-key-reload, a minute by default), so that no
	// checkpoint is refused for a key the logbook does not know yet.
	SigningKeyActivationDelay = 5 * time.Minute

	// SigningKeyRetireDelay is how long after a version became active the
	// private keys of the versions before it are removed from the Secret
	// (their public keys and activation times stay): by then every proxy has
	// read the new version (it reads its mounted Secret every 10 seconds,
	// and the kubelet updates the mount within about a minute), and a
	// Secret read later cannot sign as an older key.
	SigningKeyRetireDelay = time.Hour

	// annotationRotationRequest on the signing Secret is the last value of
	// the store's v1alpha1.AnnotationRotateSigningKey that was honoured.
	annotationRotationRequest = "privacy.dossierguard.io/signing-rotation-request"
	// annotationSigningCreatedPrefix + version: when the version was made.
	annotationSigningCreatedPrefix = "privacy.dossierguard.io/signing-key-created-"
)

// ProxyTLSName is the Secret with the audit proxy's serving certificate.
func ProxyTLSName(store *v1alpha1.DossierStore) string { return store.Name + "-proxy-tls" }

// AuditSigningName is the Secret with a store's checkpoint signing keys.
func AuditSigningName(store *v1alpha1.DossierStore) string { return store.Name + "-audit-signing" }

// PseudonymName is the Secret with a store's pseudonymisation key.
func PseudonymName(store *v1alpha1.DossierStore) string { return store.Name + "-pseudonym" }

// PseudonymReaderName is the Role that may read the pseudonym Secret.
func PseudonymReaderName(store *v1alpha1.DossierStore) string {
	return store.Name + "-pseudonym-reader"
}

// LegacyAuditKeysName is the single audit-keys Secret of stores made before
// the keys were split.
func LegacyAuditKeysName(store *v1alpha1.DossierStore) string { return store.Name + "-audit-keys" }

// SigningVersion is one version of a store's checkpoint signing key.
type SigningVersion struct {
	auditlog.SigningKey
	// Created is when the version was made.
	Created time.Time
}

// SigningRing is the set of a store's signing-key versions, ascending.
type SigningRing struct {
	Versions []SigningVersion
}

// Newest is the newest version, active or not; nil for an empty ring.
func (r SigningRing) Newest() *SigningVersion {
	if len(r.Versions) == 0 {
		return nil
	}
	return &r.Versions[len(r.Versions)-1]
}

// Active is the version the audit proxy signs with at now: the newest one
// with its private key whose activation time has come, or the oldest with
// its private key when none has (auditlog.ActiveSigningKey); nil when no
// version has its private key.
func (r SigningRing) Active(now time.Time) *SigningVersion {
	var oldest *SigningVersion
	for i := len(r.Versions) - 1; i >= 0; i-- {
		v := &r.Versions[i]
		if v.Retired() {
			continue
		}
		if !now.Before(v.ActiveFrom) {
			return v
		}
		oldest = v
	}
	return oldest
}

// Retirable are the versions whose private key may be removed at now: those
// before the active version, once it has been active for
// SigningKeyRetireDelay.
func (r SigningRing) Retirable(now time.Time) []int {
	active := r.Active(now)
	if active == nil || now.Before(active.ActiveFrom.Add(SigningKeyRetireDelay)) {
		return nil
	}
	var versions []int
	for _, v := range r.Versions {
		if v.Version < active.Version && !v.Retired() {
			versions = append(versions, v.Version)
		}
	}
	return versions
}

// NextRotation is when a new version is due: the newest version's creation
// plus period.
func (r SigningRing) NextRotation(period v1alpha1.Period) time.Time {
	n := r.Newest()
	if n == nil {
		return time.Time{}
	}
	t, err := period.AddTo(n.Created)
	if err != nil {
		return n.Created
	}
	return t
}

// PublicKeys are the public keys of every version.
func (r SigningRing) PublicKeys() []ed25519.PublicKey {
	keys := make([]ed25519.PublicKey, 0, len(r.Versions))
	for _, v := range r.Versions {
		keys = append(keys, v.Public())
	}
	return keys
}

// Has says whether a version of the ring, retired or not, is priv's.
func (r SigningRing) Has(priv ed25519.PrivateKey) bool {
	pub, _ := priv.Public().(ed25519.PublicKey)
	for _, v := range r.Versions {
		if v.Public().Equal(pub) {
			return true
		}
	}
	return false
}

// Rotate is the ring with a new random version made at now, active
// SigningKeyActivationDelay later (at once for the first version: no chain
// can have used a key before it), and that version.
func (r SigningRing) Rotate(now time.Time, random io.Reader) (SigningRing, SigningVersion, error) {
	if random == nil {
		random = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return r, SigningVersion{}, fmt.Errorf("generate signing key: %w", err)
	}
	now = now.UTC().Truncate(time.Second)
	v := SigningVersion{SigningKey: auditlog.SigningKey{Version: 1, Key: priv, ActiveFrom: now}, Created: now}
	if n := r.Newest(); n != nil {
		v.Version = n.Version + 1
		v.ActiveFrom = now.Add(SigningKeyActivationDelay)
	}
	versions := append(append([]SigningVersion(nil), r.Versions...), v)
	return SigningRing{Versions: versions}, v, nil
}

// ReadSigningRing parses a signing Secret; nil is an empty ring. Every
// version needs its creation time. Errors name the entry and the rule,
// never key material.
func ReadSigningRing(secret *corev1.Secret) (SigningRing, error) {
	if secret == nil {
		return SigningRing{}, nil
	}
	keys, err := auditlog.ParseSigningKeys(secret.Data)
	if err != nil {
		return SigningRing{}, err
	}
	if len(keys) == 0 {
		return SigningRing{}, fmt.Errorf("no %s", auditlog.SigningKeyFile(1))
	}
	ring := SigningRing{Versions: make([]SigningVersion, 0, len(keys))}
	for _, k := range keys {
		name := annotationSigningCreatedPrefix + strconv.Itoa(k.Version)
		created, err := time.Parse(time.RFC3339, secret.Annotations[name])
		if err != nil {
			return SigningRing{}, fmt.Errorf("annotation %s: must be the RFC 3339 time version %d was made", name, k.Version)
		}
		ring.Versions = append(ring.Versions, SigningVersion{SigningKey: k, Created: created})
	}
	return ring, nil
}

// NewSigningSecret is a store's signing Secret as it is created, with every
// version of ring. Like every key Secret it is created once and never
// applied: a rotation is WithSigningVersion on the Secret as read.
func NewSigningSecret(store *v1alpha1.DossierStore, ring SigningRing) (*corev1.Secret, error) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: AuditSigningName(store), Namespace: store.Namespace,
			Labels: StoreLabels(store, "audit-signing"), OwnerReferences: []metav1.OwnerReference{storeOwnerRef(store)}},
		Type: corev1.SecretTypeOpaque,
	}
	for _, v := range ring.Versions {
		var err error
		if s, err = WithSigningVersion(s, v); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// WithSigningVersion is a copy of secret with version v added: its private
// key, public key and activation time, and its creation time as an
// annotation. Every other entry is kept as it is; a version that is there
// already is an error, never overwritten.
func WithSigningVersion(secret *corev1.Secret, v SigningVersion) (*corev1.Secret, error) {
	s := secret.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	_, hasKey := s.Data[auditlog.SigningKeyFile(v.Version)]
	if _, hasTime := s.Data[auditlog.SigningActiveFromFile(v.Version)]; hasKey || hasTime {
		return nil, fmt.Errorf("signing Secret %s: version %d exists; it is not replaced", s.Name, v.Version)
	}
	priv, err := auditlog.EncodePrivateKeyPEM(v.Key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	pub, err := auditlog.EncodePublicKeyPEM(v.Public())
	if err != nil {
		return nil, fmt.Errorf("encode verification key: %w", err)
	}
	s.Data[auditlog.SigningKeyFile(v.Version)] = priv
	s.Data[auditlog.SigningPublicFile(v.Version)] = pub
	s.Data[auditlog.SigningActiveFromFile(v.Version)] = []byte(v.ActiveFrom.UTC().Format(time.RFC3339))
	s.Annotations[annotationSigningCreatedPrefix+strconv.Itoa(v.Version)] = v.Created.UTC().Format(time.RFC3339)
	return s, nil
}

// WithRetired is the ring with the private keys of versions removed.
func (r SigningRing) WithRetired(versions []int) SigningRing {
	out := SigningRing{Versions: append([]SigningVersion(nil), r.Versions...)}
	for i := range out.Versions {
		if slices.Contains(versions, out.Versions[i].Version) {
			out.Versions[i].PublicKey = out.Versions[i].Public()
			out.Versions[i].Key = nil
		}
	}
	return out
}

// WithRetiredKeys is a copy of secret without the private keys of versions;
// their public keys and activation times are kept.
func WithRetiredKeys(secret *corev1.Secret, versions []int) *corev1.Secret {
	s := secret.DeepCopy()
	for _, v := range versions {
		delete(s.Data, auditlog.SigningKeyFile(v))
	}
	return s
}

// RotationRequested says whether the store asks for a new signing-key
// version (v1alpha1.AnnotationRotateSigningKey) with a value the signing
// Secret has not honoured yet.
func RotationRequested(store *v1alpha1.DossierStore, secret *corev1.Secret) bool {
	want := store.Annotations[v1alpha1.AnnotationRotateSigningKey]
	return want != "" && (secret == nil || secret.Annotations[annotationRotationRequest] != want)
}

// WithRotationHonoured is a copy of secret that records the store's rotation
// request as honoured.
func WithRotationHonoured(secret *corev1.Secret, store *v1alpha1.DossierStore) *corev1.Secret {
	s := secret.DeepCopy()
	if want := store.Annotations[v1alpha1.AnnotationRotateSigningKey]; want != "" {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[annotationRotationRequest] = want
	}
	return s
}

// NewPseudonymKey is a new 256-bit pseudonymisation key.
func NewPseudonymKey(random io.Reader) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	key := make([]byte, auditlog.PseudonymKeySize)
	if _, err := io.ReadFull(random, key); err != nil {
		return nil, fmt.Errorf("generate pseudonymisation key: %w", err)
	}
	return key, nil
}

// CheckPseudonymSecret reports whether a pseudonym Secret's data holds a key
// the audit proxy can use. The error names the key and the rule, never the
// key material.
func CheckPseudonymSecret(data map[string][]byte) error {
	if err := auditlog.CheckPseudonymKey(data[PseudonymKey]); err != nil {
		return fmt.Errorf("%s: %w", PseudonymKey, err)
	}
	return nil
}

// NewPseudonymSecret is a store's pseudonym Secret as it is created. It is
// never applied or updated but to put back labels someone took off
// (AdoptKeySecret): the key is never rotated.
func NewPseudonymSecret(store *v1alpha1.DossierStore, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: PseudonymName(store), Namespace: store.Namespace,
			Labels: StoreLabels(store, "pseudonym"), OwnerReferences: []metav1.OwnerReference{storeOwnerRef(store)}},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{PseudonymKey: bytes.Clone(key)},
	}
}

// SplitLegacyAuditKeys reads the keys of a legacy audit-keys Secret: its
// signing key as version 1, made and active when the Secret was made (its
// public key was trusted from the start), and its pseudonym key, both
// unchanged.
func SplitLegacyAuditKeys(legacy *corev1.Secret) (SigningRing, []byte, error) {
	priv, err := auditlog.DecodePrivateKeyPEM(legacy.Data[LegacySigningKey])
	if err != nil {
		return SigningRing{}, nil, fmt.Errorf("%s: %w", LegacySigningKey, err)
	}
	pseudonym := legacy.Data[LegacyPseudonymKey]
	if err := auditlog.CheckPseudonymKey(pseudonym); err != nil {
		return SigningRing{}, nil, fmt.Errorf("%s: %w", LegacyPseudonymKey, err)
	}
	made := legacy.CreationTimestamp.UTC().Truncate(time.Second)
	v := SigningVersion{SigningKey: auditlog.SigningKey{Version: 1, Key: priv, ActiveFrom: made}, Created: made}
	return SigningRing{Versions: []SigningVersion{v}}, bytes.Clone(pseudonym), nil
}

// LegacyKeysKept says whether the split Secrets hold the legacy Secret's
// keys unchanged: then it may be removed.
func LegacyKeysKept(legacy *corev1.Secret, ring SigningRing, pseudonym []byte) bool {
	priv, err := auditlog.DecodePrivateKeyPEM(legacy.Data[LegacySigningKey])
	return err == nil && ring.Has(priv) && bytes.Equal(legacy.Data[LegacyPseudonymKey], pseudonym)
}

// PseudonymReaderRole may read exactly the store's pseudonym Secret: what a
// person needs to run `dossierguard audit query` for the store's dossiers.
// The operator binds it to no one; a RoleBinding of the namespace's
// administrator grants it (docs/audit-log.md).
func PseudonymReaderRole(store *v1alpha1.DossierStore) *rbacv1ac.RoleApplyConfiguration {
	return rbacv1ac.Role(PseudonymReaderName(store), store.Namespace).
		WithLabels(StoreLabels(store, "pseudonym-access")).
		WithOwnerReferences(StoreOwner(store)).
		WithRules(rbacv1ac.PolicyRule().
			WithAPIGroups("").
			WithResources("secrets").
			WithResourceNames(PseudonymName(store)).
			WithVerbs("get"))
}
