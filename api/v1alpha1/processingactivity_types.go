package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ActivityName is the name of a ProcessingActivity in the same namespace.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must name a ProcessingActivity: lower-case letters, digits and -, starting and ending with a letter or digit, at most 63 characters"
type ActivityName string

// RetentionPolicyReference names a RetentionPolicy in the same namespace.
type RetentionPolicyReference struct {
	// Name of the RetentionPolicy, in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
}

// ActivityRetention is how long the activity keeps its data and which
// RetentionPolicy enforces it.
type ActivityRetention struct {
	// PolicyRef names the RetentionPolicy that destroys the data when due.
	PolicyRef RetentionPolicyReference `json:"policyRef"`
	// Description of the retention as the register states it, such as
	// "5 jaar na het laatste contact".
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=256
	Description string `json:"description"`
}

// DataProtectionOfficer is the contact of the data protection officer
// (functionaris gegevensbescherming) for this activity. It is a function,
// never a person's private address.
type DataProtectionOfficer struct {
	// Name of the function or office, such as "Functionaris
	// gegevensbescherming Gemeente Voorbeeldstad".
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`
	// Email address of the office.
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^@\\\\s]+@[^@\\\\s]+[.][^@\\\\s]+$')",message="spec.dataProtectionOfficer.email must be an e-mail address such as fg@voorbeeldstad.nl"
	Email string `json:"email"`
}

// ProcessingActivitySpec is an entry of the register of processing
// activities (AVG art. 30(1); the VNG model register).
// +kubebuilder:validation:XValidation:rule="!(self.legalBasis in ['LegalObligation', 'PublicTask']) || has(self.legalReference)",fieldPath=".legalReference",reason=FieldValueRequired,message="spec.legalReference is required when spec.legalBasis is LegalObligation or PublicTask, such as \"Jeugdwet art. 7.1.1.1\""
// +kubebuilder:validation:XValidation:rule="self.legalBasis != 'VitalInterest' || (has(self.legalReference) && size(self.legalReference) >= 3)",fieldPath=".legalReference",reason=FieldValueRequired,message="spec.legalReference is required when spec.legalBasis is VitalInterest, such as \"Wet verplichte meldcode\""
type ProcessingActivitySpec struct {
	// DisplayName is the activity's name in the register, such as
	// "Cliëntervaringsonderzoek".
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName"`

	// RegisterID is the activity's identifier in the municipality's register
	// (a URI or code). Audit events record it as
	// dpl.core.processing_activity_id; the object's name when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+$')",message="spec.registerID must be a URI or code without spaces"
	RegisterID string `json:"registerID,omitempty"`

	// Purpose of the processing (doel), in plain words.
	// +kubebuilder:validation:MinLength=10
	// +kubebuilder:validation:MaxLength=512
	Purpose string `json:"purpose"`

	// LegalBasis of the processing (AVG art. 6(1)).
	LegalBasis LegalBasis `json:"legalBasis"`

	// LegalReference is the article of law the processing rests on, such as
	// "Jeugdwet art. 2.3"; required for LegalObligation, PublicTask and
	// VitalInterest.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LegalReference string `json:"legalReference,omitempty"`

	// Service is the kind of service (and so the law) the activity belongs to.
	Service Service `json:"service"`

	// DataSubjectCategories are the kinds of people whose data is processed,
	// such as "jeugdigen", "ouders en verzorgers".
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +listType=set
	// +kubebuilder:validation:items:MinLength=2
	// +kubebuilder:validation:items:MaxLength=64
	DataSubjectCategories []string `json:"dataSubjectCategories"`

	// DataCategories the activity processes; roles, agreements and routes
	// that serve the activity use no others.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	DataCategories []DataCategory `json:"dataCategories"`

	// Retention of the data and the RetentionPolicy that enforces it.
	Retention ActivityRetention `json:"retention"`

	// Controller is the controller (verwerkingsverantwoordelijke), such as
	// "Gemeente Voorbeeldstad".
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=128
	Controller string `json:"controller"`

	// DataProtectionOfficer is the contact of the data protection officer.
	DataProtectionOfficer DataProtectionOfficer `json:"dataProtectionOfficer"`
}

// ActivityReference is an object that serves the activity.
type ActivityReference struct {
	// Kind of the object: AccessRole, SharingAgreement or DossierStore (for
	// an audit route).
	Kind string `json:"kind"`
	// Name of the object.
	Name string `json:"name"`
	// Route is the audit route of a DossierStore reference.
	// +optional
	Route string `json:"route,omitempty"`
	// Categories the object uses under the activity.
	// +optional
	// +listType=atomic
	Categories []DataCategory `json:"categories,omitempty"`
}

// ProcessingActivityStatus is the observed state of a ProcessingActivity.
type ProcessingActivityStatus struct {
	CommonStatus `json:",inline"`

	// ActivityID is what audit events record as
	// dpl.core.processing_activity_id for requests under the activity.
	// +optional
	ActivityID string `json:"activityID,omitempty"`
	// References are the roles, agreements and audit routes that serve the
	// activity, sorted by kind, name and route.
	// +optional
	// +listType=atomic
	References []ActivityReference `json:"references,omitempty"`
	// Recipients are the partners of the SharingAgreements that serve the
	// activity, as "name (type)".
	// +optional
	// +listType=atomic
	Recipients []string `json:"recipients,omitempty"`
	// Measures are the security measures of the stores whose data the
	// activity processes, derived from their verified controls.
	// +optional
	// +listType=atomic
	Measures []string `json:"measures,omitempty"`
}

// ProcessingActivity is an entry of the AVG art. 30 register of processing
// activities: purpose, legal basis, categories of data subjects and data,
// retention, and (derived) recipients and security measures. Roles,
// agreements and audit routes serve activities; the audit proxy allows a
// request only under an activity both the caller and the route serve.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pact,categories=privacy
// +kubebuilder:printcolumn:name="Activity",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Basis",type=string,JSONPath=`.spec.legalBasis`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`,priority=1
// +kubebuilder:printcolumn:name="Retention",type=string,JSONPath=`.spec.retention.policyRef.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Compliant",type=string,JSONPath=`.status.conditions[?(@.type=="Compliant")].status`
// +kubebuilder:printcolumn:name="Purpose",type=string,JSONPath=`.spec.purpose`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ProcessingActivity struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProcessingActivitySpec   `json:"spec"`
	Status ProcessingActivityStatus `json:"status,omitempty"`
}

// ProcessingActivityList is a list of ProcessingActivities.
// +kubebuilder:object:root=true
type ProcessingActivityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProcessingActivity `json:"items"`
}

// ID is what audit events record as dpl.core.processing_activity_id:
// spec.registerID, or the object's name when that is empty.
func (a *ProcessingActivity) ID() string {
	if a.Spec.RegisterID != "" {
		return a.Spec.RegisterID
	}
	return a.Name
}

func init() {
	SchemeBuilder.Register(&ProcessingActivity{}, &ProcessingActivityList{})
}
