package egressgateway

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/policyfile"
)

// Policy is a loaded egress document, ready to decide requests. It is
// immutable.
type Policy struct {
	// Doc is the document.
	Doc accesspolicy.EgressDocument
	// Hash is the hex SHA-256 of the document's bytes as read.
	Hash       string
	agreements map[string]*agreement
}

// agreement is an agreement of the document with its compiled routes and
// parsed endpoint.
type agreement struct {
	entry    *accesspolicy.EgressAgreement
	router   *auditproxy.Router
	endpoint *url.URL
}

// ParsePolicy decodes and checks an egress document; what the gateway could
// not enforce exactly is refused, so that a broken document never replaces
// a good one.
func ParsePolicy(data []byte) (*Policy, error) {
	p, hash, err := policyfile.Load(data, accesspolicy.DecodeEgress, NewPolicy)
	if err != nil {
		return nil, err
	}
	p.Hash = hash
	return p, nil
}

// NewPolicy checks and compiles a document: agreements as the audit proxy
// checks them, an https endpoint without user info, query or fragment for
// each, and routes with a name, an upper-case method, categories, the
// export action and a valid pattern.
func NewPolicy(doc accesspolicy.EgressDocument) (*Policy, error) {
	entries := make([]accesspolicy.Agreement, len(doc.Agreements))
	for i := range doc.Agreements {
		entries[i] = doc.Agreements[i].Agreement
	}
	if err := auditproxy.CheckAgreements(entries); err != nil {
		return nil, fmt.Errorf("egress policy: %w", err)
	}
	p := &Policy{Doc: doc, agreements: map[string]*agreement{}}
	for i := range p.Doc.Agreements {
		e := &p.Doc.Agreements[i]
		if errs := validation.IsDNS1123Subdomain(e.Name); len(errs) > 0 || strings.Contains(e.Name, ".") {
			return nil, fmt.Errorf("egress policy: agreement %q: the name must be a DNS label, as it is the first segment of the gateway's paths", e.Name)
		}
		u, err := CheckEndpoint(e.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("egress policy: agreement %q: %w", e.Name, err)
		}
		if err := checkRoutes(e.Routes); err != nil {
			return nil, fmt.Errorf("egress policy: agreement %q: %w", e.Name, err)
		}
		router, err := auditproxy.NewRouter(e.Routes)
		if err != nil {
			return nil, fmt.Errorf("egress policy: agreement %q: %w", e.Name, err)
		}
		p.agreements[e.Name] = &agreement{entry: e, router: router, endpoint: u}
	}
	return p, nil
}

// CheckEndpoint parses a partner endpoint: an https URL with a host, no user
// name or password, no query and no fragment (the API's CEL rules, checked
// again where the URL is used).
func CheckEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || u.Scheme != "https" || u.Hostname() == "":
		return nil, fmt.Errorf("endpoint must be an https URL with a host")
	case u.User != nil:
		return nil, fmt.Errorf("endpoint must not hold a user name or password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(endpoint, "?#"):
		return nil, fmt.Errorf("endpoint must not hold a query or fragment")
	}
	return u, nil
}

// checkRoutes checks outbound routes as the audit proxy checks its routes
// (auditproxy.CheckRoutes), and that each exports and does not upgrade.
func checkRoutes(routes []accesspolicy.Route) error {
	return auditproxy.CheckRoutes(routes, func(r accesspolicy.Route) error {
		switch {
		case r.Action != v1alpha1.ActionExport:
			return fmt.Errorf("route %q: the action of an outbound route is export", r.Name)
		case r.AllowWebSocket:
			return fmt.Errorf("route %q: an outbound route cannot upgrade to a WebSocket", r.Name)
		}
		return nil
	})
}

// Outbound is an outbound request as the policy reads it.
type Outbound struct {
	// Agreement is the named agreement; nil when the document has none of
	// that name.
	Agreement *accesspolicy.EgressAgreement
	// Endpoint is the agreement's parsed endpoint.
	Endpoint *url.URL
	// Match is the route the partner path matched.
	Match auditproxy.RouteMatch
	// PartnerPath is the decoded partner path, "/" and canonical segments,
	// as it is appended to the endpoint's path.
	PartnerPath string
}

// SplitPath splits an escaped gateway path /<agreement>/<partner path> into
// the agreement's name and the escaped partner path ("/" when there is
// none). ok is false when the path does not start with a segment.
func SplitPath(escapedPath string) (agreementName, partnerPath string, ok bool) {
	rest, found := strings.CutPrefix(escapedPath, "/")
	if !found {
		return "", "", false
	}
	name, tail, _ := strings.Cut(rest, "/")
	if name == "" {
		return "", "", false
	}
	return name, "/" + tail, true
}

// Match reads an outbound request: the agreement its path names, and the
// route of that agreement that the method and partner path match. found
// is false (with Agreement nil) for an unknown agreement, or (with
// Agreement set) when no route matches; err is a non-canonical partner
// path (auditproxy.ErrNonCanonicalPath).
func (p *Policy) Match(method, agreementName, escapedPartnerPath string) (o Outbound, found bool, err error) {
	a := p.agreements[agreementName]
	if a == nil {
		return Outbound{}, false, nil
	}
	o = Outbound{Agreement: a.entry, Endpoint: a.endpoint}
	m, found, err := a.router.Match(method, escapedPartnerPath)
	if err != nil || !found {
		return o, false, err
	}
	o.Match = m
	// A canonical path decodes to unreserved characters only; what the
	// partner receives is what was matched.
	if o.PartnerPath, err = url.PathUnescape(escapedPartnerPath); err != nil {
		return Outbound{Agreement: a.entry, Endpoint: a.endpoint}, false, auditproxy.ErrNonCanonicalPath
	}
	return o, true, nil
}

// NewPolicySource returns the source of the egress document at path (the
// store's egress ConfigMap, mounted), polled and swapped as the audit
// proxy's access policy is; nothing is read yet.
func NewPolicySource(path string, log *slog.Logger) *policyfile.Source[Policy] {
	return policyfile.NewSource(path, accesspolicy.EgressFormat.Name, log, ParsePolicy, func(p *Policy) []any {
		return []any{"store", p.Doc.Store, "agreements", len(p.Doc.Agreements)}
	})
}
