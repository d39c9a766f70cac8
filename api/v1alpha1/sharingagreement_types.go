package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PartnerType is the kind of organisation data is shared with. Each type
// carries a maximum set of data categories (data minimisation), documented
// in docs/sharing.md and checked by the reconciler.
//
// The quality-oversight types (ComplaintsCommittee, DisciplinaryBoard,
// Inspectorate, Ombudsman) are the bodies the privacy statements name as
// receiving dossier data to judge the care given; each needs a
// spec.legalReference.
// +kubebuilder:validation:Enum=School;GeneralPractitioner;ReferralIndex;MunicipalityBilling;HousingCorporation;CareProvider;VeiligThuis;CertifiedInstitution;CouncilForChildProtection;Police;ComplaintsCommittee;DisciplinaryBoard;Inspectorate;Ombudsman;Other
type PartnerType string

// The partner types.
const (
	PartnerSchool                    PartnerType = "School"
	PartnerGeneralPractitioner       PartnerType = "GeneralPractitioner"
	PartnerReferralIndex             PartnerType = "ReferralIndex"
	PartnerMunicipalityBilling       PartnerType = "MunicipalityBilling"
	PartnerHousingCorporation        PartnerType = "HousingCorporation"
	PartnerCareProvider              PartnerType = "CareProvider"
	PartnerVeiligThuis               PartnerType = "VeiligThuis"
	PartnerCertifiedInstitution      PartnerType = "CertifiedInstitution"
	PartnerCouncilForChildProtection PartnerType = "CouncilForChildProtection"
	PartnerPolice                    PartnerType = "Police"
	// PartnerComplaintsCommittee: the complaints committee (klachtencommissie)
	// judging a complaint of the family about the help.
	PartnerComplaintsCommittee PartnerType = "ComplaintsCommittee"
	// PartnerDisciplinaryBoard: a disciplinary board (tuchtcollege) judging a
	// registered professional's conduct.
	PartnerDisciplinaryBoard PartnerType = "DisciplinaryBoard"
	// PartnerInspectorate: the Inspectorate (Inspectie Gezondheidszorg en
	// Jeugd) investigating a calamity.
	PartnerInspectorate PartnerType = "Inspectorate"
	// PartnerOmbudsman: the (Children's) Ombudsman (Nationale ombudsman,
	// Kinderombudsman) investigating a complaint.
	PartnerOmbudsman PartnerType = "Ombudsman"
	PartnerOther     PartnerType = "Other"
)

// QualityOversightTypes are the partner types that judge the care given;
// an agreement with one of them needs spec.legalReference.
var QualityOversightTypes = []PartnerType{
	PartnerComplaintsCommittee, PartnerDisciplinaryBoard, PartnerInspectorate, PartnerOmbudsman,
}

// LegalBasis is the ground of AVG art. 6(1) the sharing rests on.
// +kubebuilder:validation:Enum=Consent;LegalObligation;VitalInterest;PublicTask
type LegalBasis string

// The legal bases.
const (
	// BasisConsent: the client (or parent) gave consent, art. 6(1)(a).
	BasisConsent LegalBasis = "Consent"
	// BasisLegalObligation: a law requires it, art. 6(1)(c), for example
	// Veilig Thuis or youth protection under the Jeugdwet.
	BasisLegalObligation LegalBasis = "LegalObligation"
	// BasisVitalInterest: someone's safety is at stake (Meldcode), art. 6(1)(d).
	BasisVitalInterest LegalBasis = "VitalInterest"
	// BasisPublicTask: a statutory public task, art. 6(1)(e).
	BasisPublicTask LegalBasis = "PublicTask"
)

// Direction is which way data flows over the network.
// +kubebuilder:validation:Enum=Egress;Ingress;Both
type Direction string

// The directions.
const (
	// DirectionEgress: the store's workload sends to the partner.
	DirectionEgress Direction = "Egress"
	// DirectionIngress: the partner calls the store's audit proxy.
	DirectionIngress Direction = "Ingress"
	// DirectionBoth allows both.
	DirectionBoth Direction = "Both"
)

// PartnerSubjectKind is the kind of identity a partner's requests carry.
// +kubebuilder:validation:Enum=User;Group;ServiceAccount;Client
type PartnerSubjectKind string

// The partner subject kinds: those of AccessRole subjects, and Client.
const (
	PartnerSubjectUser           PartnerSubjectKind = "User"
	PartnerSubjectGroup          PartnerSubjectKind = "Group"
	PartnerSubjectServiceAccount PartnerSubjectKind = "ServiceAccount"
	// PartnerSubjectClient is the OAuth client id of a machine-to-machine
	// client, as the azp (or client_id) claim of its OIDC token names it.
	PartnerSubjectClient PartnerSubjectKind = "Client"
)

// PartnerSubject is an identity by which the audit proxy recognises the
// partner's requests: a user, group or service account as in an AccessRole,
// or the client id of a machine-to-machine OIDC client.
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' ? has(self.namespace) : !has(self.namespace)",message="namespace is required for a ServiceAccount subject and not allowed for User, Group or Client"
type PartnerSubject struct {
	// Kind of subject.
	Kind PartnerSubjectKind `json:"kind"`
	// Name as it appears in the identity token (subject, e-mail, group or
	// client id) or the ServiceAccount's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// Namespace of a ServiceAccount subject.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// Partner is the organisation data is shared with and how it is reached.
// +kubebuilder:validation:XValidation:rule="has(self.namespace) || has(self.podSelector) || (has(self.cidrs) && size(self.cidrs) > 0)",message="spec.partner must be reachable by at least one of namespace, podSelector or cidrs"
type Partner struct {
	// Type of partner; it caps the categories that may be shared.
	Type PartnerType `json:"type"`
	// Name of the partner organisation.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`
	// Namespace of the partner's workload in this cluster, matched by its
	// immutable kubernetes.io/metadata.name label.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
	// PodSelector narrows the partner to these pods (in Namespace, or in
	// the store's namespace when Namespace is empty).
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// CIDRs of the partner outside the cluster.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c))",message="spec.partner.cidrs must hold valid CIDRs such as 192.0.2.0/24"
	// +kubebuilder:validation:XValidation:rule="self.all(c, !isCIDR(c) || cidr(c).prefixLength() >= 8)",message="spec.partner.cidrs must not be broader than /8: sharing with the whole internet is never minimal"
	CIDRs []string `json:"cidrs,omitempty"`
	// Ports the partner is reached on (egress) or the partner calls from
	// (not used for ingress, which always targets the audit proxy).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	Ports []NetworkPort `json:"ports,omitempty"`
	// Subjects are the identities the partner's requests carry at the audit
	// proxy. The proxy decides a request of any of them from the store's
	// agreements only, never from AccessRoles. Required when Direction is
	// Ingress or Both.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(s, self.exists_one(t, t.kind == s.kind && t.name == s.name))",message="spec.partner.subjects must not list the same subject twice"
	Subjects []PartnerSubject `json:"subjects,omitempty"`
	// Endpoint is the partner's https base URL for outbound sharing: the
	// store's egress gateway forwards a request the application sends as
	// /<agreement>/<path> to this URL with <path> appended, after deciding
	// it under spec.outboundRoutes. No user name or password (the gateway
	// authenticates with spec.partner.tls.clientCertificateSecretName), no
	// query or fragment.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="spec.partner.endpoint must be an https URL with a host, such as https://verwijsindex.example.nl/api"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/]*@')",message="spec.partner.endpoint must not hold a user name or password: the gateway authenticates with the client certificate of spec.partner.tls"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="spec.partner.endpoint must not hold a query or fragment: the path and query of each request come from the application"
	Endpoint string `json:"endpoint,omitempty"`
	// TLS is how the egress gateway verifies the partner's server
	// certificate and which client certificate it presents (mutual TLS, as
	// FSC and Digikoppeling require). Required with Endpoint.
	// +optional
	TLS *PartnerTLS `json:"tls,omitempty"`
}

// PartnerTLS names the Secrets, in the agreement's namespace, the egress
// gateway originates TLS to the partner with.
type PartnerTLS struct {
	// CABundle is the key of a Secret holding the PEM certificates of the
	// certificate authorities the partner's server certificate must chain
	// to; no other roots are trusted.
	CABundle SecretKeyReference `json:"caBundle"`
	// ClientCertificateSecretName is a Secret of type kubernetes.io/tls
	// whose tls.crt and tls.key the gateway presents to the partner; none
	// is presented when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ClientCertificateSecretName string `json:"clientCertificateSecretName,omitempty"`
}

// SecretKeyReference names one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Key within the Secret; ca.crt by default.
	// +optional
	// +kubebuilder:default=ca.crt
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// OutboundRoute maps a request the application sends to the partner
// through the egress gateway to the data categories it discloses, as the
// store's spec.audit.routes do for requests coming in. The path is the
// partner's, relative to spec.partner.endpoint.
type OutboundRoute struct {
	// Name of the route, unique within the agreement.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Method is the HTTP method.
	// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE
	Method string `json:"method"`
	// Path pattern below the endpoint; {dossier} stands for the dossier
	// identifier and * for one path segment. Example:
	// /signalen/{dossier}.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^/[A-Za-z0-9._~/*{}-]*$')",message="spec.outboundRoutes[].path must start with / and hold only letters, digits, . _ ~ / * - and the {dossier} placeholder"
	Path string `json:"path"`
	// Categories the request discloses: within spec.categories.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	Categories []DataCategory `json:"categories"`
	// ProcessingActivities the route serves; a request is sent only under
	// one the agreement serves too. A route without activities is decided
	// by categories only.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	ProcessingActivities []ActivityName `json:"processingActivities,omitempty"`
}

// NetworkPort is a port and protocol.
type NetworkPort struct {
	// Port number.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// Protocol, TCP by default.
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol string `json:"protocol,omitempty"`
}

// ConsentMode says what one consent covers.
// +kubebuilder:validation:Enum=Agreement;PerDossier
type ConsentMode string

// The consent modes.
const (
	// ConsentAgreement: one consent, recorded by spec.consent.reference,
	// covers the whole agreement; for an agreement made for one client.
	ConsentAgreement ConsentMode = "Agreement"
	// ConsentPerDossier: consent is recorded per dossier in the
	// case-management system, and the audit proxy asks the store's consent
	// source (spec.audit.consentURL) before every disclosure.
	ConsentPerDossier ConsentMode = "PerDossier"
)

// Consent records the client's consent. For the whole agreement (mode
// Agreement) the reference points at the consent record in the
// case-management system; per dossier (mode PerDossier) the records live
// there and the audit proxy asks for each request. A reference is an
// identifier, never a name or BSN.
//
// A recorded withdrawal ends sharing: from withdrawnAt on (at once when it
// lies in the past), whether or not withdrawn is also set.
// +kubebuilder:validation:XValidation:rule="self.mode == 'PerDossier' || has(self.reference)",fieldPath=".reference",reason=FieldValueRequired,message="spec.consent.reference is required when spec.consent.mode is Agreement: name the consent record that covers the agreement"
// +kubebuilder:validation:XValidation:rule="!has(self.givenAt) || !has(self.withdrawnAt) || self.withdrawnAt >= self.givenAt",fieldPath=".withdrawnAt",message="spec.consent.withdrawnAt must not be before spec.consent.givenAt"
type Consent struct {
	// Mode says whether one consent covers the whole agreement (Agreement,
	// the default) or consent is recorded per dossier (PerDossier).
	// +optional
	// +kubebuilder:default=Agreement
	Mode ConsentMode `json:"mode,omitempty"`
	// Reference of the consent record, such as TOE-2026-000123; required in
	// mode Agreement.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9][A-Za-z0-9._:/-]*$')",message="spec.consent.reference must be a record identifier (letters, digits, . _ : / -), never a name or BSN"
	Reference string `json:"reference,omitempty"`
	// GivenAt is when consent was given.
	// +optional
	GivenAt *metav1.Time `json:"givenAt,omitempty"`
	// Withdrawn is set when the client withdraws consent; sharing stops at once.
	// +optional
	Withdrawn bool `json:"withdrawn,omitempty"`
	// WithdrawnAt is when consent was (or will be) withdrawn. Sharing under
	// the consent ends at that moment, whether or not Withdrawn is set.
	// +optional
	WithdrawnAt *metav1.Time `json:"withdrawnAt,omitempty"`
}

// WithdrawnBy reports whether the consent is withdrawn at t: the withdrawn
// flag is set, or withdrawnAt is not after t.
func (c *Consent) WithdrawnBy(t time.Time) bool {
	return c.Withdrawn || (c.WithdrawnAt != nil && !t.Before(c.WithdrawnAt.Time))
}

// EffectiveMode is the consent mode with its default applied.
func (c *Consent) EffectiveMode() ConsentMode {
	if c.Mode == "" {
		return ConsentAgreement
	}
	return c.Mode
}

// SharingAgreementSpec declares what may be shared with a partner, why and
// for how long.
// +kubebuilder:validation:XValidation:rule="self.legalBasis == 'Consent' ? has(self.consent) : !has(self.consent)",fieldPath=".consent",message="spec.consent is required when spec.legalBasis is Consent and must be absent for any other basis"
// +kubebuilder:validation:XValidation:rule="self.legalBasis != 'VitalInterest' || (has(self.justification) && size(self.justification) >= 20)",fieldPath=".justification",reason=FieldValueRequired,message="spec.justification of at least 20 characters is required when spec.legalBasis is VitalInterest (Meldcode)"
// +kubebuilder:validation:XValidation:rule="self.legalBasis != 'VitalInterest' || has(self.reviewDate)",fieldPath=".reviewDate",reason=FieldValueRequired,message="spec.reviewDate is required when spec.legalBasis is VitalInterest: sharing without consent must be reviewed"
// +kubebuilder:validation:XValidation:rule="!(self.legalBasis in ['LegalObligation', 'PublicTask']) || has(self.legalReference)",fieldPath=".legalReference",reason=FieldValueRequired,message="spec.legalReference is required when spec.legalBasis is LegalObligation or PublicTask, such as \"Wmo 2015 art. 4.1.1\""
// +kubebuilder:validation:XValidation:rule="!has(self.validFrom) || !has(self.validUntil) || self.validUntil > self.validFrom",fieldPath=".validUntil",message="spec.validUntil must be after spec.validFrom"
// +kubebuilder:validation:XValidation:rule="(has(self.direction) && self.direction == 'Egress') || (has(self.partner.subjects) && size(self.partner.subjects) > 0)",fieldPath=".partner.subjects",reason=FieldValueRequired,message="spec.partner.subjects must name at least one subject when spec.direction is Ingress or Both: the audit proxy recognises the partner's requests by them"
// +kubebuilder:validation:XValidation:rule="!has(self.partner.endpoint) || has(self.partner.tls)",fieldPath=".partner.tls",reason=FieldValueRequired,message="spec.partner.tls is required with spec.partner.endpoint: the egress gateway verifies the partner's certificate against its caBundle"
// +kubebuilder:validation:XValidation:rule="!has(self.outboundRoutes) || size(self.outboundRoutes) == 0 || has(self.partner.endpoint)",fieldPath=".partner.endpoint",reason=FieldValueRequired,message="spec.partner.endpoint is required with spec.outboundRoutes: the egress gateway sends them there"
// +kubebuilder:validation:XValidation:rule="!has(self.outboundRoutes) || size(self.outboundRoutes) == 0 || !has(self.direction) || self.direction != 'Ingress'",fieldPath=".outboundRoutes",message="spec.outboundRoutes need spec.direction Egress or Both: an Ingress agreement sends nothing out"
// +kubebuilder:validation:XValidation:rule="!has(self.outboundRoutes) || self.outboundRoutes.all(r, r.categories.all(c, c in self.categories))",fieldPath=".outboundRoutes",message="spec.outboundRoutes: every route category must be one of spec.categories"
// +kubebuilder:validation:XValidation:rule="!(self.partner.type in ['ComplaintsCommittee', 'DisciplinaryBoard', 'Inspectorate', 'Ombudsman']) || has(self.legalReference)",fieldPath=".legalReference",reason=FieldValueRequired,message="spec.legalReference is required for a quality-oversight partner (ComplaintsCommittee, DisciplinaryBoard, Inspectorate, Ombudsman), such as \"Jeugdwet art. 4.1.8\""
type SharingAgreementSpec struct {
	// StoreRef names the DossierStore whose data is shared.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.storeRef is immutable: create a new agreement for another store"
	StoreRef StoreReference `json:"storeRef"`

	// Partner the data is shared with.
	Partner Partner `json:"partner"`

	// Direction of the data flow; Egress by default.
	// +optional
	// +kubebuilder:default=Egress
	Direction Direction `json:"direction,omitempty"`

	// LegalBasis of the sharing (AVG art. 6(1)).
	LegalBasis LegalBasis `json:"legalBasis"`

	// Consent, required exactly when LegalBasis is Consent.
	// +optional
	Consent *Consent `json:"consent,omitempty"`

	// LegalReference is the article of law that requires or permits the
	// sharing, such as "Jeugdwet art. 7.1.4.1"; required for LegalObligation
	// and PublicTask.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LegalReference string `json:"legalReference,omitempty"`

	// Justification explains why sharing without consent is needed; required
	// for VitalInterest. It must not contain personal data.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Justification string `json:"justification,omitempty"`

	// ReviewDate is when sharing without consent must be reviewed; required
	// for VitalInterest.
	// +optional
	ReviewDate *metav1.Time `json:"reviewDate,omitempty"`

	// Categories shared: a subset of the store's, within the partner type's
	// maximum.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	Categories []DataCategory `json:"categories"`

	// Purpose of the sharing.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=256
	Purpose string `json:"purpose"`

	// ProcessingActivities the sharing serves: ProcessingActivities in the
	// same namespace; the partner becomes a recipient of each. The audit
	// proxy lets the partner use a route only under an activity both name.
	// An agreement without activities keeps working as before and is marked
	// with the ActivityAssigned condition False.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	ProcessingActivities []ActivityName `json:"processingActivities,omitempty"`

	// OutboundRoutes are the requests the application may send to the
	// partner through the store's egress gateway, each with the categories
	// it discloses; any other request is refused. Needs spec.partner.endpoint
	// and direction Egress or Both.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=50
	OutboundRoutes []OutboundRoute `json:"outboundRoutes,omitempty"`

	// ValidFrom opens the window; now when empty.
	// +optional
	ValidFrom *metav1.Time `json:"validFrom,omitempty"`

	// ValidUntil closes the window; open-ended when empty.
	// +optional
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`

	// Suspended stops the sharing without deleting the agreement.
	// +optional
	Suspended bool `json:"suspended,omitempty"`
}

// SharingAgreementStatus is the observed state of a SharingAgreement.
type SharingAgreementStatus struct {
	CommonStatus `json:",inline"`

	// InForce is true while the agreement is in force and network access to
	// the partner exists; false (never left out) otherwise.
	// +optional
	// +kubebuilder:default=false
	InForce bool `json:"inForce"`
	// ConsentMode is the agreement's consent mode (Agreement or PerDossier);
	// empty for a basis without consent.
	// +optional
	ConsentMode ConsentMode `json:"consentMode,omitempty"`
	// EgressGatewayURL is the base URL through which the application sends
	// to the partner, http://<store>-egress.<namespace>.svc/<agreement>/,
	// while the agreement has outbound routes; empty otherwise.
	// +optional
	EgressGatewayURL string `json:"egressGatewayURL,omitempty"`
	// ProxyEnforced is true when the agreement admits the partner to the
	// audit proxy (Ingress or Both) and is in the store's rendered access
	// policy, with a consent source when consent is per dossier: the proxy
	// then decides each of the partner's requests from it.
	// +optional
	// +kubebuilder:default=false
	ProxyEnforced bool `json:"proxyEnforced"`
	// NetworkPolicyName is the NetworkPolicy that admits the partner while
	// the agreement is in force.
	// +optional
	NetworkPolicyName string `json:"networkPolicyName,omitempty"`
	// NextTransition is the next moment the agreement enters or leaves force.
	// +optional
	NextTransition *metav1.Time `json:"nextTransition,omitempty"`
	// ClientNotificationRequired is true when data is shared without consent
	// and the client must be told afterwards, as the privacy statement promises.
	// +optional
	ClientNotificationRequired bool `json:"clientNotificationRequired,omitempty"`
}

// SharingAgreement admits a partner to a store's data: the categories, the
// legal basis and the time window, turned into network access that exists
// only while the agreement is in force.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=share,categories=privacy
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.storeRef.name`
// +kubebuilder:printcolumn:name="Partner",type=string,JSONPath=`.spec.partner.name`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.partner.type`,priority=1
// +kubebuilder:printcolumn:name="Basis",type=string,JSONPath=`.spec.legalBasis`
// +kubebuilder:printcolumn:name="In Force",type=boolean,JSONPath=`.status.inForce`
// +kubebuilder:printcolumn:name="Consent",type=string,JSONPath=`.status.consentMode`,priority=1
// +kubebuilder:printcolumn:name="Proxy",type=boolean,JSONPath=`.status.proxyEnforced`,description="The audit proxy decides the partner's requests from this agreement"
// +kubebuilder:printcolumn:name="Until",type=string,JSONPath=`.spec.validUntil`
// +kubebuilder:printcolumn:name="Compliant",type=string,JSONPath=`.status.conditions[?(@.type=="Compliant")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="AgreementInForce")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SharingAgreement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SharingAgreementSpec   `json:"spec"`
	Status SharingAgreementStatus `json:"status,omitempty"`
}

// SharingAgreementList is a list of SharingAgreements.
// +kubebuilder:object:root=true
type SharingAgreementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SharingAgreement `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SharingAgreement{}, &SharingAgreementList{})
}
