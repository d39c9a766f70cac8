package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubjectKind is the kind of identity a role is granted to.
// +kubebuilder:validation:Enum=User;Group;ServiceAccount
type SubjectKind string

// The subject kinds.
const (
	SubjectUser           SubjectKind = "User"
	SubjectGroup          SubjectKind = "Group"
	SubjectServiceAccount SubjectKind = "ServiceAccount"
)

// Subject is a user, group or service account as the identity provider (or
// Kubernetes, for service accounts) names it.
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' ? has(self.namespace) : !has(self.namespace)",message="namespace is required for a ServiceAccount subject and not allowed for User or Group"
type Subject struct {
	// Kind of subject.
	Kind SubjectKind `json:"kind"`
	// Name as it appears in the identity token (subject, e-mail or group)
	// or the ServiceAccount's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// Namespace of a ServiceAccount subject.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// BreakGlass marks a role as emergency access: it may be used only with a
// stated reason, every use is flagged for review, and the role itself must
// be reviewed every ReviewPeriod.
type BreakGlass struct {
	// ReviewPeriod is how often the role must be reviewed, such as P30D.
	ReviewPeriod Period `json:"reviewPeriod"`
	// LastReviewed is when the role was last reviewed; until then its
	// creation counts.
	// +optional
	LastReviewed *metav1.Time `json:"lastReviewed,omitempty"`
}

// AccessRoleSpec grants data categories of one store, for a purpose, to
// users, groups or service accounts.
// +kubebuilder:validation:XValidation:rule="!has(self.breakGlass) || (has(self.justification) && size(self.justification) >= 20)",fieldPath=".justification",reason=FieldValueRequired,message="spec.justification of at least 20 characters is required for a break-glass role"
// +kubebuilder:validation:XValidation:rule="size(self.categories) < 11 || (has(self.justification) && size(self.justification) >= 20)",fieldPath=".justification",reason=FieldValueRequired,message="spec.justification of at least 20 characters is required for a role that grants every data category"
type AccessRoleSpec struct {
	// StoreRef names the DossierStore whose data the role grants.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.storeRef is immutable: create a new role for another store"
	StoreRef StoreReference `json:"storeRef"`

	// Subjects the role is granted to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(s, self.exists_one(t, t.kind == s.kind && t.name == s.name))",message="spec.subjects must not list the same subject twice"
	Subjects []Subject `json:"subjects"`

	// Categories of data the role may access: only what the work needs.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	Categories []DataCategory `json:"categories"`

	// Actions the role may perform on those categories.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	// +listType=set
	Actions []Action `json:"actions"`

	// Purpose of the access (doelbinding), in words: documentation for
	// people, shown in the role's compliance message, the compliance report
	// and a family's access report. Audit events do not record it and the
	// proxy does not check it: an event records the ProcessingActivity the
	// request was allowed under (see processingActivities), which is where
	// purpose limitation is enforced.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=256
	Purpose string `json:"purpose"`

	// ProcessingActivities the role serves: ProcessingActivities in the same
	// namespace. The audit proxy lets the role use a route only under an
	// activity both name. A role without activities keeps working as before
	// (its routes are not limited by purpose) and is marked with the
	// ActivityAssigned condition False; see docs/processing-register.md.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	ProcessingActivities []ActivityName `json:"processingActivities,omitempty"`

	// AssignedCasesOnly limits the role to dossiers the caller is assigned
	// to, as the store's assignment source says.
	// +optional
	AssignedCasesOnly bool `json:"assignedCasesOnly,omitempty"`

	// BreakGlass makes this an emergency-access role.
	// +optional
	BreakGlass *BreakGlass `json:"breakGlass,omitempty"`

	// Justification explains why the role needs what it grants; required
	// for break-glass roles and roles that grant every category.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Justification string `json:"justification,omitempty"`
}

// AccessRoleStatus is the observed state of an AccessRole.
type AccessRoleStatus struct {
	CommonStatus `json:",inline"`

	// PolicyConfigMap is the rendered access policy that includes the role.
	// +optional
	PolicyConfigMap string `json:"policyConfigMap,omitempty"`
	// PolicyHash is the SHA-256 of the rendered access-policy document.
	// +optional
	PolicyHash string `json:"policyHash,omitempty"`
	// ReviewDue is when a break-glass role must next be reviewed.
	// +optional
	ReviewDue *metav1.Time `json:"reviewDue,omitempty"`
}

// AccessRole grants need-to-know access to data categories of one store:
// who may do what with which categories, for which purpose, optionally only
// for assigned cases, optionally as break-glass access.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=arole,categories=privacy
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.storeRef.name`
// +kubebuilder:printcolumn:name="Categories",type=string,JSONPath=`.spec.categories`
// +kubebuilder:printcolumn:name="Actions",type=string,JSONPath=`.spec.actions`
// +kubebuilder:printcolumn:name="Assigned",type=boolean,JSONPath=`.spec.assignedCasesOnly`,description="Only assigned cases"
// +kubebuilder:printcolumn:name="Review Due",type=string,JSONPath=`.status.reviewDue`,description="Break-glass review due"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Compliant",type=string,JSONPath=`.status.conditions[?(@.type=="Compliant")].status`
// +kubebuilder:printcolumn:name="Purpose",type=string,JSONPath=`.spec.purpose`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessRole struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AccessRoleSpec   `json:"spec"`
	Status AccessRoleStatus `json:"status,omitempty"`
}

// AccessRoleList is a list of AccessRoles.
// +kubebuilder:object:root=true
type AccessRoleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessRole `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AccessRole{}, &AccessRoleList{})
}
