package auditproxy

import (
	"log/slog"

	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/policyfile"
)

// DefaultPolicyPollInterval is how often the policy file is read.
const DefaultPolicyPollInterval = policyfile.DefaultPollInterval

// PolicySource keeps the current access policy, read from a file and
// polled as the egress gateway's egress policy is (policyfile.Source).
type PolicySource struct{ *policyfile.Source[Policy] }

// NewPolicySource returns a source for the file at path; nothing is read yet.
func NewPolicySource(path string, log *slog.Logger) *PolicySource {
	return &PolicySource{policyfile.NewSource(path, accesspolicy.Format.Name, log, ParsePolicy, func(p *Policy) []any {
		return []any{"store", p.Doc.Store, "routes", len(p.Doc.Routes), "roles", len(p.Doc.Roles)}
	})}
}
