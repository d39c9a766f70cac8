package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Service is the kind of municipal social service whose dossiers a store
// holds. It decides which law applies and the statutory retention.
//
//   - YouthAndFamilyCentre: centrum voor jeugd en gezin (Jeugdwet, Wpg)
//   - NeighbourhoodTeam: sociaal wijkteam (Wmo 2015, Jeugdwet)
//   - YouthCare: jeugdhulp, youth team (Jeugdwet)
//   - VeiligThuis: advies- en meldpunt huiselijk geweld en kindermishandeling (Wmo 2015)
//   - YouthProtection: jeugdbescherming by a certified institution (Jeugdwet)
//   - YouthProbation: jeugdreclassering (Jeugdwet)
//   - SocialSupport: maatschappelijke ondersteuning (Wmo 2015)
//
// +kubebuilder:validation:Enum=YouthAndFamilyCentre;NeighbourhoodTeam;YouthCare;VeiligThuis;YouthProtection;YouthProbation;SocialSupport
type Service string

// The services.
const (
	ServiceYouthAndFamilyCentre Service = "YouthAndFamilyCentre"
	ServiceNeighbourhoodTeam    Service = "NeighbourhoodTeam"
	ServiceYouthCare            Service = "YouthCare"
	ServiceVeiligThuis          Service = "VeiligThuis"
	ServiceYouthProtection      Service = "YouthProtection"
	ServiceYouthProbation       Service = "YouthProbation"
	ServiceSocialSupport        Service = "SocialSupport"
)

// DeletionPolicy says what happens to the dossier volume when its store is
// deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

// The deletion policies.
const (
	// DeletionRetain keeps the PersistentVolumeClaim, released from its
	// owner, so that deleting a store never destroys dossiers silently.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete removes the claim with the store.
	DeletionDelete DeletionPolicy = "Delete"
)

// DossierStoreSpec declares where the dossiers of one service live and how
// they are protected.
// +kubebuilder:validation:XValidation:rule="!has(self.audit) || !has(self.audit.routes) || self.audit.routes.all(r, r.categories.all(c, c in self.dataCategories))",fieldPath=".audit.routes",message="spec.audit.routes: every route category must be one of spec.dataCategories"
type DossierStoreSpec struct {
	// Service is the kind of service whose dossiers live here.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.service is immutable: the law that applies to existing dossiers does not change"
	Service Service `json:"service"`

	// Organisation is the controller (verwerkingsverantwoordelijke) as it
	// appears in the privacy statement, for example "Gemeente Utrecht".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Organisation string `json:"organisation"`

	// DataCategories are the kinds of personal data the store may hold.
	// Roles and agreements may only grant a subset.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	DataCategories []DataCategory `json:"dataCategories"`

	// Workload identifies the case-management pods that use the store.
	Workload WorkloadSpec `json:"workload"`

	// Storage of the dossiers.
	Storage StorageSpec `json:"storage"`

	// Encryption settings of the data key.
	// +optional
	// +kubebuilder:default={}
	Encryption EncryptionSpec `json:"encryption,omitempty"`

	// Audit says how requests to the application map to data categories.
	// +optional
	Audit *AuditSpec `json:"audit,omitempty"`

	// DataSubjectRights configures how the store handles the families'
	// requests (DataSubjectRequest).
	// +optional
	DataSubjectRights *DataSubjectRightsSpec `json:"dataSubjectRights,omitempty"`
}

// DefaultResponsePeriod is the response period of a store that sets none:
// the four weeks the privacy statements promise.
const DefaultResponsePeriod Period = "P4W"

// DataSubjectRightsSpec configures the handling of data-subject requests.
type DataSubjectRightsSpec struct {
	// ResponsePeriod is the time to decide a request, from its receipt:
	// P4W by default; at most one month (AVG art. 12(3)): P1M, up to P4W,
	// or up to P28D. A request may extend it by one or two months with a
	// recorded reason.
	// +optional
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:XValidation:rule="self.matches('^P([1-4]W|[1-9]D|1[0-9]D|2[0-8]D|1M)$')",message="spec.dataSubjectRights.responsePeriod must be at most one month (AVG art. 12(3)): P1M, P1W to P4W, or P1D to P28D"
	ResponsePeriod Period `json:"responsePeriod,omitempty"`
	// MaxRetentionExtension caps a RetentionExtension request: its end date
	// (spec.retentionExtension.until) may lie at most this period after its
	// decision (P5Y by default). An end date beyond the cap is refused: the
	// request's ExtensionWithinCap condition is False, and the sweeper keeps
	// the dossier no longer than the cap allows.
	// +optional
	MaxRetentionExtension Period `json:"maxRetentionExtension,omitempty"`
}

// DefaultMaxRetentionExtension is the cap of a store that sets none: an
// extension on request is decided again at least every five years.
const DefaultMaxRetentionExtension Period = "P5Y"

// WorkloadSpec identifies the case-management pods of a store.
// +kubebuilder:validation:XValidation:rule="self.proxyPort != self.appPort",fieldPath=".proxyPort",message="spec.workload.proxyPort must differ from spec.workload.appPort: the audit proxy sits in front of the application"
type WorkloadSpec struct {
	// Selector picks the case-management pods in the store's namespace.
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="spec.workload.selector must not be empty: an empty selector would select every pod in the namespace"
	Selector metav1.LabelSelector `json:"selector"`

	// ServiceAccountName is the ServiceAccount the workload runs as; only it
	// may read the store's data key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName"`

	// AppPort is the port the application listens on inside the pod; only
	// the audit proxy reaches it.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	AppPort int32 `json:"appPort"`

	// ProxyPort is the port of the audit proxy, the only port that accepts
	// traffic from outside the pod.
	// +optional
	// +kubebuilder:default=8443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ProxyPort int32 `json:"proxyPort,omitempty"`

	// ProxyTLS says how the audit proxy serves: TLS with a per-store serving
	// certificate (Secret <store>-proxy-tls, issued and rotated by the
	// operator) unless mode is Disabled.
	// +optional
	ProxyTLS *ProxyTLSSpec `json:"proxyTLS,omitempty"`

	// IngressNamespaces may also reach the audit proxy, besides the store's
	// own namespace: for example the ingress controller's namespace. Partners
	// are admitted by SharingAgreements, not here.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	IngressNamespaces []string `json:"ingressNamespaces,omitempty"`

	// Dependencies are the in-cluster services the application needs, such
	// as its database. Besides DNS, the workload may reach only these and,
	// through SharingAgreements, its partners.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	Dependencies []Dependency `json:"dependencies,omitempty"`
}

// ProxyTLSMode is Enabled or Disabled.
// +kubebuilder:validation:Enum=Enabled;Disabled
type ProxyTLSMode string

// The proxy TLS modes.
const (
	// ProxyTLSEnabled serves TLS with the store's serving certificate.
	ProxyTLSEnabled ProxyTLSMode = "Enabled"
	// ProxyTLSDisabled serves plain HTTP: bearer tokens and dossiers cross
	// the pod network in clear unless something else (a service mesh with
	// mutual TLS) protects them.
	ProxyTLSDisabled ProxyTLSMode = "Disabled"
)

// ProxyTLSSpec configures the audit proxy's TLS.
// +kubebuilder:validation:XValidation:rule="self.mode != 'Disabled' || (has(self.disabledReason) && size(self.disabledReason) >= 10)",fieldPath=".disabledReason",message="spec.workload.proxyTLS.disabledReason is required (10 to 200 characters) when mode is Disabled: say what protects the traffic instead, such as the mesh's mutual TLS"
// +kubebuilder:validation:XValidation:rule="self.mode == 'Disabled' || !has(self.disabledReason)",fieldPath=".disabledReason",message="spec.workload.proxyTLS.disabledReason is only allowed when mode is Disabled"
type ProxyTLSSpec struct {
	// Mode: Enabled (the default) or Disabled (plain HTTP, an explicit
	// opt-out that AuditActive and NetworkIsolated report).
	// +optional
	// +kubebuilder:default=Enabled
	Mode ProxyTLSMode `json:"mode,omitempty"`
	// DisabledReason says why plain HTTP is acceptable; required with
	// mode Disabled.
	// +optional
	// +kubebuilder:validation:MaxLength=200
	DisabledReason string `json:"disabledReason,omitempty"`
	// DNSNames are further names in the serving certificate, such as the
	// Service in front of the workload. The certificate always names
	// <store>-proxy, <store>-proxy.<namespace>.svc, localhost and 127.0.0.1.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	DNSNames []string `json:"dnsNames,omitempty"`
}

// Dependency is an in-cluster service the application may reach.
type Dependency struct {
	// Name of the dependency, such as database.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Namespace of the dependency; the store's own when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
	// PodSelector picks the dependency's pods.
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="podSelector must not be empty: name the dependency's pods"
	PodSelector metav1.LabelSelector `json:"podSelector"`
	// Ports of the dependency.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	Ports []NetworkPort `json:"ports"`
}

// StorageSpec is the volume that holds the dossiers.
type StorageSpec struct {
	// StorageClassName must name a class that is verified to encrypt at
	// rest; no claim is created on any other class.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.storage.storageClassName is immutable: move dossiers to another class with a new store"
	StorageClassName string `json:"storageClassName"`

	// Size of the volume, a Kubernetes quantity such as 20Gi. It may grow,
	// never shrink.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="spec.storage.size must be a positive quantity such as 20Gi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || !isQuantity(oldSelf) || !quantity(self).isLessThan(quantity(oldSelf))",message="spec.storage.size may grow but never shrink: shrinking a volume would destroy dossiers"
	Size string `json:"size"`

	// DeletionPolicy says what happens to the volume when the store is
	// deleted. Retain (the default) keeps it.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// EncryptionSpec configures the store's data key.
type EncryptionSpec struct {
	// KeyRotationPeriod is how long a data key is used before a new version
	// is added, as a Go duration (2160h is 90 days). Between 1h and 8760h.
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+(h|m|s)([0-9]+(m|s))?([0-9]+s)?$') && duration(self) >= duration('1h') && duration(self) <= duration('8760h')",message="spec.encryption.keyRotationPeriod must be a duration in hours such as 2160h, between 1h and 8760h"
	KeyRotationPeriod string `json:"keyRotationPeriod,omitempty"`
}

// AuditSpec maps requests to the application onto data categories, so that
// the audit proxy knows what each request touches.
type AuditSpec struct {
	// ProcessingActivity is the register entry (verwerkingsactiviteit) that
	// audit events refer to (as in the Logboek Dataverwerkingen standard)
	// when the request matches no route or its route names no
	// ProcessingActivity; a request on a route that names activities
	// records the activity it was allowed under, or was refused under,
	// instead. Deprecated in favour of routes[].processingActivities.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ProcessingActivity string `json:"processingActivity,omitempty"`

	// Routes of the application and what they touch. A request that matches
	// no route is denied.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	Routes []AuditRoute `json:"routes,omitempty"`

	// Identity says how the audit proxy identifies callers. Without it every
	// request is refused with 401.
	// +optional
	Identity *IdentitySpec `json:"identity,omitempty"`

	// AssignmentURL is where the audit proxy asks whether a dossier is
	// assigned to a caller, for roles limited to assigned cases: an HTTP GET
	// URL template with {user} and {dossier}; 200 means assigned, 404 not
	// assigned, anything else is refused (fail closed).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^ ]+$') && self.contains('{dossier}') && self.contains('{user}')",message="spec.audit.assignmentURL must be an http(s) URL template containing {user} and {dossier}"
	AssignmentURL string `json:"assignmentURL,omitempty"`

	// ConsentURL is where the audit proxy asks, before every disclosure
	// under a SharingAgreement with per-dossier consent, whether there is
	// consent: an HTTP GET URL template with {dossier} and at least one of
	// {agreement} and {partner}. 200 means consent given (the body may narrow
	// the categories and say until when), 404 or 410 none or withdrawn, and
	// anything else or no answer in time is refused (fail closed).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^ ]+$') && self.contains('{dossier}') && (self.contains('{agreement}') || self.contains('{partner}'))",message="spec.audit.consentURL must be an http(s) URL template containing {dossier} and {agreement}, {partner} or both"
	ConsentURL string `json:"consentURL,omitempty"`

	// ConsentCacheTTL bounds how long the audit proxy keeps a positive
	// consent answer, as a Go duration: a withdrawal at the consent source
	// takes effect within it. 5s by default, at most 60s. Negative answers
	// are never cached.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+(ms|s)$') && duration(self) > duration('0s') && duration(self) <= duration('60s')",message="spec.audit.consentCacheTTL must be a duration such as 5s, above 0s and at most 60s"
	ConsentCacheTTL string `json:"consentCacheTTL,omitempty"`

	// SigningKeyRotation is how long a version of the audit log's
	// checkpoint signing key (Secret <store>-audit-signing) is used before
	// the operator adds a new one, an ISO 8601 period from P7D to P5Y; P1Y
	// when unset (DefaultSigningKeyRotation). A new version's public key is
	// kept in ConfigMap dossierguard-audit-trust before the version is
	// written, and the proxy signs with it 5 minutes later; every older
	// checkpoint still verifies with the key it names. The annotation
	// privacy.dossierguard.io/rotate-signing-key rotates at once.
	//
	// The pseudonymisation key (Secret <store>-pseudonym) is never rotated:
	// a new key would give every dossier a new pseudonym, so that one
	// dossier's history could no longer be found as one.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!self.matches('^P[1-9][0-9]{0,3}[YMWD]$') || (self.endsWith('D') && int(self.substring(1, size(self) - 1)) >= 7 && int(self.substring(1, size(self) - 1)) <= 1826) || (self.endsWith('W') && int(self.substring(1, size(self) - 1)) <= 260) || (self.endsWith('M') && int(self.substring(1, size(self) - 1)) <= 60) || (self.endsWith('Y') && int(self.substring(1, size(self) - 1)) <= 5)",message="spec.audit.signingKeyRotation must be a period from P7D to P5Y, such as P1Y, P6M or P90D"
	SigningKeyRotation Period `json:"signingKeyRotation,omitempty"`
}

// DefaultSigningKeyRotation is the rotation period of a store's checkpoint
// signing key when spec.audit.signingKeyRotation is unset.
const DefaultSigningKeyRotation Period = "P1Y"

// SigningKeyRotationPeriod is the store's signing-key rotation period,
// defaulted.
func (a *AuditSpec) SigningKeyRotationPeriod() Period {
	if a == nil || a.SigningKeyRotation == "" {
		return DefaultSigningKeyRotation
	}
	return a.SigningKeyRotation
}

// Defaults and bounds of the consent cache (spec.audit.consentCacheTTL).
const (
	DefaultConsentCacheTTL = 5 * time.Second
	MaxConsentCacheTTL     = 60 * time.Second
)

// ConsentCacheBound is the store's consent cache bound, defaulted and
// clamped to MaxConsentCacheTTL.
func (a *AuditSpec) ConsentCacheBound() time.Duration {
	if a == nil || a.ConsentCacheTTL == "" {
		return DefaultConsentCacheTTL
	}
	d, err := time.ParseDuration(a.ConsentCacheTTL)
	if err != nil || d <= 0 {
		return DefaultConsentCacheTTL
	}
	return min(d, MaxConsentCacheTTL)
}

// IdentitySpec configures how callers are identified: a verified OIDC token,
// the headers of an authenticating proxy from trusted addresses, or both.
// +kubebuilder:validation:XValidation:rule="has(self.oidc) || has(self.trustedProxy)",message="spec.audit.identity needs oidc, trustedProxy or both"
type IdentitySpec struct {
	// OIDC verifies bearer tokens of an OpenID Connect issuer.
	// +optional
	OIDC *OIDCSpec `json:"oidc,omitempty"`
	// TrustedProxy accepts identity headers from an authenticating proxy
	// (such as oauth2-proxy) at these addresses only; from anyone else the
	// headers are stripped.
	// +optional
	TrustedProxy *TrustedProxySpec `json:"trustedProxy,omitempty"`
}

// OIDCSpec is an OpenID Connect issuer whose tokens the proxy accepts.
type OIDCSpec struct {
	// IssuerURL of the provider; its discovery document names the keys.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^https://[^ ]+$')",message="spec.audit.identity.oidc.issuerURL must be an https URL"
	IssuerURL string `json:"issuerURL"`
	// Audience the tokens must be issued for.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Audience string `json:"audience"`
	// UsernameClaim names the caller; sub by default.
	// +optional
	// +kubebuilder:default=sub
	// +kubebuilder:validation:MaxLength=64
	UsernameClaim string `json:"usernameClaim,omitempty"`
	// GroupsClaim lists the caller's groups; groups by default.
	// +optional
	// +kubebuilder:default=groups
	// +kubebuilder:validation:MaxLength=64
	GroupsClaim string `json:"groupsClaim,omitempty"`
}

// TrustedProxySpec is an authenticating proxy in front of the audit proxy.
type TrustedProxySpec struct {
	// CIDRs the authenticating proxy connects from.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c))",message="spec.audit.identity.trustedProxy.cidrs must hold valid CIDRs"
	CIDRs []string `json:"cidrs"`
	// UserHeader carries the user; X-Forwarded-User by default.
	// +optional
	// +kubebuilder:default=X-Forwarded-User
	// +kubebuilder:validation:MaxLength=64
	UserHeader string `json:"userHeader,omitempty"`
	// GroupsHeader carries the comma-separated groups; X-Forwarded-Groups by default.
	// +optional
	// +kubebuilder:default=X-Forwarded-Groups
	// +kubebuilder:validation:MaxLength=64
	GroupsHeader string `json:"groupsHeader,omitempty"`
}

// AuditRoute maps a method and path to data categories and an action.
// +kubebuilder:validation:XValidation:rule="!has(self.allowWebSocket) || !self.allowWebSocket || self.method == 'GET'",fieldPath=".allowWebSocket",message="spec.audit.routes[].allowWebSocket needs method GET: a WebSocket opens with a GET"
// +kubebuilder:validation:XValidation:rule="!has(self.records) || !self.path.contains('{dossier}')",fieldPath=".records",message="spec.audit.routes[].records is only for a route without {dossier}: a route with {dossier} is decided for its one dossier"
// +kubebuilder:validation:XValidation:rule="!has(self.records) || !has(self.allowWebSocket) || !self.allowWebSocket",fieldPath=".records",message="spec.audit.routes[].records cannot be combined with allowWebSocket: the messages of a WebSocket cannot be filtered"
// +kubebuilder:validation:XValidation:rule="!has(self.records) || self.method != 'HEAD'",fieldPath=".records",message="spec.audit.routes[].records needs a method whose response has a body, not HEAD"
type AuditRoute struct {
	// Name of the route, unique within the store.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Method is the HTTP method.
	// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE
	Method string `json:"method"`
	// Path pattern; {dossier} stands for the dossier identifier and * for
	// one path segment. Example: /api/dossiers/{dossier}/reports.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^/[A-Za-z0-9._~/*{}-]*$')",message="spec.audit.routes[].path must start with / and hold only letters, digits, . _ ~ / * - and the {dossier} placeholder"
	Path string `json:"path"`
	// Categories the route touches.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=11
	// +listType=set
	Categories []DataCategory `json:"categories"`
	// Action the route performs.
	Action Action `json:"action"`
	// ProcessingActivities the route serves: ProcessingActivities in the
	// store's namespace. A request on the route is allowed only under one
	// of them that the caller's role (or the partner's agreement) also
	// serves. A route without activities is decided as before, by
	// categories and action only.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	ProcessingActivities []ActivityName `json:"processingActivities,omitempty"`
	// AllowWebSocket lets a request of this route upgrade its connection to
	// a WebSocket. The proxy audits the opening request only; everything
	// sent over the WebSocket afterwards is not seen, so allow it only for
	// a route whose messages stay within its categories and action. Every
	// other upgrade (h2c, or any upgrade on another route) is refused.
	// +optional
	AllowWebSocket bool `json:"allowWebSocket,omitempty"`
	// Records says how the response of a route without {dossier} (a list,
	// a bulk export) names the dossiers of its items, so that the audit
	// proxy can leave out the items of dossiers that are restricted or
	// objected to. Without it, such a route is refused whole while a
	// restriction or objection in force reaches it.
	// +optional
	Records *RecordsSpec `json:"records,omitempty"`
}

// RecordsFormat is the format of a response that lists records.
// +kubebuilder:validation:Enum=JSON
type RecordsFormat string

// The records formats.
const (
	// RecordsJSON: a JSON document (application/json or a +json type)
	// with the items in one array.
	RecordsJSON RecordsFormat = "JSON"
)

// Bounds of a records route's response (spec.audit.routes[].records.maxBodyBytes).
const (
	DefaultRecordsMaxBodyBytes int64 = 8 << 20
	MaxRecordsMaxBodyBytes     int64 = 64 << 20
)

// RecordsSpec is how a response names the dossiers of its items. The audit
// proxy reads the whole response (at most maxBodyBytes, after
// decompression), leaves out the items of dossiers a restriction or an
// objection in force reaches, and refuses the response (502) when it is not
// the declared JSON, an item has no usable dossier field, or it is larger
// than the bound: nothing of it is sent then.
type RecordsSpec struct {
	// Format of the response; JSON.
	// +kubebuilder:default=JSON
	Format RecordsFormat `json:"format"`
	// Items is the JSON Pointer (RFC 6901) to the array of items, such as
	// /addresses; "" when the response is the array itself.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^(/([^~/]|~[01])*)+$')",message="spec.audit.routes[].records.items must be a JSON Pointer such as /addresses (each token after a /, ~ written ~0 and / written ~1), or empty for a top-level array"
	Items string `json:"items,omitempty"`
	// DossierField is the JSON Pointer, within an item, to the dossier id
	// the item belongs to, such as /dossier: a string (or an integer) in
	// the form of {dossier} path segments, pseudonymised as the proxy
	// pseudonymises those.
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^(/([^~/]|~[01])*)+$')",message="spec.audit.routes[].records.dossierField must be a JSON Pointer within an item, such as /dossier (each token after a /, ~ written ~0 and / written ~1)"
	DossierField string `json:"dossierField"`
	// MaxBodyBytes bounds the response the proxy reads, after
	// decompression: 8 MiB by default, at most 64 MiB. A larger response is
	// refused with 502.
	// +optional
	// +kubebuilder:default=8388608
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=67108864
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
}

// DossierStoreStatus is the observed state of a DossierStore.
type DossierStoreStatus struct {
	CommonStatus `json:",inline"`

	// Encryption is how encryption at rest was established: Verified from
	// the StorageClass parameters, Attested by the platform team, or
	// Unverified.
	// +optional
	Encryption string `json:"encryption,omitempty"`
	// ClaimName is the PersistentVolumeClaim that holds the dossiers.
	// +optional
	ClaimName string `json:"claimName,omitempty"`
	// KeySecretName is the Secret with the versioned data keys.
	// +optional
	KeySecretName string `json:"keySecretName,omitempty"`
	// KeyVersion is the current data-key version.
	// +optional
	KeyVersion int32 `json:"keyVersion,omitempty"`
	// NextKeyRotation is when the next key version will be added.
	// +optional
	NextKeyRotation *metav1.Time `json:"nextKeyRotation,omitempty"`
	// AuditSigningSecretName is the Secret with the versioned keys that sign
	// the audit log's checkpoints; only the audit proxy reads it.
	// +optional
	AuditSigningSecretName string `json:"auditSigningSecretName,omitempty"`
	// PseudonymSecretName is the Secret with the key that pseudonymises
	// data subjects in the audit log, read by the audit proxy and by those
	// bound to Role <store>-pseudonym-reader. It is never rotated.
	// +optional
	PseudonymSecretName string `json:"pseudonymSecretName,omitempty"`
	// AuditSigningKey is the checkpoint signing key the audit proxy signs
	// with, and when the next version is due.
	// +optional
	AuditSigningKey *SigningKeyStatus `json:"auditSigningKey,omitempty"`
	// Agreements summarises the store's sharing agreements.
	// +optional
	Agreements *AgreementSummary `json:"agreements,omitempty"`
}

// SigningKeyStatus describes a store's checkpoint signing key.
type SigningKeyStatus struct {
	// KeyID is the id of the version the proxy signs with, as checkpoints
	// name it (key_id): the first 16 hex digits of the SHA-256 of the
	// public key's PKIX encoding.
	KeyID string `json:"keyID"`
	// Version is that version's number.
	Version int32 `json:"version"`
	// Created is when that version was made; its age is the time since.
	Created metav1.Time `json:"created"`
	// Versions is the number of versions kept, the newest possibly not
	// active yet.
	Versions int32 `json:"versions"`
	// PendingKeyID is the id of a newer version the proxy will sign with
	// from PendingActiveFrom, once its public key has reached the logbook.
	// +optional
	PendingKeyID string `json:"pendingKeyID,omitempty"`
	// +optional
	PendingActiveFrom *metav1.Time `json:"pendingActiveFrom,omitempty"`
	// NextRotation is when the next version is due.
	NextRotation metav1.Time `json:"nextRotation"`
}

// AgreementSummary counts a store's sharing agreements.
type AgreementSummary struct {
	// InForce is the number of agreements now in force.
	InForce int32 `json:"inForce"`
	// NotInForce is the number of agreements not in force.
	NotInForce int32 `json:"notInForce"`
	// Reasons counts the agreements not in force by reason.
	// +optional
	Reasons map[string]int32 `json:"reasons,omitempty"`
}

// DossierStore is an encrypted store for the dossiers of one service: a
// volume on storage verified to encrypt at rest, a rotating data key, a
// default-deny network boundary around the workload, and the access policy
// its audit proxy enforces.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dstore,categories=privacy
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`
// +kubebuilder:printcolumn:name="Encryption",type=string,JSONPath=`.status.encryption`
// +kubebuilder:printcolumn:name="Key",type=integer,JSONPath=`.status.keyVersion`,description="Current data-key version"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Compliant",type=string,JSONPath=`.status.conditions[?(@.type=="Compliant")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Signing-Key",type=string,JSONPath=`.status.auditSigningKey.keyID`,priority=1,description="Id of the checkpoint signing key in use"
// +kubebuilder:printcolumn:name="Signing-Key-Age",type=date,JSONPath=`.status.auditSigningKey.created`,priority=1,description="Age of the checkpoint signing key in use"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DossierStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DossierStoreSpec   `json:"spec"`
	Status DossierStoreStatus `json:"status,omitempty"`
}

// DossierStoreList is a list of DossierStores.
// +kubebuilder:object:root=true
type DossierStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DossierStore `json:"items"`
}

func init() {
	SchemeBuilder.Register(&DossierStore{}, &DossierStoreList{})
}
