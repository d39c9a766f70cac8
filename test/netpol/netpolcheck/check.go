package netpolcheck

import (
	"fmt"
	"strings"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	networkingv1 "k8s.io/api/networking/v1"
)

// Result is the verdict on one expectation.
type Result struct {
	// Index of the expectation in the scenario.
	Index int
	// Expectation as written.
	Expectation Expectation
	// Flow is the traffic, as "ns/pod -> ns/pod:port/PROTO".
	Flow string
	// Allowed is the matcher's verdict.
	Allowed bool
	// Ingress and Egress explain the verdict per direction.
	Ingress, Egress DirectionVerdict
}

// OK reports whether the verdict is the expected one.
func (r Result) OK() bool { return r.Allowed == *r.Expectation.Allowed }

// String is the line printed for a result, such as
// "school/portal -> cjg/app:8443/TCP: expected allowed, got denied (policies: ...)".
func (r Result) String() string {
	return fmt.Sprintf("%s: expected %s, got %s (policies: %s; %s)",
		r.Flow, word(*r.Expectation.Allowed), word(r.Allowed), r.Ingress, r.Egress)
}

func word(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// DirectionVerdict explains one direction of a flow: the ingress side of
// the destination or the egress side of the source.
type DirectionVerdict struct {
	// Direction is "ingress" or "egress".
	Direction string
	// Endpoint is the side the direction applies to.
	Endpoint string
	// External is true when that side is outside the cluster, where no
	// NetworkPolicy applies.
	External bool
	// Selecting are the policies (ns/name) of this direction that select
	// the endpoint; none means the endpoint is not isolated.
	Selecting []string
	// Allowing are the selecting policies with a rule admitting the flow.
	Allowing []string
}

// Allowed reports whether this direction lets the flow through.
func (d DirectionVerdict) Allowed() bool {
	return d.External || len(d.Selecting) == 0 || len(d.Allowing) > 0
}

func (d DirectionVerdict) String() string {
	switch {
	case d.External:
		return fmt.Sprintf("%s not enforced, %s is outside the cluster", d.Direction, d.Endpoint)
	case len(d.Selecting) == 0:
		return fmt.Sprintf("%s open, no policy selects %s", d.Direction, d.Endpoint)
	case len(d.Allowing) > 0:
		return fmt.Sprintf("%s allowed by %s", d.Direction, strings.Join(d.Allowing, ", "))
	case len(d.Selecting) == 1:
		return fmt.Sprintf("%s denied, %s selects %s and admits no such traffic", d.Direction, d.Selecting[0], d.Endpoint)
	default:
		return fmt.Sprintf("%s denied, %s select %s and none admits such traffic", d.Direction, strings.Join(d.Selecting, ", "), d.Endpoint)
	}
}

// Check evaluates every expectation of the scenario.
func (s *Scenario) Check() (results []Result, err error) {
	defer func() {
		// The matcher panics on policies it considers invalid; validation
		// should have caught those, but never crash the caller.
		if r := recover(); r != nil {
			results, err = nil, fmt.Errorf("matcher failed: %v", r)
		}
	}()
	all := make([]*networkingv1.NetworkPolicy, len(s.netpols))
	single := make([]*matcher.Policy, len(s.netpols))
	for i, lp := range s.netpols {
		all[i] = lp.np
		single[i] = matcher.BuildNetworkPolicies(false, []*networkingv1.NetworkPolicy{lp.np})
	}
	combined := matcher.BuildNetworkPolicies(false, all)

	for i := range s.Expectations {
		e := s.Expectations[i]
		f, err := s.resolveFlow(&e)
		if err != nil {
			return nil, fmt.Errorf("expectations[%d]: %w", i, err)
		}
		tr := toTraffic(s, f)
		verdict := combined.IsTrafficAllowed(tr)

		res := Result{
			Index:       i,
			Expectation: e,
			Flow:        f.String(),
			Allowed:     verdict.IsAllowed(),
			Ingress:     DirectionVerdict{Direction: "ingress", Endpoint: f.to.String(), External: f.to.pod == nil},
			Egress:      DirectionVerdict{Direction: "egress", Endpoint: f.from.String(), External: f.from.pod == nil},
		}
		// Explain per policy. The verdict itself is the combined one.
		for k, p := range single {
			v := p.IsTrafficAllowed(tr)
			ref := s.netpols[k].ref()
			explain(&res.Ingress, v.Ingress, ref)
			explain(&res.Egress, v.Egress, ref)
		}
		// Cross-check: the combined verdict must equal the conjunction of
		// the per-direction, per-policy explanation.
		if res.Allowed != (res.Ingress.Allowed() && res.Egress.Allowed()) {
			return nil, fmt.Errorf("expectations[%d] %s: combined verdict %s disagrees with the per-policy evaluation (%s; %s)",
				i, res.Flow, word(res.Allowed), res.Ingress, res.Egress)
		}
		results = append(results, res)
	}
	return results, nil
}

// Mismatches returns the results that are not as expected.
func Mismatches(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if !r.OK() {
			out = append(out, r)
		}
	}
	return out
}

func explain(d *DirectionVerdict, r *matcher.DirectionResult, ref string) {
	if len(r.AllowingTargets)+len(r.DenyingTargets) == 0 {
		return
	}
	d.Selecting = append(d.Selecting, ref)
	if len(r.AllowingTargets) > 0 {
		d.Allowing = append(d.Allowing, ref)
	}
}

func toTraffic(s *Scenario, f flow) *matcher.Traffic {
	return &matcher.Traffic{
		Source:           toPeer(s, f.from),
		Destination:      toPeer(s, f.to),
		ResolvedPort:     int(f.port),
		ResolvedPortName: f.portName,
		Protocol:         f.protocol,
	}
}

func toPeer(s *Scenario, e endpoint) *matcher.TrafficPeer {
	if e.pod == nil {
		return &matcher.TrafficPeer{IP: e.ip}
	}
	return &matcher.TrafficPeer{
		IP: e.ip,
		Internal: &matcher.InternalPeer{
			PodLabels:       e.pod.Labels,
			NamespaceLabels: s.namespace(e.pod.Namespace).Labels,
			Namespace:       e.pod.Namespace,
		},
	}
}
