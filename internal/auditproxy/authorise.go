package auditproxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/accesspolicy"
	"github.com/dossierguard/dossierguard/internal/policyfile"
)

// serviceAccountPrefix starts the user name of a Kubernetes service account:
// system:serviceaccount:<namespace>:<name>.
const serviceAccountPrefix = "system:serviceaccount:"

// Identity is an authenticated caller.
type Identity struct {
	// User is the caller's name: the configured claim of a verified token,
	// or the user header of a trusted authenticating proxy.
	User string
	// Groups the caller belongs to.
	Groups []string
	// ClientID is the OAuth client of a verified token (its azp or
	// client_id claim), empty otherwise. Only partner agreements use it.
	ClientID string
}

// AssignmentChecker says whether a dossier is assigned to a user. An error
// means the answer is unknown; the proxy then fails closed.
type AssignmentChecker interface {
	Assigned(ctx context.Context, user, dossier string) (bool, error)
}

// ErrNoAssignmentSource is returned when a role limited to assigned cases
// applies and no assignment source is configured.
var ErrNoAssignmentSource = errors.New("no assignment source is configured (--assignment-url)")

// Policy is a loaded access-policy document, ready to decide requests. It is
// immutable.
type Policy struct {
	// Doc is the document.
	Doc accesspolicy.Document
	// Hash is the hex SHA-256 of the document's bytes as read.
	Hash   string
	router *Router
}

// ParsePolicy decodes and checks an access-policy document. Anything the
// proxy could not enforce exactly is refused, so that a broken document
// never replaces a good one.
func ParsePolicy(data []byte) (*Policy, error) {
	p, hash, err := policyfile.Load(data, accesspolicy.Decode, NewPolicy)
	if err != nil {
		return nil, err
	}
	p.Hash = hash
	return p, nil
}

// NewPolicy checks and compiles a document.
func NewPolicy(doc accesspolicy.Document) (*Policy, error) {
	if err := CheckRoutes(doc.Routes, func(r accesspolicy.Route) error {
		if !validAction(r.Action) {
			return fmt.Errorf("route %q: action must be read, write or export", r.Name)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("access policy: %w", err)
	}
	for i, r := range doc.Roles {
		if r.Name == "" {
			return nil, fmt.Errorf("access policy: roles[%d] has no name", i)
		}
		for _, s := range r.Subjects {
			switch s.Kind {
			case v1alpha1.SubjectUser, v1alpha1.SubjectGroup, v1alpha1.SubjectServiceAccount:
			default:
				return nil, fmt.Errorf("access policy: role %q: subject kind must be User, Group or ServiceAccount", r.Name)
			}
		}
	}
	if err := checkAgreements(doc.Agreements); err != nil {
		return nil, err
	}
	router, err := NewRouter(doc.Routes)
	if err != nil {
		return nil, fmt.Errorf("access policy: %w", err)
	}
	return &Policy{Doc: doc, router: router}, nil
}

// CheckRoutes refuses routes the decision code could not enforce exactly:
// one without a name, a name twice, a method that is not an upper-case
// HTTP method, or no data categories (such a route would be allowed to
// anyone); check adds the rules of the document kind (the actions it
// allows). The access policy's routes and the egress policy's outbound
// routes are checked by it.
func CheckRoutes(routes []accesspolicy.Route, check func(accesspolicy.Route) error) error {
	names := make(map[string]bool, len(routes))
	for i, r := range routes {
		switch {
		case r.Name == "":
			return fmt.Errorf("routes[%d] has no name", i)
		case names[r.Name]:
			return fmt.Errorf("route %q is listed twice", r.Name)
		case r.Method == "" || strings.ToUpper(r.Method) != r.Method:
			return fmt.Errorf("route %q: method must be an upper-case HTTP method", r.Name)
		case len(r.Categories) == 0:
			return fmt.Errorf("route %q lists no data categories", r.Name)
		}
		if err := check(r); err != nil {
			return err
		}
		names[r.Name] = true
	}
	return nil
}

func validAction(a v1alpha1.Action) bool {
	return a == v1alpha1.ActionRead || a == v1alpha1.ActionWrite || a == v1alpha1.ActionExport
}

// Match finds the route of a request; see Router.Match.
func (p *Policy) Match(method, escapedPath string) (RouteMatch, bool, error) {
	return p.router.Match(method, escapedPath)
}

// DecisionReason says why a request was denied.
type DecisionReason string

// The reasons of a denial.
const (
	// ReasonNone: the request is allowed.
	ReasonNone DecisionReason = ""
	// ReasonCategoriesNotGranted: the caller's roles do not grant every
	// category of the route for its action.
	ReasonCategoriesNotGranted DecisionReason = "categories-not-granted"
	// ReasonAssignmentUnavailable: a role limited to assigned cases would
	// have applied, but the assignment source gave no answer.
	ReasonAssignmentUnavailable DecisionReason = "assignment-unavailable"
	// ReasonActivityNotServed: the caller's roles (or agreements) would
	// grant the route's categories, but none serves a processing activity
	// of the route (purpose limitation).
	ReasonActivityNotServed DecisionReason = "activity-not-served"
)

// Decision is the outcome of authorising one request.
type Decision struct {
	// Allowed is true when the request may be forwarded.
	Allowed bool
	// Roles are the roles that counted and grant at least one category of
	// the route, sorted.
	Roles []string
	// BreakGlass is true when the request is allowed only through a
	// break-glass role.
	BreakGlass bool
	// Missing are the route's categories not granted, in route order.
	Missing []string
	// Reason of a denial.
	Reason DecisionReason
	// Detail explains a denial for the problem body. It names roles,
	// categories and headers, never the caller, the dossier or a token.
	Detail string
	// AssignmentErr is the error of the assignment source, if it was asked
	// and failed.
	AssignmentErr error
	// Sharing is set for a partner's request, decided from agreements
	// (AuthorisePartner).
	Sharing *SharingDecision
	// Activity is the processing activity the request was decided under,
	// "" when the route names none; Document.ActivityID gives what the
	// event records. Allowed: the activity it was allowed under. Denied:
	// the register entry the processing would have fallen under, the
	// first of the route's activities the caller's roles (or the
	// partner's agreements) serve, else the route's first.
	Activity string
	// MissingActivities are the route's activities, when the caller serves
	// none of them (ReasonActivityNotServed).
	MissingActivities []string
}

// servesActivity reports whether a role or agreement with activities own
// may act under activity: one that names none predates activities and
// serves every one (the migration path; it is marked ActivityAssigned
// False).
func servesActivity(own []string, activity string) bool {
	return len(own) == 0 || slices.Contains(own, activity)
}

// Authorise decides whether id may perform route m.Route (on dossier
// m.Dossier). reason is the break-glass reason the request carries, already
// checked (empty when none or invalid). assignments may be nil.
//
// The caller's roles are those with a subject naming the user (User), one of
// the groups (Group) or, for a user system:serviceaccount:<ns>:<name>, that
// service account. Of those, only roles granting the route's action count.
// The request is allowed when the counting roles together grant every
// category of the route, where
//   - a role limited to assigned cases counts only when the dossier is
//     assigned to the user (an unknown answer counts as not assigned);
//   - a break-glass role counts only when a reason is given, and only when
//     the other roles are not enough; the decision is then flagged.
//
// When the route names processing activities, the roles must together
// grant the route under one of them: only roles serving that activity (or
// naming none) count, the activities are tried in order, and the first
// that allows is the one the request is allowed under. When roles would
// grant the route but serve none of its activities, the denial names the
// activities (ReasonActivityNotServed). A denial on such a route carries
// the activity it is recorded under: the first of the route's activities
// some of the caller's roles serve, else the route's first; its reason and
// detail are those of that activity.
func (p *Policy) Authorise(ctx context.Context, id Identity, m RouteMatch, reason string, assignments AssignmentChecker) Decision {
	roles := p.callerRoles(id, m.Route.Action)
	// The assignment source is asked at most once, and only when a role
	// limited to assigned cases would make a difference.
	check := &assignmentCheck{ctx: ctx, source: assignments, user: id.User, m: m}
	if len(m.Route.Activities) == 0 {
		return authoriseRoles(m, roles, reason, check)
	}
	// The denial is that of the first activity some of the caller's roles
	// serve, else of the route's first.
	var denial Decision
	found := false
	for i, activity := range m.Route.Activities {
		serving := roles.serving(activity)
		d := authoriseRoles(m, serving, reason, check)
		d.Activity = activity
		if d.Allowed {
			return d
		}
		if i == 0 || (!found && !serving.empty()) {
			denial, found = d, !serving.empty()
		}
	}
	if all := authoriseRoles(m, roles, reason, check); all.Allowed {
		return Decision{
			Roles: all.Roles, AssignmentErr: check.err, Reason: ReasonActivityNotServed, Activity: denial.Activity,
			MissingActivities: slices.Clone(m.Route.Activities),
			Detail: fmt.Sprintf("none of your roles serves processing activity %s of route %q: the data may be used only for the purposes it was collected for",
				strings.Join(m.Route.Activities, " or "), m.Route.Name),
		}
	}
	denial.AssignmentErr = check.err
	return denial
}

// empty reports whether no role is left.
func (cr callerRoles) empty() bool {
	return len(cr.plain)+len(cr.assigned)+len(cr.bgPlain)+len(cr.bgAssigned) == 0
}

// serving keeps the roles that may act under activity.
func (cr callerRoles) serving(activity string) callerRoles {
	keep := func(in []*accesspolicy.Role) []*accesspolicy.Role {
		var out []*accesspolicy.Role
		for _, r := range in {
			if servesActivity(r.Activities, activity) {
				out = append(out, r)
			}
		}
		return out
	}
	return callerRoles{plain: keep(cr.plain), assigned: keep(cr.assigned), bgPlain: keep(cr.bgPlain), bgAssigned: keep(cr.bgAssigned)}
}

// authoriseRoles decides a route from the caller's roles that count.
func authoriseRoles(m RouteMatch, roles callerRoles, reason string, check *assignmentCheck) Decision {
	g := newGrants(m.Route)

	g.countAll(roles.plain)
	if !g.covers() && slices.ContainsFunc(roles.assigned, g.adds) && check.assigned() {
		g.countAll(roles.assigned)
	}
	breakGlass := false
	if !g.covers() && reason != "" {
		breakGlass = slices.ContainsFunc(roles.bgPlain, g.adds)
		g.countAll(roles.bgPlain)
		if !g.covers() && slices.ContainsFunc(roles.bgAssigned, g.adds) && check.assigned() {
			breakGlass = true
			g.countAll(roles.bgAssigned)
		}
	}

	d := Decision{Roles: sortedKeys(g.used), AssignmentErr: check.err}
	if g.covers() {
		d.Allowed, d.BreakGlass = true, breakGlass
		return d
	}
	d.Missing = g.missing()
	d.Reason = ReasonCategoriesNotGranted
	d.Detail = fmt.Sprintf("your roles do not grant %s of route %q for action %s", strings.Join(d.Missing, ", "), m.Route.Name, m.Route.Action)
	if check.err != nil {
		d.Reason = ReasonAssignmentUnavailable
		d.Detail += "; a role limited to assigned cases applies, but the assignment source could not confirm the assignment, so access is refused (fail closed)"
	}
	if reason == "" && len(roles.bgPlain)+len(roles.bgAssigned) > 0 {
		d.Detail += "; a break-glass role applies: in an emergency, state the reason in the " + BreakGlassHeader + " header"
	}
	return d
}

// grants is what the counting roles grant of a route's categories.
type grants struct {
	need    []string
	granted map[string]bool
	used    map[string]bool // roles that granted at least one category
}

func newGrants(route *accesspolicy.Route) *grants {
	g := &grants{need: make([]string, len(route.Categories)), granted: map[string]bool{}, used: map[string]bool{}}
	for i, c := range route.Categories {
		g.need[i] = string(c)
	}
	return g
}

// covers reports whether every category of the route is granted.
func (g *grants) covers() bool {
	for _, c := range g.need {
		if !g.granted[c] {
			return false
		}
	}
	return true
}

// adds reports whether role would grant a category still missing.
func (g *grants) adds(r *accesspolicy.Role) bool {
	for _, c := range r.Categories {
		if !g.granted[string(c)] && slices.Contains(g.need, string(c)) {
			return true
		}
	}
	return false
}

// countAll counts what roles grant of the route's categories.
func (g *grants) countAll(roles []*accesspolicy.Role) {
	for _, r := range roles {
		for _, c := range r.Categories {
			if slices.Contains(g.need, string(c)) {
				g.granted[string(c)] = true
				g.used[r.Name] = true
			}
		}
	}
}

// missing lists the route's categories not granted, in route order.
func (g *grants) missing() []string {
	var out []string
	for _, c := range g.need {
		if !g.granted[c] {
			out = append(out, c)
		}
	}
	return out
}

// callerRoles are the roles naming the caller that grant an action, by how
// they count.
type callerRoles struct {
	plain, assigned, bgPlain, bgAssigned []*accesspolicy.Role
}

func (p *Policy) callerRoles(id Identity, action v1alpha1.Action) callerRoles {
	var cr callerRoles
	for i := range p.Doc.Roles {
		r := &p.Doc.Roles[i]
		if !slices.Contains(r.Actions, action) || !subjectMatches(r.Subjects, id) {
			continue
		}
		switch {
		case r.BreakGlass && r.AssignedCasesOnly:
			cr.bgAssigned = append(cr.bgAssigned, r)
		case r.BreakGlass:
			cr.bgPlain = append(cr.bgPlain, r)
		case r.AssignedCasesOnly:
			cr.assigned = append(cr.assigned, r)
		default:
			cr.plain = append(cr.plain, r)
		}
	}
	return cr
}

// assignmentCheck asks the assignment source once whether the route's
// dossier is assigned to the user; an unknown answer is not assigned.
type assignmentCheck struct {
	ctx    context.Context
	source AssignmentChecker
	user   string
	m      RouteMatch

	asked, isAssigned bool
	err               error
}

func (a *assignmentCheck) assigned() bool {
	if a.asked {
		return a.isAssigned
	}
	a.asked = true
	switch {
	case !a.m.HasDossier:
		a.isAssigned = false // a route without a dossier is no assigned case
	case a.source == nil:
		a.err = ErrNoAssignmentSource
	default:
		a.isAssigned, a.err = a.source.Assigned(a.ctx, a.user, a.m.Dossier)
	}
	if a.err != nil {
		a.isAssigned = false
	}
	return a.isAssigned
}

// subjectMatches reports whether one of subjects names the caller.
func subjectMatches(subjects []accesspolicy.Subject, id Identity) bool {
	return slices.ContainsFunc(subjects, func(s accesspolicy.Subject) bool {
		return subjectNames(string(s.Kind), s.Name, s.Namespace, id)
	})
}

// subjectNames reports whether one subject, of a role or an agreement, names
// the caller: User the user, Group one of the groups, ServiceAccount the
// user system:serviceaccount:<namespace>:<name>, Client (agreements only)
// the OAuth client of the caller's token.
func subjectNames(kind, name, namespace string, id Identity) bool {
	switch kind {
	case string(v1alpha1.SubjectUser):
		return id.User != "" && name == id.User
	case string(v1alpha1.SubjectGroup):
		return slices.Contains(id.Groups, name)
	case string(v1alpha1.SubjectServiceAccount):
		ns, n, ok := serviceAccount(id.User)
		return ok && ns == namespace && n == name
	case string(v1alpha1.PartnerSubjectClient):
		return id.ClientID != "" && name == id.ClientID
	}
	return false
}

// serviceAccount splits system:serviceaccount:<ns>:<name>.
func serviceAccount(user string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, serviceAccountPrefix)
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return ns, name, true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
