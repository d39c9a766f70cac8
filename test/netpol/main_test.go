package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/test/netpol/netpolcheck"
	networkingv1 "k8s.io/api/networking/v1"
)

func scenarioFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario in testdata/*.yaml")
	}
	return files
}

func load(t *testing.T, path string) *netpolcheck.Scenario {
	t.Helper()
	s, err := netpolcheck.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func check(t *testing.T, s *netpolcheck.Scenario) []netpolcheck.Result {
	t.Helper()
	results, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	return results
}

// TestScenarios runs every scenario under testdata/*.yaml and fails on any
// expectation that does not hold.
func TestScenarios(t *testing.T) {
	for _, path := range scenarioFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			s := load(t, path)
			results := check(t, s)
			for _, r := range netpolcheck.Mismatches(results) {
				t.Errorf("%s\n    note: %s", r, r.Expectation.Note)
			}
		})
	}
}

// TestScenariosDependOnPolicies guards against vacuous scenarios: with no
// policy in force every flow is allowed, so each scenario must then fail.
func TestScenariosDependOnPolicies(t *testing.T) {
	for _, path := range scenarioFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			s := load(t, path)
			if len(s.NetworkPolicies()) == 0 {
				t.Fatal("scenario has no policy")
			}
			if len(netpolcheck.Mismatches(check(t, s.WithoutPolicies()))) == 0 {
				t.Error("every expectation still holds with no policy in force: the scenario tests nothing")
			}
		})
	}
}

// TestCheckerReportsWrongExpectations is the negative self-test: every
// expectation of a scenario, inverted, must be reported as a mismatch.
func TestCheckerReportsWrongExpectations(t *testing.T) {
	for _, path := range scenarioFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			s := load(t, path)
			for i := range s.Expectations {
				inverted := !*s.Expectations[i].Allowed
				s.Expectations[i].Allowed = &inverted
			}
			results := check(t, s)
			if got, want := len(netpolcheck.Mismatches(results)), len(results); got != want {
				t.Errorf("inverted every expectation: %d of %d reported", got, want)
			}
		})
	}
}

// TestCLIReportsWrongExpectation runs the CLI on a scenario with known
// false expectations and checks the exit status and the exact lines.
func TestCLIReportsWrongExpectation(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", "testdata/selftest/wrong-expectation.yaml"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{
		"\nother/client -> cjg/cjg-dossier-0:8443/TCP: expected allowed, got denied (policies: ingress denied, cjg/cjg-dossiers-isolation selects cjg/cjg-dossier-0 and admits no such traffic; egress open, no policy selects other/client)\n",
		"\ncjg/toolbox -> cjg/cjg-dossier-0:8443/TCP: expected denied, got allowed (policies: ingress allowed by cjg/cjg-dossiers-isolation; egress open, no policy selects cjg/toolbox)\n",
		"\n1 passed, 2 failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\noutput:\n%s", want, out)
		}
	}
	if strings.Contains(out, ":8080/TCP") {
		t.Errorf("a correct expectation was reported:\n%s", out)
	}
}

func TestCLIPasses(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := append([]string{"check"}, scenarioFiles(t)...)
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.HasSuffix(stdout.String(), " passed, 0 failed\n") {
		t.Errorf("unexpected summary:\n%s", &stdout)
	}
}

func TestCLIErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"check"},
		{"verify", "testdata/store-isolation.yaml"},
		{"check", "testdata/no-such-file.yaml"},
		{"check", "testdata/policies/store-isolation.yaml"}, // a policy file is not a scenario
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit status %d, want 2\nstdout:\n%s\nstderr:\n%s", args, code, &stdout, &stderr)
		}
	}
}

// TestMutatedPoliciesAreCaught breaks the hand-written policies in ways a
// buggy builder could, and checks that the scenarios notice.
func TestMutatedPoliciesAreCaught(t *testing.T) {
	policy := func(s *netpolcheck.Scenario, name string) *networkingv1.NetworkPolicy {
		for _, np := range s.NetworkPolicies() {
			if np.Name == name {
				return np
			}
		}
		t.Fatalf("no policy %s in %s", name, s.Path())
		return nil
	}
	for _, tc := range []struct {
		name, file string
		mutate     func(s *netpolcheck.Scenario)
	}{{
		name: "ingress rule without ports opens the app port",
		file: "testdata/store-isolation.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-isolation").Spec.Ingress[0].Ports = nil
		},
	}, {
		name: "egress policy type dropped opens all egress",
		file: "testdata/store-isolation.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-isolation").Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		},
	}, {
		name: "empty namespaceSelector admits every namespace",
		file: "testdata/store-isolation.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			np := policy(s, "cjg-dossiers-isolation")
			np.Spec.Ingress[0].From[1].NamespaceSelector.MatchLabels = nil
		},
	}, {
		name: "logbook peer's namespace dropped admits the logbook's labels anywhere",
		file: "testdata/store-isolation-logbook.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			np := policy(s, "cjg-dossiers-isolation")
			np.Spec.Egress[1].To[0].NamespaceSelector.MatchLabels = nil
		},
	}, {
		name: "logbook peer's pod selector dropped admits the whole operator namespace",
		file: "testdata/store-isolation-logbook.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			np := policy(s, "cjg-dossiers-isolation")
			np.Spec.Egress[1].To[0].PodSelector = nil
		},
	}, {
		name: "metrics rule without ports opens every port to monitoring",
		file: "testdata/store-isolation-logbook.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-isolation").Spec.Ingress[1].Ports = nil
		},
	}, {
		name: "metrics rule from every namespace",
		file: "testdata/store-isolation-logbook.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-isolation").Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels = nil
		},
	}, {
		name: "partner namespace and pod selector in two peers (OR) instead of one (AND)",
		file: "testdata/sharing-ingress-school-podselector.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			np := policy(s, "share-school-portal")
			peer := np.Spec.Ingress[0].From[0]
			nsOnly := networkingv1.NetworkPolicyPeer{NamespaceSelector: peer.NamespaceSelector}
			podAnyNS := networkingv1.NetworkPolicyPeer{PodSelector: peer.PodSelector, NamespaceSelector: nsOnly.NamespaceSelector.DeepCopy()}
			podAnyNS.NamespaceSelector.MatchLabels = nil // pods with that label in any namespace
			np.Spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{nsOnly, podAnyNS}
		},
	}, {
		name: "partner matched by a mutable name label",
		file: "testdata/sharing-ingress-school.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			np := policy(s, "share-school-leerlingzorg")
			np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels = map[string]string{"name": "school"}
		},
	}, {
		name: "partner CIDR widened",
		file: "testdata/sharing-egress-cidr.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "share-verwijsindex").Spec.Egress[0].To[0].IPBlock.CIDR = "192.0.2.0/24"
		},
	}, {
		name: "partner port list dropped",
		file: "testdata/sharing-egress-cidr.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "share-verwijsindex").Spec.Egress[0].Ports = nil
		},
	}, {
		name: "gateway ingress from every pod of the namespace",
		file: "testdata/egress-gateway.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-egress").Spec.Ingress[0].From[0].PodSelector.MatchLabels = nil
		},
	}, {
		name: "gateway ingress policy type dropped admits everyone",
		file: "testdata/egress-gateway.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-egress").Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		},
	}, {
		name: "gateway partner rule without peers admits every destination",
		file: "testdata/egress-gateway.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-egress").Spec.Egress[3].To = nil
		},
	}, {
		name: "gateway metrics rule without ports opens the gateway to monitoring",
		file: "testdata/egress-gateway.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-egress").Spec.Ingress[1].Ports = nil
		},
	}, {
		name: "gateway metrics rule from every namespace",
		file: "testdata/egress-gateway.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-egress").Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels = nil
		},
	}, {
		name: "workload's access to the gateway selects every pod of the namespace",
		file: "testdata/egress-gateway.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			policy(s, "cjg-dossiers-to-egress").Spec.Egress[0].To[0].PodSelector.MatchLabels = nil
		},
	}, {
		name: "gateway keeps the partner after the agreement left force",
		file: "testdata/egress-gateway-none-in-force.yaml",
		mutate: func(s *netpolcheck.Scenario) {
			np := policy(s, "cjg-dossiers-egress")
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
				To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.32/28"}}}})
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := load(t, tc.file)
			tc.mutate(s)
			bad := netpolcheck.Mismatches(check(t, s))
			if len(bad) == 0 {
				t.Fatal("mutation not caught: every expectation still holds")
			}
			for _, r := range bad {
				t.Logf("caught: %s", r)
			}
		})
	}
}
