package compliance

import (
	"testing"
	"time"
)

func TestKeyManagementControl(t *testing.T) {
	amsterdam, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	failMessage := []string{"could not be created or rotated on time"}
	cases := []struct {
		name string
		key  KeyFacts
		want wantControl
	}{
		{"current key", KeyFacts{Secret: "jgz-datakey", Version: 3, Versions: 2, NextRotation: testNow.Add(24 * time.Hour)},
			wantControl{"KeyManagement", "Pass", "KeyCurrent",
				[]string{"version 3 is current", "2 kept for decryption", "next rotation 2026-03-16T12:00:00Z"},
				[]string{"Secret/jgz-datakey: key version 3"}}},
		{"one nanosecond before rotation is due", KeyFacts{Secret: "s", Version: 1, Versions: 1, NextRotation: testNow.Add(time.Nanosecond)},
			wantControl{"KeyManagement", "Pass", "KeyCurrent", []string{"version 1"}, []string{"Secret/s: key version 1"}}},
		{"rotation due exactly now", KeyFacts{Secret: "s", Version: 1, Versions: 1, NextRotation: testNow},
			wantControl{"KeyManagement", "Fail", "KeyRotationFailed", failMessage, nil}},
		{"rotation overdue", KeyFacts{Secret: "s", Version: 4, Versions: 4, NextRotation: testNow.Add(-time.Hour)},
			wantControl{"KeyManagement", "Fail", "KeyRotationFailed", failMessage, nil}},
		{"failed although a version is known", KeyFacts{Secret: "s", Version: 2, Versions: 2, NextRotation: testNow.Add(time.Hour), Failed: true},
			wantControl{"KeyManagement", "Fail", "KeyRotationFailed", failMessage, nil}},
		{"no key version", KeyFacts{Secret: "s", NextRotation: testNow.Add(time.Hour)},
			wantControl{"KeyManagement", "Fail", "KeyRotationFailed", failMessage, nil}},
		{"empty facts", KeyFacts{}, wantControl{"KeyManagement", "Fail", "KeyRotationFailed", failMessage, nil}},
		{"rotation time reported in UTC", KeyFacts{Secret: "s", Version: 1, Versions: 1, NextRotation: time.Date(2026, 6, 1, 2, 0, 0, 0, amsterdam)},
			wantControl{"KeyManagement", "Pass", "KeyCurrent", []string{"next rotation 2026-06-01T00:00:00Z"}, []string{"Secret/s: key version 1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, KeyManagementControl(tc.key, testNow), tc.want)
		})
	}
}

func TestKeyAccessControl(t *testing.T) {
	cases := []struct {
		name           string
		applied        bool
		role, workload string
		want           wantControl
	}{
		{"bound to the workload", true, "jgz-workload", "casemanager",
			wantControl{"KeyAccessRestricted", "Pass", "BoundToWorkloadServiceAccount",
				[]string{`only ServiceAccount "casemanager" may read the data key`},
				[]string{"Role/jgz-workload", "RoleBinding/jgz-workload"}}},
		{"not applied", false, "jgz-workload", "casemanager",
			wantControl{"KeyAccessRestricted", "Fail", "KeyAccessNotApplied",
				[]string{"Role and RoleBinding", "could not be applied"}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, KeyAccessControl(tc.applied, tc.role, tc.workload), tc.want)
		})
	}
}

func TestNetworkControl(t *testing.T) {
	cases := []struct {
		name    string
		applied bool
		port    int32
		want    wantControl
	}{
		{"default deny applied", true, 8443,
			wantControl{"NetworkSegregation", "Pass", "DefaultDenyApplied",
				[]string{"default deny", "audit proxy on port 8443 (TLS)"}, []string{"NetworkPolicy/jgz-isolation"}}},
		{"another proxy port is named", true, 9443,
			wantControl{"NetworkSegregation", "Pass", "DefaultDenyApplied", []string{"port 9443"}, []string{"NetworkPolicy/jgz-isolation"}}},
		{"not applied", false, 8443,
			wantControl{"NetworkSegregation", "Fail", "IsolationNotApplied", []string{"default-deny NetworkPolicy", "could not be applied"}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, NetworkControl(tc.applied, "jgz-isolation", tc.port, tlsIssued), tc.want)
		})
	}
	// Plain HTTP, by the store's opt-out, is named with its reason.
	assertControl(t, NetworkControl(true, "jgz-isolation", 8443, plainHTTP),
		wantControl{"NetworkSegregation", "Pass", "DefaultDenyApplied", []string{"port 8443 (plain HTTP", "Istio mutual TLS"}, []string{"NetworkPolicy/jgz-isolation"}})
}

var (
	tlsIssued   = ProxyTransport{TLS: true, Secret: "jgz-proxy-tls", Issued: true, NotAfter: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}
	tlsEvidence = "Secret/jgz-proxy-tls: TLS serving certificate valid until 2027-03-01T00:00:00Z"
	plainHTTP   = ProxyTransport{DisabledReason: "Istio mutual TLS"}
)

func TestAuditControl(t *testing.T) {
	cases := []struct {
		name      string
		unaudited []string
		running   int
		listed    bool
		transport ProxyTransport
		want      wantControl
	}{
		{"all pods audited", nil, 3, true, tlsIssued,
			wantControl{"AuditActive", "Pass", "AllPodsAudited", []string{"all 3 workload pod(s)", "serving TLS"}, []string{tlsEvidence}}},
		{"empty list of unaudited pods", []string{}, 1, true, tlsIssued,
			wantControl{"AuditActive", "Pass", "AllPodsAudited", []string{"all 1 workload pod(s)"}, []string{tlsEvidence}}},
		{"no pods running", nil, 0, true, tlsIssued,
			wantControl{"AuditActive", "Pass", "NoWorkloadPods", []string{"no pods"}, []string{tlsEvidence}}},
		{"plain HTTP by opt-out", nil, 2, true, plainHTTP,
			wantControl{"AuditActive", "Pass", "AllPodsAudited", []string{"serving plain HTTP", "Istio mutual TLS"},
				[]string{"plain HTTP: spec.workload.proxyTLS.mode Disabled (Istio mutual TLS)"}}},
		{"no serving certificate", nil, 2, true, ProxyTransport{TLS: true, Secret: "jgz-proxy-tls"},
			wantControl{"AuditActive", "Fail", "ServingCertificateMissing", []string{"Secret jgz-proxy-tls", "not issued"}, nil}},
		{"one pod without proxy", []string{"app-7d9"}, 3, true, tlsIssued,
			wantControl{"AuditActive", "Fail", "PodsWithoutAuditProxy", []string{"1 of 3", "app-7d9"},
				[]string{tlsEvidence, "Pod/app-7d9: not the injected audit proxy"}}},
		{"every pod without proxy, each named", []string{"app-a", "app-b"}, 2, true, tlsIssued,
			wantControl{"AuditActive", "Fail", "PodsWithoutAuditProxy", []string{"2 of 2", "app-a, app-b"},
				[]string{tlsEvidence, "Pod/app-a: not the injected audit proxy", "Pod/app-b: not the injected audit proxy"}}},
		{"pods not listed", nil, 0, false, tlsIssued,
			wantControl{"AuditActive", "Unknown", "PodsNotListed", []string{"could not be listed"}, nil}},
		{"not listed wins over stale names", []string{"app-a"}, 1, false, tlsIssued,
			wantControl{"AuditActive", "Unknown", "PodsNotListed", []string{"could not be listed"}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertControl(t, AuditControl(tc.unaudited, tc.running, tc.listed, tc.transport), tc.want)
		})
	}
}
