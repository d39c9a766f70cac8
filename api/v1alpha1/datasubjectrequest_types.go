package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RequestType is the right a family exercises (AVG art. 15 to 21).
// +kubebuilder:validation:Enum=Access;Rectification;Completion;Erasure;Restriction;Objection;RetentionExtension
type RequestType string

// The request types.
const (
	// RequestAccess: inzage and a copy of the dossier (AVG art. 15).
	RequestAccess RequestType = "Access"
	// RequestRectification: correction (AVG art. 16).
	RequestRectification RequestType = "Rectification"
	// RequestCompletion: a statement added to the dossier (AVG art. 16).
	RequestCompletion RequestType = "Completion"
	// RequestErasure: destruction of the dossier (AVG art. 17).
	RequestErasure RequestType = "Erasure"
	// RequestRestriction: afscherming (AVG art. 18).
	RequestRestriction RequestType = "Restriction"
	// RequestObjection: verzet against a processing (AVG art. 21).
	RequestObjection RequestType = "Objection"
	// RequestRetentionExtension: keep the dossier longer on the family's
	// request (langer bewaren op verzoek; AVG art. 17(3), Jeugdwet art.
	// 7.3.8), until an end date. The retention sweeper keeps the dossier's
	// records that would be due until then.
	RequestRetentionExtension RequestType = "RetentionExtension"
)

// RequesterRelation is who makes the request, relative to the data subject.
// +kubebuilder:validation:Enum=Self;Parent;Guardian;LegalRepresentative
type RequesterRelation string

// The requester relations.
const (
	RelationSelf                RequesterRelation = "Self"
	RelationParent              RequesterRelation = "Parent"
	RelationGuardian            RequesterRelation = "Guardian"
	RelationLegalRepresentative RequesterRelation = "LegalRepresentative"
)

// AgeBand is the data subject's age at receipt, in the bands the law
// distinguishes: under 12 the parents act; from 12 to 15 the child
// co-decides; from 16 the young person's own consent is needed.
// +kubebuilder:validation:Enum=Under12;From12To15;From16To17;Adult
type AgeBand string

// The age bands.
const (
	AgeUnder12    AgeBand = "Under12"
	AgeFrom12To15 AgeBand = "From12To15"
	AgeFrom16To17 AgeBand = "From16To17"
	AgeAdult      AgeBand = "Adult"
)

// DecisionOutcome is the decision on a request.
// +kubebuilder:validation:Enum=Granted;PartiallyGranted;Refused
type DecisionOutcome string

// The decision outcomes.
const (
	DecisionGranted          DecisionOutcome = "Granted"
	DecisionPartiallyGranted DecisionOutcome = "PartiallyGranted"
	DecisionRefused          DecisionOutcome = "Refused"
)

// RefusalGround is a documented ground for refusing (part of) a request
// (AVG art. 12(5), art. 23; UAVG art. 41; Jeugdwet art. 7.3.11(4)).
// +kubebuilder:validation:Enum=PrivacyOfOthers;CriminalInvestigation;InterestOfTheChild;ManifestlyUnfoundedOrExcessive
type RefusalGround string

// The refusal grounds.
const (
	// GroundPrivacyOfOthers: the privacy of others (other family members,
	// a reporter) would be harmed.
	GroundPrivacyOfOthers RefusalGround = "PrivacyOfOthers"
	// GroundCriminalInvestigation: the prevention, investigation or
	// prosecution of criminal offences.
	GroundCriminalInvestigation RefusalGround = "CriminalInvestigation"
	// GroundInterestOfTheChild: the interest of the child.
	GroundInterestOfTheChild RefusalGround = "InterestOfTheChild"
	// GroundManifestlyUnfounded: the request is manifestly unfounded or
	// excessive (AVG art. 12(5)).
	GroundManifestlyUnfounded RefusalGround = "ManifestlyUnfoundedOrExcessive"
)

// DossierPseudonym is the keyed pseudonym of a dossier id: the lowercase hex
// HMAC-SHA-256 the audit proxy records, made with the store's pseudonym key
// (`dossierguard pseudonym` prints it). A BSN, a name or a raw dossier id
// does not have this shape and is refused.
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]{64}$')",message="must be the dossier's pseudonym (64 lowercase hex digits, printed by dossierguard pseudonym), never a BSN, name or raw dossier id"
type DossierPseudonym string

// Requester is who made the request, without naming them.
type Requester struct {
	// Relation of the requester to the data subject.
	Relation RequesterRelation `json:"relation"`
}

// DataSubject describes the person the dossier is about, without naming
// them.
type DataSubject struct {
	// AgeBand at receipt of the request.
	AgeBand AgeBand `json:"ageBand"`
}

// DeadlineExtension extends the response period by one or two months (AVG
// art. 12(3)), with the reason recorded; the family must be told within the
// first period.
type DeadlineExtension struct {
	// Months added to the deadline: 1 or 2.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2
	Months int32 `json:"months"`
	// Reason for the extension, such as the complexity or number of
	// requests; no personal data.
	// +kubebuilder:validation:MinLength=10
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`
}

// RestrictionSpec is what a restriction covers.
type RestrictionSpec struct {
	// Categories restricted; empty means the whole dossier.
	// +optional
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	Categories []DataCategory `json:"categories,omitempty"`
	// ExemptRoles are AccessRoles of the store whose holders still reach
	// the dossier, such as the privacy officer handling the request.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=63
	ExemptRoles []string `json:"exemptRoles,omitempty"`
}

// ObjectionSpec is the processing objected to: the routes the store's audit
// proxy refuses for the dossier, named directly, through the processing
// activities they serve, or both.
// +kubebuilder:validation:XValidation:rule="(has(self.routes) && size(self.routes) > 0) || (has(self.activities) && size(self.activities) > 0)",message="spec.objection needs routes, activities or both: name the store's audited routes or the ProcessingActivities objected to"
type ObjectionSpec struct {
	// Purpose objected to, in plain words, such as "tevredenheidsonderzoek".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Purpose string `json:"purpose"`
	// Routes are the store's audited routes that serve that purpose; the
	// audit proxy refuses them for this dossier.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=63
	Routes []string `json:"routes,omitempty"`
	// Activities are ProcessingActivities of the namespace objected to: the
	// audit proxy refuses, for this dossier, every route of the store that
	// serves one of them (a route without processingActivities serves the
	// store's spec.audit.processingActivity), and leaves the dossier out of
	// the responses of such routes that declare records. A name that does
	// not exist is refused all the same.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	Activities []ActivityName `json:"activities,omitempty"`
}

// ChildInterestWeighing records the decision to erase a dossier while a
// statutory retention minimum still applies to it: the weighing of the
// request against the interest of the child (Jeugdwet art. 7.3.9), taken
// and documented outside the cluster.
type ChildInterestWeighing struct {
	// Reference of the documented weighing, such as the number of the
	// decision memo; no personal data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="!self.matches('[0-9]{9}')",message="spec.erasure.childInterestWeighing.reference must hold no personal data: no nine-digit number such as a BSN"
	Reference string `json:"reference"`
	// DecidedBy is who took the decision: a role or staff account, such
	// as "gedragswetenschapper".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	DecidedBy string `json:"decidedBy"`
}

// ErasureSpec is what an Erasure request needs beyond its decision.
type ErasureSpec struct {
	// ChildInterestWeighing lets the erasure go ahead for records whose
	// statutory retention minimum has not passed yet. Without it such
	// records, and so the dossier, are kept and the status says
	// WeighingRequired.
	// +optional
	ChildInterestWeighing *ChildInterestWeighing `json:"childInterestWeighing,omitempty"`
	// NotBefore is the day (YYYY-MM-DD, Europe/Amsterdam) from which the
	// granted erasure is carried out (eerder vernietigen op verzoek, on a
	// recorded date): the sweeper erases the dossier on its first run from
	// the start of that day, not before. Without it the erasure is carried
	// out at once.
	// +optional
	// +kubebuilder:validation:Format=date
	// +kubebuilder:validation:MaxLength=10
	NotBefore string `json:"notBefore,omitempty"`
}

// RetentionExtensionSpec is what a RetentionExtension request asks for: the
// dossier is kept until an end date.
type RetentionExtensionSpec struct {
	// Until is the last day (YYYY-MM-DD, Europe/Amsterdam) the dossier's
	// records are kept beyond their retention period; from the start of the
	// next day they are due again as normal. It may lie at most the store's
	// spec.dataSubjectRights.maxRetentionExtension beyond the decision.
	// +kubebuilder:validation:Format=date
	// +kubebuilder:validation:MaxLength=10
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.retentionExtension.until is immutable: file a new request for another end date, or end this one with spec.endedAt"
	Until string `json:"until"`
	// Reference of the documented request or decision, such as the number
	// of the letter; no personal data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="!self.matches('[0-9]{9}')",message="spec.retentionExtension.reference must hold no personal data: no nine-digit number such as a BSN"
	Reference string `json:"reference"`
}

// RequestDecision is the decision on a request.
// +kubebuilder:validation:XValidation:rule="self.outcome == 'Granted' || (has(self.refusalGrounds) && size(self.refusalGrounds) > 0)",message="spec.decision.refusalGrounds: a Refused or PartiallyGranted decision needs at least one documented ground"
// +kubebuilder:validation:XValidation:rule="self.outcome == 'Granted' || (has(self.explanation) && size(self.explanation) >= 10)",message="spec.decision.explanation: a Refused or PartiallyGranted decision needs an explanation (at least 10 characters, without personal data)"
// +kubebuilder:validation:XValidation:rule="self.outcome != 'Granted' || !has(self.refusalGrounds)",message="spec.decision.refusalGrounds is only allowed when the outcome is Refused or PartiallyGranted"
type RequestDecision struct {
	// Outcome of the request.
	Outcome DecisionOutcome `json:"outcome"`
	// DecidedAt is when the decision was taken; effects start then.
	DecidedAt metav1.Time `json:"decidedAt"`
	// RefusalGrounds for a refusal or a partial grant.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	RefusalGrounds []RefusalGround `json:"refusalGrounds,omitempty"`
	// Explanation of the decision, as the family reads it; no personal
	// data (no names, no BSN).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="!self.matches('[0-9]{9}')",message="spec.decision.explanation must hold no personal data: no nine-digit number such as a BSN"
	Explanation string `json:"explanation,omitempty"`
}

// DataSubjectRequestSpec is a family's request about one dossier.
// +kubebuilder:validation:XValidation:rule="!(self.subject.ageBand in ['From16To17', 'Adult']) || !(self.requester.relation in ['Parent', 'Guardian']) || (has(self.consentReference) && size(self.consentReference) > 0)",message="spec.consentReference is required: from 16 a parent's or guardian's request needs the young person's consent"
// +kubebuilder:validation:XValidation:rule="self.subject.ageBand != 'From12To15' || self.requester.relation == 'Self' || (has(self.coDecisionReference) && size(self.coDecisionReference) > 0)",message="spec.coDecisionReference is required: from 12 to 15 the child's co-decision is recorded"
// +kubebuilder:validation:XValidation:rule="self.type == 'Restriction' || !has(self.restriction)",message="spec.restriction is only allowed when spec.type is Restriction"
// +kubebuilder:validation:XValidation:rule="self.type == 'Objection' ? has(self.objection) : !has(self.objection)",message="spec.objection is required when spec.type is Objection, and only allowed then"
// +kubebuilder:validation:XValidation:rule="self.type == 'Erasure' || !has(self.erasure)",message="spec.erasure is only allowed when spec.type is Erasure"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.erasure) || !has(oldSelf.erasure.childInterestWeighing) || (has(self.erasure) && has(self.erasure.childInterestWeighing))",message="spec.erasure.childInterestWeighing cannot be removed once recorded"
// +kubebuilder:validation:XValidation:rule="!has(self.erasure) || !has(self.erasure.notBefore) || self.erasure.notBefore + duration('86399s') >= self.receivedAt",message="spec.erasure.notBefore must not be before the day of spec.receivedAt"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.decision) || ((has(oldSelf.erasure) && has(oldSelf.erasure.notBefore)) ? (has(self.erasure) && has(self.erasure.notBefore) && self.erasure.notBefore == oldSelf.erasure.notBefore) : !(has(self.erasure) && has(self.erasure.notBefore)))",message="spec.erasure.notBefore is part of the decision: it cannot be set, changed or removed once spec.decision is recorded"
// +kubebuilder:validation:XValidation:rule="self.type == 'RetentionExtension' ? has(self.retentionExtension) : !has(self.retentionExtension)",message="spec.retentionExtension is required when spec.type is RetentionExtension, and only allowed then"
// +kubebuilder:validation:XValidation:rule="!has(self.retentionExtension) || self.retentionExtension.until > self.receivedAt",message="spec.retentionExtension.until must be after spec.receivedAt"
// +kubebuilder:validation:XValidation:rule="!has(self.endedAt) || has(self.decision)",message="spec.endedAt needs spec.decision: a request ends after it was decided"
// +kubebuilder:validation:XValidation:rule="!has(self.endedAt) || !has(self.decision) || self.endedAt >= self.decision.decidedAt",message="spec.endedAt must not be before spec.decision.decidedAt"
// +kubebuilder:validation:XValidation:rule="!has(self.decision) || self.decision.decidedAt >= self.receivedAt",message="spec.decision.decidedAt must not be before spec.receivedAt"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.decision) || has(self.decision)",message="spec.decision cannot be removed once recorded"
type DataSubjectRequestSpec struct {
	// StoreRef names the DossierStore that holds the dossier.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.storeRef is immutable"
	StoreRef StoreReference `json:"storeRef"`
	// Type of the request.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.type is immutable: file a new request for another right"
	Type RequestType `json:"type"`
	// Dossier is the dossier's pseudonym under the store's pseudonym key.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.dossier is immutable"
	Dossier DossierPseudonym `json:"dossier"`
	// ReceivedAt is when the request was received; the deadline runs from
	// it.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.receivedAt is immutable: the deadline runs from the receipt"
	ReceivedAt metav1.Time `json:"receivedAt"`
	// Requester is who made the request.
	Requester Requester `json:"requester"`
	// Subject is the person the dossier is about.
	Subject DataSubject `json:"subject"`
	// ConsentReference records the young person's consent (from 16) to a
	// parent's or guardian's request, such as the number of the signed form.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ConsentReference string `json:"consentReference,omitempty"`
	// CoDecisionReference records the child's co-decision (12 to 15), such
	// as the number of the conversation report.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	CoDecisionReference string `json:"coDecisionReference,omitempty"`
	// Handler is who handles the request: a team or staff account, such as
	// "privacy-officer".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Handler string `json:"handler"`
	// Restriction limits a Restriction request to categories and exempts
	// roles; without it the whole dossier is restricted for everyone.
	// +optional
	Restriction *RestrictionSpec `json:"restriction,omitempty"`
	// Objection names the processing objected to; required for Objection.
	// +optional
	Objection *ObjectionSpec `json:"objection,omitempty"`
	// Erasure holds the child's-interest weighing of an Erasure request,
	// and the day it is carried out from.
	// +optional
	Erasure *ErasureSpec `json:"erasure,omitempty"`
	// RetentionExtension is the end date and reference of a
	// RetentionExtension request; required for that type.
	// +optional
	RetentionExtension *RetentionExtensionSpec `json:"retentionExtension,omitempty"`
	// Extension of the deadline by one or two months, with a reason.
	// +optional
	Extension *DeadlineExtension `json:"extension,omitempty"`
	// Decision on the request, once taken.
	// +optional
	Decision *RequestDecision `json:"decision,omitempty"`
	// EndedAt is when the request's effects end: a restriction is lifted,
	// an objection withdrawn, a retention extension ended before its end
	// date. Deleting the request ends them too.
	// +optional
	EndedAt *metav1.Time `json:"endedAt,omitempty"`
}

// RequestState is where a request stands.
// +kubebuilder:validation:Enum=Open;Overdue;Decided;InEffect;Ended
type RequestState string

// The request states.
const (
	// StateOpen: not decided yet, within the deadline.
	StateOpen RequestState = "Open"
	// StateOverdue: not decided, and the deadline has passed.
	StateOverdue RequestState = "Overdue"
	// StateDecided: decided; nothing is enforced (any refusal, or a type
	// without an effect at the proxy).
	StateDecided RequestState = "Decided"
	// StateInEffect: a granted restriction or objection the audit proxy
	// enforces, or a granted retention extension the sweeper honours.
	StateInEffect RequestState = "InEffect"
	// StateEnded: the effects have ended (spec.endedAt passed, or a
	// retention extension's end date).
	StateEnded RequestState = "Ended"
)

// ErasureResult is what the sweeper of one RetentionPolicy did with a
// granted Erasure request.
// +kubebuilder:validation:Enum=Erased;Held;WeighingRequired;Failed
type ErasureResult string

// The erasure results.
const (
	// ErasureErased: every record of the dossier in the policy's tables
	// was destroyed (or anonymised), possibly none.
	ErasureErased ErasureResult = "Erased"
	// ErasureHeld: a record of the dossier is under legal hold; nothing
	// of the dossier was destroyed.
	ErasureHeld ErasureResult = "Held"
	// ErasureWeighingRequired: a statutory minimum still applies to a
	// record of the dossier and spec.erasure.childInterestWeighing is not
	// recorded; nothing was destroyed.
	ErasureWeighingRequired ErasureResult = "WeighingRequired"
	// ErasureFailed: the database failed; nothing was destroyed. The next
	// sweep tries again.
	ErasureFailed ErasureResult = "Failed"
)

// ErasureTable counts what an erasure did in one rule's table.
type ErasureTable struct {
	// Rule of the policy.
	Rule string `json:"rule"`
	// Table of the rule.
	Table string `json:"table"`
	// Destroyed records of the dossier.
	Destroyed int64 `json:"destroyed"`
	// Anonymised records of the dossier.
	Anonymised int64 `json:"anonymised"`
	// Held records of the dossier (under legal hold, or within the
	// statutory minimum without a weighing).
	Held int64 `json:"held"`
}

// ErasureRun is the proof of destruction of one dossier by the sweeper of
// one RetentionPolicy: counts and a digest, no identifiers.
type ErasureRun struct {
	// Policy whose sweeper ran the erasure.
	Policy string `json:"policy"`
	// Time of the erasure.
	Time metav1.Time `json:"time"`
	// Result of the erasure.
	Result ErasureResult `json:"result"`
	// Tables, per rule; rules without a dossierColumn are not listed.
	// +optional
	// +listType=map
	// +listMapKey=rule
	Tables []ErasureTable `json:"tables,omitempty"`
	// SkippedRules are the policy's rules without a dossierColumn, which
	// take no part in erasure.
	// +optional
	// +listType=set
	SkippedRules []string `json:"skippedRules,omitempty"`
	// ProofDigest is the SHA-256 of the erasure's proof-of-destruction
	// record, which the sweeper prints as one JSON line.
	// +optional
	ProofDigest string `json:"proofDigest,omitempty"`
}

// RetentionExtensionStatus is the retention extension the sweeper honours.
type RetentionExtensionStatus struct {
	// KeptUntil is the last day (Europe/Amsterdam) the dossier is kept by
	// the extension: spec.retentionExtension.until, or the last day the
	// store's cap allows when the end date lies beyond it.
	KeptUntil string `json:"keptUntil"`
	// EndsAt is the moment the extension ends: the start of the day after
	// KeptUntil, or spec.endedAt when that is earlier.
	EndsAt metav1.Time `json:"endsAt"`
	// MaxRetentionExtension is the store's cap the end date was checked
	// against.
	MaxRetentionExtension string `json:"maxRetentionExtension"`
}

// DataSubjectRequestStatus is the observed state of a DataSubjectRequest.
type DataSubjectRequestStatus struct {
	CommonStatus `json:",inline"`

	// DueDate is the last day to decide, in Europe/Amsterdam (YYYY-MM-DD).
	// +optional
	DueDate string `json:"dueDate,omitempty"`
	// DueAt is the moment the deadline passes: the start of the day after
	// DueDate in Europe/Amsterdam.
	// +optional
	DueAt *metav1.Time `json:"dueAt,omitempty"`
	// State of the request.
	// +optional
	State RequestState `json:"state,omitempty"`
	// ResponsePeriod is the store's period the deadline was computed from.
	// +optional
	ResponsePeriod string `json:"responsePeriod,omitempty"`
	// RetentionExtension is the decision in effect of a granted
	// RetentionExtension request: until when the sweeper keeps the
	// dossier.
	// +optional
	RetentionExtension *RetentionExtensionStatus `json:"retentionExtension,omitempty"`
	// ErasureNotBefore is the moment from which the sweeper carries out a
	// granted Erasure request with spec.erasure.notBefore: the start of
	// that day in Europe/Amsterdam.
	// +optional
	ErasureNotBefore *metav1.Time `json:"erasureNotBefore,omitempty"`
	// Erasure is the proof of destruction of a granted Erasure request,
	// one entry per RetentionPolicy of the store, written by its sweeper.
	// +optional
	// +listType=map
	// +listMapKey=policy
	Erasure []ErasureRun `json:"erasure,omitempty"`
	// Objection is what a granted Objection refuses, as the operator
	// reads it from the store's routes.
	// +optional
	Objection *ObjectionStatus `json:"objection,omitempty"`
}

// ObjectionStatus is the reach of an objection over the store's routes.
type ObjectionStatus struct {
	// Routes of the store the objection reaches, sorted: those it names
	// that exist, and those that serve one of its activities.
	// +optional
	// +listType=set
	Routes []string `json:"routes,omitempty"`
	// Activities the objection names, sorted; the condition ObjectionScope
	// says whether each exists.
	// +optional
	// +listType=set
	Activities []string `json:"activities,omitempty"`
	// FilteredRoutes are the reached routes without {dossier} that declare
	// records: the audit proxy leaves the dossier's items out of their
	// responses.
	// +optional
	// +listType=set
	FilteredRoutes []string `json:"filteredRoutes,omitempty"`
	// UnfilterableRoutes are the reached routes without {dossier} and
	// without records: the audit proxy cannot leave the dossier out of
	// their responses, so it refuses them whole, for every caller, while
	// the objection is in effect.
	// +optional
	// +listType=set
	UnfilterableRoutes []string `json:"unfilterableRoutes,omitempty"`
}

// DataSubjectRequest is a family's request to exercise a right on one
// dossier (inzage, correctie, aanvulling, verwijdering, afscherming,
// verzet), referred to by pseudonym only, with its deadline and decision.
// The audit proxy enforces a granted restriction or objection.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dsr,categories=privacy
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.storeRef.name`
// +kubebuilder:printcolumn:name="Due",type=string,JSONPath=`.status.dueDate`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Decision",type=string,JSONPath=`.spec.decision.outcome`
// +kubebuilder:printcolumn:name="Handler",type=string,JSONPath=`.spec.handler`,priority=1
// +kubebuilder:printcolumn:name="Received",type=date,JSONPath=`.spec.receivedAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DataSubjectRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DataSubjectRequestSpec   `json:"spec"`
	Status DataSubjectRequestStatus `json:"status,omitempty"`
}

// DataSubjectRequestList is a list of DataSubjectRequests.
// +kubebuilder:object:root=true
type DataSubjectRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DataSubjectRequest `json:"items"`
}

func init() {
	SchemeBuilder.Register(&DataSubjectRequest{}, &DataSubjectRequestList{})
}
