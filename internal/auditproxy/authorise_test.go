package auditproxy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
)

// testDocument is the access policy most tests enforce.
func testDocument() accesspolicy.Document {
	cats := func(c ...v1alpha1.DataCategory) []v1alpha1.DataCategory { return c }
	acts := func(a ...v1alpha1.Action) []v1alpha1.Action { return a }
	group := func(n string) accesspolicy.Subject { return accesspolicy.Subject{Kind: v1alpha1.SubjectGroup, Name: n} }
	return accesspolicy.Document{
		Version: accesspolicy.Version, Store: "wijkteam-dossiers", Namespace: "wijkteam",
		ProcessingActivity: "https://register.example.nl/verwerkingen/wijkteam-ondersteuning",
		Routes: []accesspolicy.Route{
			{Name: "export", Method: "GET", Path: "/api/dossiers/{dossier}/export", Categories: cats("identity", "plan"), Action: "export"},
			{Name: "list", Method: "GET", Path: "/api/dossiers", Categories: cats("identity"), Action: "read"},
			{Name: "read-dossier", Method: "GET", Path: "/api/dossiers/{dossier}", Categories: cats("identity", "contact", "request"), Action: "read"},
			{Name: "read-safety", Method: "GET", Path: "/api/dossiers/{dossier}/safety", Categories: cats("safety"), Action: "read"},
			{Name: "write-plan", Method: "PUT", Path: "/api/dossiers/{dossier}/plan", Categories: cats("plan"), Action: "write"},
		},
		Roles: []accesspolicy.Role{
			{Name: "basis", Purpose: "p", Subjects: []accesspolicy.Subject{group("coaches")}, Categories: cats("identity", "contact"), Actions: acts("read")},
			{Name: "batch", Purpose: "p", Subjects: []accesspolicy.Subject{{Kind: v1alpha1.SubjectServiceAccount, Namespace: "wijkteam", Name: "exporter"}}, Categories: cats("identity", "plan"), Actions: acts("export")},
			{Name: "casework", Purpose: "p", Subjects: []accesspolicy.Subject{group("casework")}, Categories: cats("identity", "contact", "request"), Actions: acts("read"), AssignedCasesOnly: true},
			{Name: "crisis-assigned", Purpose: "p", Subjects: []accesspolicy.Subject{group("crisis-assigned")}, Categories: cats("safety"), Actions: acts("read"), BreakGlass: true, AssignedCasesOnly: true},
			{Name: "intake", Purpose: "p", Subjects: []accesspolicy.Subject{{Kind: v1alpha1.SubjectUser, Name: "an@example.nl"}}, Categories: cats("request", "plan"), Actions: acts("read", "write")},
			{Name: "noodtoegang", Purpose: "p", Subjects: []accesspolicy.Subject{group("crisis")}, Categories: cats("identity", "contact", "request", "safety"), Actions: acts("read"), BreakGlass: true},
		},
	}
}

// fakeAssignments assigns dossier D-1 to everyone, fails for DOWN and
// counts the questions.
type fakeAssignments struct{ calls atomic.Int32 }

func (f *fakeAssignments) Assigned(_ context.Context, _, dossier string) (bool, error) {
	f.calls.Add(1)
	switch dossier {
	case "D-1":
		return true, nil
	case "DOWN":
		return false, errors.New("assignment source unreachable: connection refused")
	}
	return false, nil
}

func TestAuthorise(t *testing.T) {
	pol, err := NewPolicy(testDocument())
	if err != nil {
		t.Fatal(err)
	}
	empty, err := NewPolicy(accesspolicy.Document{Version: 1, Routes: []accesspolicy.Route{}, Roles: []accesspolicy.Role{}})
	if err != nil {
		t.Fatal(err)
	}
	routesOnly := testDocument()
	routesOnly.Roles = nil
	noRoles, err := NewPolicy(routesOnly)
	if err != nil {
		t.Fatal(err)
	}
	const sa = "system:serviceaccount:"
	tests := []struct {
		name         string
		policy       *Policy
		noSource     bool // no assignment source configured
		method, path string
		user         string
		groups       []string
		reason       string

		noRoute     bool
		allowed     bool
		roles       []string
		breakGlass  bool
		missing     []string
		why         DecisionReason
		calls       int32
		detailHas   string
		assignErred bool
	}{
		// Subjects.
		{name: "user subject alone is not enough", method: "GET", path: "/api/dossiers/D-9", user: "an@example.nl",
			roles: []string{"intake"}, missing: []string{"identity", "contact"}, why: ReasonCategoriesNotGranted},
		{name: "group subject alone is not enough", method: "GET", path: "/api/dossiers/D-9", user: "bo", groups: []string{"coaches"},
			roles: []string{"basis"}, missing: []string{"request"}, why: ReasonCategoriesNotGranted},
		{name: "categories are the union across user and group roles", method: "GET", path: "/api/dossiers/D-9", user: "an@example.nl", groups: []string{"coaches"},
			allowed: true, roles: []string{"basis", "intake"}},
		{name: "service account subject", method: "GET", path: "/api/dossiers/D-9/export", user: sa + "wijkteam:exporter",
			allowed: true, roles: []string{"batch"}},
		{name: "service account in another namespace", method: "GET", path: "/api/dossiers/D-9/export", user: sa + "other:exporter",
			missing: []string{"identity", "plan"}, why: ReasonCategoriesNotGranted},
		{name: "a group named like the service account is not it", method: "GET", path: "/api/dossiers/D-9/export", user: "cy", groups: []string{"exporter"},
			missing: []string{"identity", "plan"}, why: ReasonCategoriesNotGranted},
		{name: "user name must match exactly", method: "PUT", path: "/api/dossiers/D-9/plan", user: "AN@example.nl",
			missing: []string{"plan"}, why: ReasonCategoriesNotGranted},
		{name: "caller without roles", method: "GET", path: "/api/dossiers/D-9", user: "nobody",
			missing: []string{"identity", "contact", "request"}, why: ReasonCategoriesNotGranted},

		// Actions.
		{name: "role with the categories but not the action", method: "PUT", path: "/api/dossiers/D-9/plan", user: "bo", groups: []string{"coaches"},
			missing: []string{"plan"}, why: ReasonCategoriesNotGranted},
		{name: "role with the action", method: "PUT", path: "/api/dossiers/D-9/plan", user: "an@example.nl",
			allowed: true, roles: []string{"intake"}},
		{name: "export role does not read", method: "GET", path: "/api/dossiers", user: sa + "wijkteam:exporter",
			missing: []string{"identity"}, why: ReasonCategoriesNotGranted},

		// Routes.
		{name: "unknown route", method: "GET", path: "/api/admin", user: "an@example.nl", groups: []string{"coaches"}, noRoute: true},
		{name: "unknown method", method: "DELETE", path: "/api/dossiers/D-9", user: "an@example.nl", groups: []string{"coaches"}, noRoute: true},
		{name: "empty policy matches nothing", policy: empty, method: "GET", path: "/api/dossiers/D-9", user: "an@example.nl", noRoute: true},
		{name: "policy without roles denies", policy: noRoles, method: "GET", path: "/api/dossiers", user: "an@example.nl", groups: []string{"coaches"},
			missing: []string{"identity"}, why: ReasonCategoriesNotGranted},

		// Assigned cases.
		{name: "assigned dossier", method: "GET", path: "/api/dossiers/D-1", user: "bo", groups: []string{"casework"},
			allowed: true, roles: []string{"casework"}, calls: 1},
		{name: "dossier not assigned", method: "GET", path: "/api/dossiers/D-2", user: "bo", groups: []string{"casework"},
			missing: []string{"identity", "contact", "request"}, why: ReasonCategoriesNotGranted, calls: 1},
		{name: "assignment source down is denied", method: "GET", path: "/api/dossiers/DOWN", user: "bo", groups: []string{"casework"},
			missing: []string{"identity", "contact", "request"}, why: ReasonAssignmentUnavailable, calls: 1, detailHas: "fail closed", assignErred: true},
		{name: "no assignment source configured is denied", noSource: true, method: "GET", path: "/api/dossiers/D-1", user: "bo", groups: []string{"casework"},
			missing: []string{"identity", "contact", "request"}, why: ReasonAssignmentUnavailable, assignErred: true},
		{name: "assigned-only role on a route without dossier", method: "GET", path: "/api/dossiers", user: "bo", groups: []string{"casework"},
			missing: []string{"identity"}, why: ReasonCategoriesNotGranted},
		{name: "assignment not asked when other roles suffice", method: "GET", path: "/api/dossiers/D-2", user: "an@example.nl", groups: []string{"coaches", "casework"},
			allowed: true, roles: []string{"basis", "intake"}},
		{name: "assigned role completes the union", method: "GET", path: "/api/dossiers/D-1", user: "bo", groups: []string{"coaches", "casework"},
			allowed: true, roles: []string{"basis", "casework"}, calls: 1},

		// Break-glass.
		{name: "break-glass with a reason", method: "GET", path: "/api/dossiers/D-9/safety", user: "bo", groups: []string{"crisis"}, reason: "acute zorgen over veiligheid",
			allowed: true, breakGlass: true, roles: []string{"noodtoegang"}},
		{name: "break-glass without a reason", method: "GET", path: "/api/dossiers/D-9/safety", user: "bo", groups: []string{"crisis"},
			missing: []string{"safety"}, why: ReasonCategoriesNotGranted, detailHas: BreakGlassHeader},
		{name: "break-glass not used when normal roles suffice", method: "GET", path: "/api/dossiers", user: "bo", groups: []string{"coaches", "crisis"}, reason: "spoed",
			allowed: true, roles: []string{"basis"}},
		{name: "break-glass completes normal roles", method: "GET", path: "/api/dossiers/D-9", user: "an@example.nl", groups: []string{"crisis"}, reason: "spoed",
			allowed: true, breakGlass: true, roles: []string{"intake", "noodtoegang"}},
		{name: "break-glass limited to assigned cases, assigned", method: "GET", path: "/api/dossiers/D-1/safety", user: "bo", groups: []string{"crisis-assigned"}, reason: "spoed",
			allowed: true, breakGlass: true, roles: []string{"crisis-assigned"}, calls: 1},
		{name: "break-glass limited to assigned cases, not assigned", method: "GET", path: "/api/dossiers/D-2/safety", user: "bo", groups: []string{"crisis-assigned"}, reason: "spoed",
			missing: []string{"safety"}, why: ReasonCategoriesNotGranted, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			if p == nil {
				p = pol
			}
			fa := &fakeAssignments{}
			var src AssignmentChecker = fa
			if tt.noSource {
				src = nil
			}
			m, ok, err := p.Match(tt.method, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if !tt.noRoute {
					t.Fatalf("no route matched %s %s", tt.method, tt.path)
				}
				return
			}
			if tt.noRoute {
				t.Fatalf("route %q matched, want none", m.Route.Name)
			}
			d := p.Authorise(context.Background(), Identity{User: tt.user, Groups: tt.groups}, m, tt.reason, src)
			if d.Allowed != tt.allowed || d.BreakGlass != tt.breakGlass || d.Reason != tt.why {
				t.Errorf("allowed %v breakGlass %v reason %q, want %v %v %q (detail: %s)", d.Allowed, d.BreakGlass, d.Reason, tt.allowed, tt.breakGlass, tt.why, d.Detail)
			}
			if tt.roles == nil {
				tt.roles = []string{}
			}
			if !slices.Equal(d.Roles, tt.roles) {
				t.Errorf("roles %v, want %v", d.Roles, tt.roles)
			}
			if !slices.Equal(d.Missing, tt.missing) {
				t.Errorf("missing %v, want %v", d.Missing, tt.missing)
			}
			if got := fa.calls.Load(); got != tt.calls {
				t.Errorf("assignment source asked %d times, want %d", got, tt.calls)
			}
			if (d.AssignmentErr != nil) != tt.assignErred {
				t.Errorf("assignment error %v, want error: %v", d.AssignmentErr, tt.assignErred)
			}
			if tt.detailHas != "" && !strings.Contains(d.Detail, tt.detailHas) {
				t.Errorf("detail %q lacks %q", d.Detail, tt.detailHas)
			}
			if strings.Contains(d.Detail, tt.user) && tt.user != "" || strings.Contains(d.Detail, "D-") {
				t.Errorf("detail names the caller or the dossier: %q", d.Detail)
			}
		})
	}
}

func TestParsePolicyRefusesWhatCannotBeEnforced(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":             `{`,
		"unknown version":      `{"version":3,"routes":[],"roles":[]}`,
		"route without cats":   `{"version":1,"routes":[{"name":"r","method":"GET","path":"/x","categories":[],"action":"read"}],"roles":[]}`,
		"bad action":           `{"version":1,"routes":[{"name":"r","method":"GET","path":"/x","categories":["identity"],"action":"delete"}],"roles":[]}`,
		"duplicate route":      `{"version":1,"routes":[{"name":"r","method":"GET","path":"/x","categories":["identity"],"action":"read"},{"name":"r","method":"GET","path":"/y","categories":["identity"],"action":"read"}],"roles":[]}`,
		"bad pattern":          `{"version":1,"routes":[{"name":"r","method":"GET","path":"/x/{id}","categories":["identity"],"action":"read"}],"roles":[]}`,
		"lower-case method":    `{"version":1,"routes":[{"name":"r","method":"get","path":"/x","categories":["identity"],"action":"read"}],"roles":[]}`,
		"unknown subject kind": `{"version":1,"routes":[],"roles":[{"name":"a","purpose":"p","subjects":[{"kind":"Robot","name":"r"}],"categories":["identity"],"actions":["read"],"assignedCasesOnly":false,"breakGlass":false}]}`,
	} {
		if _, err := ParsePolicy([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	data, _, err := accesspolicy.Encode(testDocument())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(data)
	if err != nil || len(p.Hash) != 64 {
		t.Fatalf("canonical document refused: %v", err)
	}
}

func TestServiceAccountName(t *testing.T) {
	for user, want := range map[string]string{
		"system:serviceaccount:ns:name":  "ns/name",
		"system:serviceaccount:ns:":      "",
		"system:serviceaccount::name":    "",
		"system:serviceaccount:ns:a:b":   "",
		"system:serviceaccounts:ns:name": "",
		"serviceaccount:ns:name":         "",
		"an@example.nl":                  "",
	} {
		ns, name, ok := serviceAccount(user)
		got := ""
		if ok {
			got = ns + "/" + name
		}
		if got != want {
			t.Errorf("%q: %q, want %q", user, got, want)
		}
	}
}
