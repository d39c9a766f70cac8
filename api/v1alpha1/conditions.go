package v1alpha1

// This file is the public vocabulary of dossierguard: every condition type
// with its reasons, every compliance control with its reasons, and the
// labels, annotations and finalizer that users and tools rely on. One const
// block per condition or control, so that a reason is looked up where its
// condition is defined. The string values are part of the API: changing one
// breaks alerts, `kubectl wait` calls and auditors' queries.

// Ready and Compliant are set on every kind. Ready summarises the others and
// is what `kubectl wait --for=condition=Ready` waits on; Compliant summarises
// the compliance rows.
const (
	ConditionReady     = "Ready"
	ConditionCompliant = "Compliant"

	// ReasonAllControlsPass: Compliant is True.
	ReasonAllControlsPass = "AllControlsPass"
	// ReasonControlFailed: Compliant is False; the message names the first
	// control that failed.
	ReasonControlFailed = "ControlFailed"
	// ReasonDependencyUnavailable: Ready is False because a child object
	// could not be applied.
	ReasonDependencyUnavailable = "DependencyUnavailable"
	// ReasonStoreNotFound: the referenced DossierStore does not exist.
	ReasonStoreNotFound = "StoreNotFound"
)

// DossierStore Ready reasons (besides ReasonDependencyUnavailable).
const (
	ReasonStoreReady           = "StoreReady"
	ReasonEncryptionUnverified = "EncryptionUnverified"
)

// DossierStore EncryptionVerified condition and the EncryptionAtRest control.
const (
	ConditionEncryptionVerified = "EncryptionVerified"
	ControlEncryptionAtRest     = "EncryptionAtRest"

	ReasonVerifiedByParameters = "VerifiedByParameters"
	ReasonAttestedByPlatform   = "AttestedByPlatformTeam"
	ReasonStorageClassNotFound = "StorageClassNotFound"
	ReasonNoEncryptionEvidence = "NoEncryptionEvidence"
)

// DossierStore VolumeProvisioned condition.
const (
	ConditionVolumeProvisioned = "VolumeProvisioned"

	ReasonClaimApplied  = "ClaimApplied"
	ReasonClaimWithheld = "WithheldUntilEncryptionVerified"
	ReasonClaimFailed   = "ClaimNotApplied"
)

// DossierStore KeyRotated condition and the KeyManagement control.
const (
	ConditionKeyRotated  = "KeyRotated"
	ControlKeyManagement = "KeyManagement"

	ReasonKeyCurrent        = "KeyCurrent"
	ReasonKeyRotationFailed = "KeyRotationFailed"
)

// DossierStore AuditKeyRotated condition and the AuditSigningKey control:
// the audit log's checkpoint signing key exists, every version's public key
// is kept in the trust ConfigMap, and the key the proxy signs with is
// within spec.audit.signingKeyRotation.
const (
	ConditionAuditKeyRotated = "AuditKeyRotated"
	ControlAuditSigningKey   = "AuditSigningKey"

	ReasonAuditKeyCurrent = "AuditKeyCurrent"
	// ReasonAuditKeyOverdue: the signing key in use is older than the
	// rotation period allows (and the grace of a rotation in progress).
	ReasonAuditKeyOverdue = "AuditKeyOverdue"
	// ReasonAuditKeysUnavailable: the signing or pseudonym Secret could not
	// be read, created or checked, or a public key could not be kept.
	ReasonAuditKeysUnavailable = "AuditKeysUnavailable"
)

// DossierStore KeyAccessRestricted control.
const (
	ControlKeyAccess = "KeyAccessRestricted"

	ReasonKeyAccessBound    = "BoundToWorkloadServiceAccount"
	ReasonKeyAccessNotBound = "KeyAccessNotApplied"
)

// DossierStore NetworkIsolated condition and the NetworkSegregation control.
const (
	ConditionNetworkIsolated  = "NetworkIsolated"
	ControlNetworkSegregation = "NetworkSegregation"

	ReasonDefaultDenyApplied = "DefaultDenyApplied"
	ReasonIsolationMissing   = "IsolationNotApplied"
)

// DossierStore AuditActive condition and control (the same name).
const (
	ConditionAuditActive = "AuditActive"
	ControlAuditActive   = "AuditActive"

	ReasonPodsNotListed         = "PodsNotListed"
	ReasonPodsWithoutAuditProxy = "PodsWithoutAuditProxy"
	ReasonNoWorkloadPods        = "NoWorkloadPods"
	ReasonAllPodsAudited        = "AllPodsAudited"
	// ReasonServingCertificateMissing: the proxy serves TLS but its serving
	// certificate could not be issued.
	ReasonServingCertificateMissing = "ServingCertificateMissing"
)

// DossierStore AccessControlDefined control.
const (
	ControlAccessControlDefined = "AccessControlDefined"

	ReasonRolesDefined = "RolesDefined"
	ReasonNoRoles      = "NoAccessRoles"
	ReasonRoleRejected = "RoleRejected"
)

// DossierStore Minimisation control; ReasonMinimisationViolated is shared
// with the SharingAgreement DataMinimisation control.
const (
	ControlMinimisation = "Minimisation"

	ReasonNoViolations         = "NoViolations"
	ReasonMinimisationViolated = "MinimisationViolated"
)

// ReasonPending stands for an AccessRole, SharingAgreement or
// RetentionPolicy that has no status yet, in the summaries of a store.
const ReasonPending = "Pending"

// AccessRole Enforced condition (Ready carries the same reason), and the
// role's NeedToKnow and BreakGlassReview controls.
const (
	ConditionEnforced       = "Enforced"
	ControlNeedToKnow       = "NeedToKnow"
	ControlBreakGlassReview = "BreakGlassReview"

	// ReasonRoleEnforced: the role is part of the store's access policy.
	ReasonRoleEnforced = "Enforced"
	// ReasonPolicyPending: the role is valid but the store's access policy
	// has not been rendered yet.
	ReasonPolicyPending        = "PolicyPending"
	ReasonWithinStore          = "WithinStoreCategories"
	ReasonCategoriesNotInStore = "CategoriesNotInStore"
	ReasonNotBreakGlass        = "NotBreakGlass"
	ReasonReviewCurrent        = "ReviewCurrent"
	// ReasonReviewOverdue is shared with the SharingAgreement LawfulBasis
	// control.
	ReasonReviewOverdue = "ReviewOverdue"
)

// AccessRole Ready reasons of a role that is Enforced but cannot work as
// written.
const (
	// ReasonAssignmentSourceMissing: the role is limited to assigned cases
	// but its store has no spec.audit.assignmentURL, so every request under
	// it is refused.
	ReasonAssignmentSourceMissing = "AssignmentSourceMissing"
	// ReasonPartnerSubjectOverlap: a subject of the role is also a partner
	// subject of a SharingAgreement of the store; the proxy decides that
	// subject's requests from agreements only, so the role grants it
	// nothing.
	ReasonPartnerSubjectOverlap = "PartnerSubjectOverlap"
)

// SharingAgreement AgreementInForce condition (Ready carries the same
// reason), and the agreement's LawfulBasis, DataMinimisation and
// TransferControl controls.
const (
	ConditionAgreementInForce = "AgreementInForce"
	ControlLawfulBasis        = "LawfulBasis"
	ControlDataMinimisation   = "DataMinimisation"
	ControlTransferControl    = "TransferControl"

	ReasonInForce          = "InForce"
	ReasonNotYetValid      = "NotYetValid"
	ReasonExpired          = "Expired"
	ReasonSuspended        = "Suspended"
	ReasonConsentWithdrawn = "ConsentWithdrawn"
	ReasonStoreNotReady    = "StoreNotReady"

	ReasonBasisDocumented = "BasisDocumented"
	ReasonConsentMissing  = "ConsentMissing"
	ReasonWithinMaximum   = "WithinMaximum"

	ReasonNetworkAccessMismatch = "NetworkAccessMismatch"
	ReasonAccessWhileInForce    = "AccessWhileInForce"
	ReasonNoAccessOutOfForce    = "NoAccessOutOfForce"
)

// DossierStore SharingEnforced control: whether the audit proxy enforces
// every agreement that admits a partner to it, per request and per dossier.
const (
	ControlSharingEnforced = "SharingEnforced"

	// ReasonAgreementsEnforced: every Ingress or Both agreement is in the
	// rendered access policy, with a consent source where consent is per
	// dossier.
	ReasonAgreementsEnforced = "AgreementsEnforced"
	// ReasonNoProxyAgreements: no agreement admits a partner to the proxy.
	ReasonNoProxyAgreements = "NoProxyAgreements"
	// ReasonAgreementNotRendered: an agreement is not (yet) in the store's
	// rendered access policy.
	ReasonAgreementNotRendered = "AgreementNotRendered"
	// ReasonConsentSourceMissing: an agreement has per-dossier consent but
	// the store has no spec.audit.consentURL, so the proxy refuses all its
	// requests.
	ReasonConsentSourceMissing = "ConsentSourceMissing"
)

// DossierStore EgressGated control: whether everything the application
// sends to a partner goes through the store's egress gateway.
const (
	ControlEgressGated = "EgressGated"

	// ReasonNoOutboundAgreements: no agreement of the store has outbound
	// routes; there is no gateway.
	ReasonNoOutboundAgreements = "NoOutboundAgreements"
	// ReasonGatewayReady: the gateway is deployed and available, and no
	// outbound agreement gives the workload direct egress to its partner.
	ReasonGatewayReady = "GatewayReady"
	// ReasonGatewayNotReady: the gateway is not (yet) available; the
	// application's requests to partners fail.
	ReasonGatewayNotReady = "GatewayNotReady"
	// ReasonGatewayNotApplied: the gateway's objects could not be written.
	ReasonGatewayNotApplied = "GatewayNotApplied"
	// ReasonDirectPartnerEgress: an outbound agreement's NetworkPolicy
	// still lets the workload reach its partner around the gateway.
	ReasonDirectPartnerEgress = "DirectPartnerEgress"
)

// RetentionPolicy SweeperScheduled condition; Ready is True with reason
// ReasonSweeperScheduled once the sweeper is scheduled.
const (
	ConditionSweeperScheduled = "SweeperScheduled"

	ReasonCronJobApplied   = "CronJobApplied"
	ReasonSweeperScheduled = "SweeperScheduled"
	ReasonInvalidSchedule  = "InvalidSchedule"
)

// RetentionPolicy StatutoryRetention control.
const (
	ControlStatutoryRetention = "StatutoryRetention"

	ReasonWithinStatute = "WithinStatutoryRange"
	ReasonBelowMinimum  = "BelowStatutoryMinimum"
	ReasonBeyondMaximum = "BeyondStorageLimit"
	ReasonJustified     = "JustifiedException"
	ReasonNoStatute     = "NoStatuteForService"
)

// RetentionEnforced: a RetentionPolicy's condition and control, and the
// DossierStore control summarising its policies. A suspended policy fails it
// with ReasonSuspended.
const (
	ConditionRetentionEnforced = "RetentionEnforced"
	ControlRetentionEnforced   = "RetentionEnforced"

	ReasonRunSucceeded        = "RunSucceeded"
	ReasonAwaitingFirstRun    = "AwaitingFirstRun"
	ReasonRunMissed           = "RunMissed"
	ReasonRunFailed           = "RunFailed"
	ReasonRunInterrupted      = "RunInterrupted"
	ReasonOverdueUnknown      = "OverdueUnknown"
	ReasonDryRunOnly          = "DryRunOnly"
	ReasonOverdueRecords      = "OverdueRecords"
	ReasonNoRetentionPolicies = "NoRetentionPolicy"
	// ReasonRetentionPoliciesNotListed: the store's retention policies could
	// not be read, so enforcement is unknown (never assumed).
	ReasonRetentionPoliciesNotListed = "RetentionPoliciesNotListed"
)

// DataSubjectRights: the DossierStore control over its data-subject
// requests, which fails while a request is past its deadline undecided.
const (
	ControlDataSubjectRights = "DataSubjectRights"

	// ReasonNoOpenRequests: the store has no undecided request.
	ReasonNoOpenRequests = "NoOpenRequests"
	// ReasonRequestsWithinDeadline: every undecided request is within its
	// deadline.
	ReasonRequestsWithinDeadline = "RequestsWithinDeadline"
	// ReasonRequestsOverdue: at least one request is past its deadline and
	// not decided.
	ReasonRequestsOverdue = "RequestsOverdue"
	// ReasonRequestsNotListed: the store's requests could not be read, so
	// the control is Unknown (never assumed to pass).
	ReasonRequestsNotListed = "RequestsNotListed"
	// ReasonProxyCannotWatchRequests: the audit proxy has no Role or no
	// route to the API server to watch the requests, so it refuses every
	// request for a dossier; the control is Unknown.
	ReasonProxyCannotWatchRequests = "ProxyCannotWatchRequests"
)

// DataSubjectRequest Ready reasons (besides ReasonStoreNotFound), its
// DeadlineMet condition and its ResponseDeadline control.
const (
	// ReasonRequestTracked: the request's store exists and its deadline is
	// computed; Ready is True.
	ReasonRequestTracked = "RequestTracked"
	// ReasonInvalidResponsePeriod: the store's response period cannot be
	// used (only an API server without the CEL rules lets it through).
	ReasonInvalidResponsePeriod = "InvalidResponsePeriod"

	ConditionDeadlineMet    = "DeadlineMet"
	ControlResponseDeadline = "ResponseDeadline"

	// ReasonWithinDeadline: undecided, and the deadline has not passed.
	ReasonWithinDeadline = "WithinDeadline"
	// ReasonDecidedInTime: decided before the deadline passed.
	ReasonDecidedInTime = "DecidedInTime"
	// ReasonDeadlinePassed: undecided, and the deadline has passed.
	ReasonDeadlinePassed = "DeadlinePassed"
	// ReasonDecidedLate: decided after the deadline passed.
	ReasonDecidedLate = "DecidedLate"
)

// ObjectionScope: a condition of an Objection request saying whether what
// it names exists in the store and whether the audit proxy can enforce it
// route by route. False is a warning, not a gap: the proxy refuses by name,
// so an activity that does not exist is refused all the same, and a route
// it cannot filter is refused whole.
const (
	ConditionObjectionScope = "ObjectionScope"

	// ReasonScopeResolved: every named route and activity exists, and
	// every reached route without {dossier} declares records.
	ReasonScopeResolved = "ScopeResolved"
	// ReasonRouteNotFound: a named route is not one of the store's audited
	// routes; nothing is refused for it.
	ReasonRouteNotFound = "RouteNotFound"
	// ReasonRouteUnfilterable: a reached route has no {dossier} and no
	// records, so the proxy refuses it whole while the objection is in
	// effect (see BulkRoutesFilterable). ReasonActivityNotFound (a named
	// activity does not exist) is a reason of this condition too.
	ReasonRouteUnfilterable = "RouteUnfilterable"
)

// BulkRoutesFilterable: a DossierStore condition saying whether the audit
// proxy can leave restricted and objected-to dossiers out of the responses
// of its routes without {dossier}. False names the routes that a
// restriction or objection in force reaches and that declare no records:
// the proxy refuses them whole until spec.audit.routes[].records is added.
const (
	ConditionBulkRoutesFilterable = "BulkRoutesFilterable"

	// ReasonBulkRoutesFiltered: every route without {dossier} that an
	// effect in force reaches declares records (or none is reached).
	ReasonBulkRoutesFiltered = "BulkRoutesFiltered"
	// ReasonRouteUnfilterable (above) is its False reason.
)

// Event reasons of a DataSubjectRequest.
const (
	// ReasonRequestOverdue: the request passed its deadline undecided.
	ReasonRequestOverdue = "RequestOverdue"
	// ReasonEffectStarted and ReasonEffectEnded: a restriction or
	// objection the audit proxy enforces started or ended.
	ReasonEffectStarted = "EffectStarted"
	ReasonEffectEnded   = "EffectEnded"
	// ReasonExtensionBeyondCap: a RetentionExtension request's end date
	// lies beyond the store's cap (Warning).
	ReasonExtensionBeyondCap = "ExtensionBeyondCap"
)

// The ExtensionWithinCap condition of a RetentionExtension request: whether
// its end date lies within the store's spec.dataSubjectRights.
// maxRetentionExtension from its decision (or, undecided, its receipt).
const (
	ConditionExtensionWithinCap = "ExtensionWithinCap"

	// ReasonEndDateWithinCap: the end date is within the cap.
	ReasonEndDateWithinCap = "EndDateWithinCap"
	// ReasonEndDateBeyondCap: the end date lies beyond the cap; the request
	// is refused as far as it goes beyond it (Ready is False), and the
	// sweeper keeps the dossier no longer than the cap allows.
	ReasonEndDateBeyondCap = "EndDateBeyondCap"
	// ReasonInvalidExtensionCap: the store's cap cannot be used (only an
	// API server without the CEL rules lets it through); the sweeper does
	// not sweep the store's policies.
	ReasonInvalidExtensionCap = "InvalidExtensionCap"
)

// ProcessingActivity Ready reasons, and its PurposeLimitation and
// ActivityRetention controls.
const (
	// ReasonActivityInForce: Ready is True; everything the activity
	// promises is in force.
	ReasonActivityInForce = "ActivityInForce"

	// ControlPurposeLimitation: the roles, agreements and routes that serve
	// the activity use only the data categories it declares (AVG art.
	// 5(1)(b) and (c)).
	ControlPurposeLimitation = "PurposeLimitation"
	// ReasonCategoriesCovered: every category used under the activity is
	// one it declares.
	ReasonCategoriesCovered = "CategoriesCovered"
	// ReasonCategoriesNotDeclared: a role, agreement or route uses a
	// category under the activity that it does not declare.
	ReasonCategoriesNotDeclared = "CategoriesNotDeclared"
	// ReasonReferencesNotListed: the objects that refer to the activity
	// could not be read, so coverage is unknown.
	ReasonReferencesNotListed = "ReferencesNotListed"

	// ControlActivityRetention: the activity's RetentionPolicy exists and
	// its RetentionEnforced control passes (AVG art. 5(1)(e)).
	ControlActivityRetention = "ActivityRetention"
	// ReasonRetentionPasses: the RetentionPolicy exists and passes.
	ReasonRetentionPasses = "RetentionPolicyPasses"
	// ReasonRetentionPolicyNotFound: the named RetentionPolicy does not exist.
	ReasonRetentionPolicyNotFound = "RetentionPolicyNotFound"
	// ReasonRetentionPolicyFailing: the RetentionPolicy exists but its
	// RetentionEnforced control does not pass (or has no result yet).
	ReasonRetentionPolicyFailing = "RetentionPolicyFailing"
)

// ActivityAssigned: a condition of AccessRoles and SharingAgreements (and
// a summary condition of DossierStores for their spec.audit.routes) saying
// whether they name the processing activities they serve, and whether
// those exist. False is a warning: the object keeps working as before, but
// the audit proxy cannot limit its requests by purpose. It counts towards
// neither Ready nor Compliant.
const (
	ConditionActivityAssigned = "ActivityAssigned"

	// ReasonActivitiesFound: every named activity exists (for a store:
	// every route names activities, and they exist; or it has no routes).
	ReasonActivitiesFound = "ActivitiesFound"
	// ReasonNoActivity: the object names no processing activity (for a
	// store: at least one route names none).
	ReasonNoActivity = "NoActivity"
	// ReasonActivityNotFound: a named activity does not exist; requests
	// under it are still decided by the names alone.
	ReasonActivityNotFound = "ActivityNotFound"
	// ReasonActivitiesNotListed: the namespace's activities could not be
	// read, so whether the routes' activities exist is unknown (a store's
	// condition is then Unknown).
	ReasonActivitiesNotListed = "ActivitiesNotListed"
)

// Labels dossierguard sets on the objects it manages, and reads.
const (
	// LabelStore names the DossierStore an object belongs to. On a pod it
	// must agree with the store's workload selector; the webhook sets it on
	// the pods it injects.
	LabelStore = "privacy.dossierguard.io/store"
	// LabelAgreement marks the NetworkPolicy of a SharingAgreement.
	LabelAgreement = "privacy.dossierguard.io/sharing-agreement"
	// LabelStoreNamespace is the namespace of the store a cluster-scoped
	// object (the egress gateway's TokenReview binding) belongs to.
	LabelStoreNamespace = "privacy.dossierguard.io/store-namespace"
	// LabelEgressGateway names the store whose egress gateway a pod runs.
	LabelEgressGateway = "privacy.dossierguard.io/egress-gateway"
	// LabelRetentionPolicy marks the sweeper objects of a RetentionPolicy.
	LabelRetentionPolicy = "privacy.dossierguard.io/retention-policy"
)

// Annotations dossierguard sets or reads.
const (
	// AnnotationEncryptedAtRest on a StorageClass, set to "true" by the
	// platform team, attests encryption at rest where the parameters cannot
	// prove it.
	AnnotationEncryptedAtRest = "privacy.dossierguard.io/encrypted-at-rest"
	// AnnotationRetained on a released dossier volume claim names the
	// deleted store it came from.
	AnnotationRetained = "privacy.dossierguard.io/retained-from-store"
	// AnnotationPolicyHash on the access-policy ConfigMap is the SHA-256 of
	// the rendered policy.
	AnnotationPolicyHash = "privacy.dossierguard.io/policy-sha256"
	// AnnotationReportHash on a compliance report (an OpenReports Report or
	// a PolicyReport) is the SHA-256 of what dossierguard wrote into it (its
	// source, scope, summary and results), so that the manager can tell a
	// report in step from its metadata alone.
	AnnotationReportHash = "privacy.dossierguard.io/report-sha256"
	// AnnotationAppliedHash on a child dossierguard applies (a Role,
	// RoleBinding, NetworkPolicy, ServiceAccount or CronJob) is the SHA-256
	// of the configuration it applied, so that the manager can tell the
	// child in step from its metadata, and cache the child without the
	// content it wrote.
	AnnotationAppliedHash = "privacy.dossierguard.io/applied-sha256"
	// AnnotationAuditProxy is "injected" on a pod the webhook has given the
	// audit proxy.
	AnnotationAuditProxy = "privacy.dossierguard.io/audit-proxy"
	// AnnotationRotateSigningKey on a DossierStore asks for a new version of
	// its checkpoint signing key now: each new value (such as the date, or
	// an incident number) adds one version, as a rotation that falls due
	// does. The value is recorded on the signing Secret when honoured.
	AnnotationRotateSigningKey = "privacy.dossierguard.io/rotate-signing-key"

	// Break-glass access to a store's workload pods (kubectl exec, attach,
	// port-forward and debug), which the admission webhook otherwise
	// refuses. A member of a configured break-glass group sets both
	// annotations on the pod; until the moment in AnnotationBreakGlassUntil,
	// members of those groups may reach the pod, and every access is
	// recorded as an Event on the pod (ReasonBreakGlassAccess).

	// AnnotationBreakGlassJustification says why the pod must be reached
	// directly, such as an incident number: 10 to 200 printable characters,
	// no control or bidirectional formatting characters. It must not hold
	// personal data; the Event records only a digest of it.
	AnnotationBreakGlassJustification = "privacy.dossierguard.io/break-glass-justification"
	// AnnotationBreakGlassUntil is when the break-glass window closes, an
	// RFC 3339 time at most the webhook's maximum window (1h by default)
	// ahead.
	AnnotationBreakGlassUntil = "privacy.dossierguard.io/break-glass-until"
)

// Event reasons of the admission webhook.
const (
	// ReasonBreakGlassAccess: a break-glass exec, attach, port-forward or
	// ephemeral container was admitted on a store's workload pod.
	ReasonBreakGlassAccess = "BreakGlassAccess"
)

// StoreFinalizer keeps a DossierStore until its dossier volume has been
// released (or, with deletionPolicy Delete, handed to garbage collection).
const StoreFinalizer = "privacy.dossierguard.io/dossier-volume"

// ReportSource is the source of the OpenReports Reports (and PolicyReports)
// that dossierguard writes, one per resource, at the report and at each
// result: what Policy Reporter and `kubectl get reports` show as the source.
const ReportSource = "dossierguard"
