package controllers

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/resources"
)

// storeFacts is what the reconcile steps found and did.
type storeFacts struct {
	now        time.Time
	encryption compliance.Encryption
	key        compliance.KeyFacts
	// keyAccess is set when the workload's Role and RoleBinding (the data
	// key, the namespace's DataSubjectRequests) are applied.
	keyAccess bool
	claim     bool
	// isolation is set when the isolation policy is applied; apiServer
	// when it admits the API server's endpoints.
	isolation bool
	apiServer bool
	// roles and the access policy rendered from them.
	roles         []compliance.RoleSummary
	policyApplied bool
	// agreements summarised, and those that would share too much.
	agreements *v1alpha1.AgreementSummary
	violating  []string
	// proxied describes the agreements for the SharingEnforced control.
	proxied []compliance.ProxyAgreement
	// retention is the store's RetentionEnforced control.
	retention v1alpha1.ComplianceControl
	// auditKeys describes the signing and pseudonym Secrets; audit is the
	// AuditActive control.
	auditKeys compliance.AuditKeyFacts
	audit     v1alpha1.ComplianceControl
	// transport is how the audit proxy serves (TLS or plain HTTP).
	transport compliance.ProxyTransport
	// requests is the DataSubjectRights control; requestsNext the next
	// moment one of the store's requests changes by time alone.
	requests     v1alpha1.ComplianceControl
	requestsNext time.Time
	// unfilterable are the routes without {dossier} or records that a
	// restriction or objection in force reaches.
	unfilterable []string
	// activities are the names of the namespace's ProcessingActivities,
	// nil when they could not be listed.
	activities map[string]bool
	// egress is what the store's egress gateway looks like.
	egress compliance.EgressFacts
}

// requestAccess says whether the audit proxy may watch the store's
// requests: the workload's Role and RoleBinding, and the isolation policy
// with the API server in it.
func (f storeFacts) requestAccess() bool { return f.keyAccess && f.isolation && f.apiServer }

// setStoreStatus computes the whole status from the facts, in memory.
func setStoreStatus(store *v1alpha1.DossierStore, f storeFacts) {
	st := &store.Status
	st.ObservedGeneration = store.Generation
	st.Encryption = string(f.encryption.Method)
	st.KeySecretName = ""
	st.KeyVersion = 0
	st.NextKeyRotation = nil
	if !f.key.Failed {
		st.KeySecretName = f.key.Secret
		st.KeyVersion = f.key.Version
		st.NextKeyRotation = &metav1.Time{Time: f.key.NextRotation}
	}
	st.ClaimName = ""
	if f.claim {
		st.ClaimName = resources.ClaimName(store)
	}
	st.Compliance = []v1alpha1.ComplianceControl{
		compliance.EncryptionControl(f.encryption, resources.ClaimName(store)),
		compliance.KeyManagementControl(f.key, f.now),
		compliance.KeyAccessControl(f.keyAccess, resources.WorkloadAccessName(store), store.Spec.Workload.ServiceAccountName),
		compliance.NetworkControl(f.isolation, resources.IsolationPolicyName(store), resources.ProxyPort(store), f.transport),
		compliance.AccessControlControl(f.roles, resources.AccessPolicyName(store)),
		compliance.MinimisationControl(f.violating, agreementCount(f.agreements)),
		compliance.SharingEnforcedControl(f.proxied, f.policyApplied,
			store.Spec.Audit != nil && store.Spec.Audit.ConsentURL != "", resources.AccessPolicyName(store)),
		compliance.EgressGatedControl(f.egress),
		f.retention,
		f.audit,
		compliance.AuditSigningKeyControl(f.auditKeys, f.now),
		compliance.WithRequestAccess(f.requests, f.requestAccess(), resources.WorkloadAccessName(store), resources.IsolationPolicyName(store)),
	}
	setAuditKeyStatus(st, f.auditKeys)
	st.Agreements = f.agreements

	setEncryptionCondition(store, f.encryption)
	setVolumeCondition(store, f)
	setKeyCondition(store, f.key, f.now)
	setIsolationCondition(store, f.isolation, f.transport)
	setCondition(store, &st.Conditions, v1alpha1.ConditionAuditActive, f.audit.Result == v1alpha1.ResultPass, f.audit.Reason, f.audit.Message)
	setAuditKeyCondition(store, f.auditKeys, f.now)
	setRouteActivityCondition(store, f.activities)
	setBulkRoutesCondition(store, f.unfilterable)
	setCompliantCondition(store, &st.Conditions, st.Compliance)
	setStoreReadyCondition(store, f)
}

func setEncryptionCondition(store *v1alpha1.DossierStore, e compliance.Encryption) {
	setCondition(store, &store.Status.Conditions, v1alpha1.ConditionEncryptionVerified, e.Encrypted(), e.Reason, e.Message)
}

func setVolumeCondition(store *v1alpha1.DossierStore, f storeFacts) {
	switch {
	case !f.encryption.Encrypted():
		setCondition(store, &store.Status.Conditions, v1alpha1.ConditionVolumeProvisioned, false, v1alpha1.ReasonClaimWithheld,
			"no PersistentVolumeClaim is created on a StorageClass that is not verified to encrypt at rest")
	case !f.claim:
		setCondition(store, &store.Status.Conditions, v1alpha1.ConditionVolumeProvisioned, false, v1alpha1.ReasonClaimFailed,
			"the dossier volume claim could not be applied; see the operator's events")
	default:
		setCondition(store, &store.Status.Conditions, v1alpha1.ConditionVolumeProvisioned, true, v1alpha1.ReasonClaimApplied,
			fmt.Sprintf("PersistentVolumeClaim %s on StorageClass %s", resources.ClaimName(store), store.Spec.Storage.StorageClassName))
	}
}

func setKeyCondition(store *v1alpha1.DossierStore, k compliance.KeyFacts, now time.Time) {
	c := compliance.KeyManagementControl(k, now)
	setCondition(store, &store.Status.Conditions, v1alpha1.ConditionKeyRotated, c.Result == v1alpha1.ResultPass, c.Reason, c.Message)
}

// setAuditKeyStatus shows the audit key Secrets and the signing key in use,
// once there is one.
func setAuditKeyStatus(st *v1alpha1.DossierStoreStatus, k compliance.AuditKeyFacts) {
	st.AuditSigningSecretName, st.PseudonymSecretName, st.AuditSigningKey = "", "", nil
	if k.KeyID == "" {
		return
	}
	st.AuditSigningSecretName, st.PseudonymSecretName = k.SigningSecret, k.PseudonymSecret
	st.AuditSigningKey = &v1alpha1.SigningKeyStatus{KeyID: k.KeyID, Version: int32(k.Version), Created: metav1.NewTime(k.Created),
		Versions: int32(k.Versions), PendingKeyID: k.PendingKeyID, NextRotation: metav1.NewTime(k.NextRotation)}
	if k.PendingKeyID != "" {
		st.AuditSigningKey.PendingActiveFrom = &metav1.Time{Time: k.PendingActiveFrom}
	}
}

func setAuditKeyCondition(store *v1alpha1.DossierStore, k compliance.AuditKeyFacts, now time.Time) {
	c := compliance.AuditSigningKeyControl(k, now)
	setCondition(store, &store.Status.Conditions, v1alpha1.ConditionAuditKeyRotated, c.Result == v1alpha1.ResultPass, c.Reason, c.Message)
}

func setIsolationCondition(store *v1alpha1.DossierStore, applied bool, transport compliance.ProxyTransport) {
	c := compliance.NetworkControl(applied, resources.IsolationPolicyName(store), resources.ProxyPort(store), transport)
	setCondition(store, &store.Status.Conditions, v1alpha1.ConditionNetworkIsolated, applied, c.Reason, c.Message)
}

// setRouteActivityCondition: ActivityAssigned summarises whether the
// store's audit routes name processing activities that exist (known, nil
// when the activities could not be listed: Unknown). A warning only: it
// counts towards neither Ready nor Compliant.
func setRouteActivityCondition(store *v1alpha1.DossierStore, known map[string]bool) {
	if known == nil {
		meta.SetStatusCondition(&store.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionActivityAssigned, Status: metav1.ConditionUnknown, Reason: v1alpha1.ReasonActivitiesNotListed,
			Message: "the namespace's ProcessingActivities could not be read; see the operator's events", ObservedGeneration: store.Generation,
		})
		return
	}
	var routes []v1alpha1.AuditRoute
	if store.Spec.Audit != nil {
		routes = store.Spec.Audit.Routes
	}
	ok, reason, message := compliance.RouteActivitiesAssigned(routes, known)
	setCondition(store, &store.Status.Conditions, v1alpha1.ConditionActivityAssigned, ok, reason, message)
}

// setStoreReadyCondition: Ready when the store may hold dossiers.
func setStoreReadyCondition(store *v1alpha1.DossierStore, f storeFacts) {
	conds := &store.Status.Conditions
	switch {
	case !f.encryption.Encrypted():
		setCondition(store, conds, v1alpha1.ConditionReady, false, v1alpha1.ReasonEncryptionUnverified, f.encryption.Message)
	case f.key.Failed || !f.keyAccess || !f.claim || !f.isolation || !f.policyApplied || f.auditKeys.Failed || f.auditKeys.KeyID == "":
		setCondition(store, conds, v1alpha1.ConditionReady, false, v1alpha1.ReasonDependencyUnavailable,
			"not every child object could be applied; see the conditions and the operator's events")
	default:
		setCondition(store, conds, v1alpha1.ConditionReady, true, v1alpha1.ReasonStoreReady,
			fmt.Sprintf("dossiers are stored on %s storage with data key version %d behind a default-deny network policy",
				f.encryption.Method, f.key.Version))
	}
}

// recordTransitions emits one event for the changes of readiness,
// encryption and compliance that one status write made (the three change
// together when a store is first assessed), and one for each new key
// version.
func (r *DossierStoreReconciler) recordTransitions(before, after *v1alpha1.DossierStore) {
	if e, ok := transitionEvent(before.Status.Conditions, after.Status.Conditions,
		v1alpha1.ConditionReady, v1alpha1.ConditionEncryptionVerified, v1alpha1.ConditionCompliant); ok {
		r.Recorder.Eventf(after, nil, e.eventType, e.reason, "Reconcile", "%s", e.note)
	}
	if b, a := before.Status.AuditSigningKey, after.Status.AuditSigningKey; b != nil && a != nil && a.Versions > b.Versions {
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, "AuditKeyRotated", "RotateSigningKey",
			"checkpoint signing key version %d added (%d kept); its public key is kept in ConfigMap %s", a.Versions, a.Versions, resources.AuditTrustName)
	}
	if before.Status.KeyVersion != 0 && after.Status.KeyVersion > before.Status.KeyVersion {
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, "KeyRotated", "RotateKey",
			"data key version %d added; earlier versions kept for decryption", after.Status.KeyVersion)
	}
}

func agreementCount(s *v1alpha1.AgreementSummary) int {
	if s == nil {
		return 0
	}
	return int(s.InForce + s.NotInForce)
}

// setBulkRoutesCondition sets BulkRoutesFilterable: False, naming the
// routes, while a restriction or objection in force reaches a route the
// audit proxy cannot filter and so refuses whole.
func setBulkRoutesCondition(store *v1alpha1.DossierStore, unfilterable []string) {
	if len(unfilterable) > 0 {
		setCondition(store, &store.Status.Conditions, v1alpha1.ConditionBulkRoutesFilterable, false, v1alpha1.ReasonRouteUnfilterable,
			fmt.Sprintf("a restriction or objection in force reaches route %s, which has no {dossier} and no records, so the audit proxy refuses it whole for every caller; declare spec.audit.routes[].records so that only the dossiers concerned are left out", strings.Join(unfilterable, ", ")))
		return
	}
	setCondition(store, &store.Status.Conditions, v1alpha1.ConditionBulkRoutesFilterable, true, v1alpha1.ReasonBulkRoutesFiltered,
		"no restriction or objection in force reaches a route without {dossier} that declares no records")
}

// conditionEvent is one event about changed conditions.
type conditionEvent struct{ eventType, reason, note string }

// maxEventNote is the most an Event's note may hold (events.k8s.io/v1).
const maxEventNote = 1024

// transitionEvent describes in one event the conditions of types (in that
// order) whose status or reason changed from before to after, none when
// none did. The event is a Warning when any of them is not True, and its
// reason is the first such condition's (else the first changed one's), so
// a failure is never filed under a success; the note says
// "Type=Status: message" for each, that one first, within maxEventNote.
func transitionEvent(before, after []metav1.Condition, types ...string) (conditionEvent, bool) {
	var changed []*metav1.Condition
	lead := -1
	for _, t := range types {
		old, now := meta.FindStatusCondition(before, t), meta.FindStatusCondition(after, t)
		if now == nil || (old != nil && old.Status == now.Status && old.Reason == now.Reason) {
			continue
		}
		if lead < 0 && now.Status != metav1.ConditionTrue {
			lead = len(changed)
		}
		changed = append(changed, now)
	}
	if len(changed) == 0 {
		return conditionEvent{}, false
	}
	e := conditionEvent{eventType: corev1.EventTypeNormal}
	if lead >= 0 {
		e.eventType = corev1.EventTypeWarning
		changed = append(append([]*metav1.Condition{changed[lead]}, changed[:lead]...), changed[lead+1:]...)
	}
	e.reason = changed[0].Reason
	parts := make([]string, 0, len(changed))
	for _, c := range changed {
		parts = append(parts, fmt.Sprintf("%s=%s: %s", c.Type, c.Status, c.Message))
	}
	e.note = truncateNote(strings.Join(parts, "; "), maxEventNote)
	return e, true
}

// truncateNote cuts s to at most limit bytes, on a rune boundary, marking
// the cut with an ellipsis.
func truncateNote(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
