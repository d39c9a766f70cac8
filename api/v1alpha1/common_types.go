package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DataCategory is a kind of personal data held in a dossier. The vocabulary is
// fixed so that stores, roles and agreements speak about the same things:
//
//   - identity: name, date of birth, address
//   - bsn: the citizen service number (burgerservicenummer)
//   - contact: phone, e-mail, contact persons
//   - request: the request for help (hulpvraag)
//   - plan: the support plan (plan van aanpak, perspectiefplan)
//   - reports: case notes and reports (verslaglegging)
//   - decisions: decisions and orders (beschikkingen)
//   - health: health data (special category, AVG art. 9)
//   - safety: safety assessments and reports of abuse (Meldcode)
//   - finance: income, debts, benefits, invoices
//   - family: family composition and relations
//
// +kubebuilder:validation:Enum=identity;bsn;contact;request;plan;reports;decisions;health;safety;finance;family
type DataCategory string

// The data categories.
const (
	CategoryIdentity  DataCategory = "identity"
	CategoryBSN       DataCategory = "bsn"
	CategoryContact   DataCategory = "contact"
	CategoryRequest   DataCategory = "request"
	CategoryPlan      DataCategory = "plan"
	CategoryReports   DataCategory = "reports"
	CategoryDecisions DataCategory = "decisions"
	CategoryHealth    DataCategory = "health"
	CategorySafety    DataCategory = "safety"
	CategoryFinance   DataCategory = "finance"
	CategoryFamily    DataCategory = "family"
)

// AllDataCategories lists the whole vocabulary in its canonical order.
var AllDataCategories = []DataCategory{
	CategoryIdentity, CategoryBSN, CategoryContact, CategoryRequest, CategoryPlan, CategoryReports,
	CategoryDecisions, CategoryHealth, CategorySafety, CategoryFinance, CategoryFamily,
}

// Action is what a role may do with the categories it grants, and what an
// audited route does with the categories it touches.
// +kubebuilder:validation:Enum=read;write;export
type Action string

// The actions.
const (
	ActionRead   Action = "read"
	ActionWrite  Action = "write"
	ActionExport Action = "export"
)

// Period is an ISO 8601 duration with exactly one positive date unit: years
// (P20Y), months (P6M), weeks (P4W) or days (P30D). Retention periods and
// review periods use it.
// +kubebuilder:validation:MaxLength=8
// +kubebuilder:validation:XValidation:rule="self.matches('^P[1-9][0-9]{0,3}[YMWD]$')",message="must be an ISO 8601 period with one positive unit, such as P20Y, P6M, P4W or P30D"
type Period string

// RetentionPeriod is a rule's retention period: a Period, or P0D, which
// destroys a record as soon as its clock event has passed: at the end of
// the involvement ("na onze betrokkenheid verwijderen we deze gegevens
// weer"). P0D is only allowed with the clock events EndOfHelp and Closure
// (a rule's validation says so).
// +kubebuilder:validation:MaxLength=8
// +kubebuilder:validation:XValidation:rule="self == 'P0D' || self.matches('^P[1-9][0-9]{0,3}[YMWD]$')",message="must be P0D (at the end of the involvement) or an ISO 8601 period with one positive unit, such as P20Y, P6M, P4W or P30D"
type RetentionPeriod string

// EndOfInvolvement is the retention period P0D: destroy as soon as the
// involvement has ended.
const EndOfInvolvement RetentionPeriod = "P0D"

// StoreReference names a DossierStore in the same namespace.
type StoreReference struct {
	// Name of the DossierStore, in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
}

// ComplianceResult is the outcome of one control.
// +kubebuilder:validation:Enum=Pass;Fail;Unknown
type ComplianceResult string

// The compliance results.
const (
	ResultPass    ComplianceResult = "Pass"
	ResultFail    ComplianceResult = "Fail"
	ResultUnknown ComplianceResult = "Unknown"
)

// ComplianceControl is one privacy control as an auditor reads it: what is
// checked, which law or standard asks for it, the outcome and the names of
// the objects that prove it. It never holds personal data or key material.
type ComplianceControl struct {
	// Control names the check, for example EncryptionAtRest.
	Control string `json:"control"`
	// Reference is the AVG article or BIO control the check serves, for
	// example "AVG art. 32(1)(a); BIO 10.1.1".
	Reference string `json:"reference"`
	// Result of the check.
	Result ComplianceResult `json:"result"`
	// Reason is a CamelCase word for the outcome.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message explains the outcome in plain words.
	// +optional
	Message string `json:"message,omitempty"`
	// Evidence lists the objects and settings that prove the outcome, such
	// as "StorageClass/encrypted-ssd: encrypted=true".
	// +optional
	// +listType=atomic
	Evidence []string `json:"evidence,omitempty"`
}

// CommonStatus is embedded in the status of every kind.
type CommonStatus struct {
	// ObservedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Compliant, and one per control.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
	// Compliance lists each privacy control with its result and evidence.
	// +optional
	// +listType=map
	// +listMapKey=control
	Compliance []ComplianceControl `json:"compliance,omitempty"`
}
