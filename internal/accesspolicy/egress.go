package accesspolicy

import (
	"sort"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/policyfile"
)

// EgressConfigMapKey is the key of the egress document in its ConfigMap.
const EgressConfigMapKey = "egress.json"

// The files of one agreement's TLS material in the egress gateway's TLS
// directory, under a directory named after the agreement: the CA bundle
// (spec.partner.tls.caBundle) and, when the agreement names one, the client
// certificate and its key (the kubernetes.io/tls Secret of
// spec.partner.tls.clientCertificateSecretName).
const (
	EgressCAFile         = "ca.crt"
	EgressClientCertFile = "tls.crt"
	EgressClientKeyFile  = "tls.key"
)

// EgressVersion of the egress document format.
const EgressVersion = 1

// EgressDocument is what a store's egress gateway enforces: every agreement
// of the store with a partner endpoint, in force or not (the gateway decides
// per request whether one is in force at that instant, for the Outbound
// flow), with the outbound routes the application may send under it. Like
// Document it is canonical: the same agreements give the same bytes.
type EgressDocument struct {
	Version            int    `json:"version"`
	Store              string `json:"store"`
	Namespace          string `json:"namespace"`
	ProcessingActivity string `json:"processingActivity,omitempty"`
	// Agreements are sorted by name.
	Agreements []EgressAgreement `json:"agreements"`
	// ActivityIDs maps the activities the agreements and their routes name
	// to what audit events record for them (see Document.ActivityIDs).
	ActivityIDs map[string]string `json:"activityIDs,omitempty"`
}

// EgressAgreement is an agreement as the egress gateway enforces it: the
// entry the audit proxy decides partners' requests by (the same decision
// code decides outbound requests), the partner's endpoint, the outbound
// routes and whether a client certificate is presented.
type EgressAgreement struct {
	Agreement
	// Endpoint is the partner's https base URL.
	Endpoint string `json:"endpoint"`
	// Routes are the outbound routes, sorted by name; their action is
	// always export (the data leaves the store).
	Routes []Route `json:"routes"`
	// ClientCertificate is true when the gateway presents a client
	// certificate to the partner (mutual TLS).
	ClientCertificate bool `json:"clientCertificate,omitempty"`
}

// ActivityID is what an event records for a request allowed under the named
// activity; see Document.ActivityID.
func (d *EgressDocument) ActivityID(name string) string {
	return activityID(d.ActivityIDs, d.ProcessingActivity, name)
}

// Agreement returns the agreement of that name, nil when there is none.
func (d *EgressDocument) Agreement(name string) *EgressAgreement {
	i := sort.Search(len(d.Agreements), func(i int) bool { return d.Agreements[i].Name >= name })
	if i < len(d.Agreements) && d.Agreements[i].Name == name {
		return &d.Agreements[i]
	}
	return nil
}

// EgressEntry turns a SharingAgreement with a partner endpoint into its
// egress document entry; ok is false for an agreement without an endpoint,
// which sends nothing through the gateway. refused is as for
// AgreementEntry.
func EgressEntry(a *v1alpha1.SharingAgreement, refused string) (entry EgressAgreement, ok bool) {
	p := &a.Spec.Partner
	if p.Endpoint == "" {
		return EgressAgreement{}, false
	}
	e := EgressAgreement{
		Agreement:         AgreementEntry(a, refused),
		Endpoint:          p.Endpoint,
		Routes:            make([]Route, 0, len(a.Spec.OutboundRoutes)),
		ClientCertificate: p.TLS != nil && p.TLS.ClientCertificateSecretName != "",
	}
	for _, r := range a.Spec.OutboundRoutes {
		e.Routes = append(e.Routes, Route{
			Name: r.Name, Method: r.Method, Path: r.Path, Categories: canonicalCategories(r.Categories),
			Action: v1alpha1.ActionExport, Activities: activityNames(r.ProcessingActivities),
		})
	}
	sort.Slice(e.Routes, func(i, j int) bool { return e.Routes[i].Name < e.Routes[j].Name })
	return e, true
}

// BuildEgress assembles the canonical egress document of a store from the
// entries of its agreements with an endpoint (see EgressEntry) and records
// the IDs of the activities they name.
func BuildEgress(store *v1alpha1.DossierStore, agreements []EgressAgreement, activities []v1alpha1.ProcessingActivity) EgressDocument {
	doc := EgressDocument{
		Version:    EgressVersion,
		Store:      store.Name,
		Namespace:  store.Namespace,
		Agreements: append(make([]EgressAgreement, 0, len(agreements)), agreements...),
	}
	if a := store.Spec.Audit; a != nil {
		doc.ProcessingActivity = a.ProcessingActivity
	}
	sort.Slice(doc.Agreements, func(i, j int) bool { return doc.Agreements[i].Name < doc.Agreements[j].Name })
	named := map[string]bool{}
	for _, g := range doc.Agreements {
		for _, a := range g.Activities {
			named[a] = true
		}
		for _, r := range g.Routes {
			for _, a := range r.Activities {
				named[a] = true
			}
		}
	}
	doc.ActivityIDs = activityIDs(named, activities)
	return doc
}

// EgressFormat is the egress document's format: version EgressVersion.
var EgressFormat = policyfile.Format{Name: "egress policy", MinVersion: EgressVersion, MaxVersion: EgressVersion}

// EncodeEgress returns the egress document's canonical bytes and their
// SHA-256 in hex.
func EncodeEgress(doc EgressDocument) ([]byte, string, error) { return EgressFormat.Encode(doc) }

// DecodeEgress parses an egress document, refusing an unknown version.
func DecodeEgress(data []byte) (EgressDocument, error) {
	var doc EgressDocument
	if err := EgressFormat.Decode(data, &doc); err != nil {
		return EgressDocument{}, err
	}
	return doc, nil
}
