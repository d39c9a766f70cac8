package main

import (
	"strings"
	"testing"
)

// TestEgressGatewayFlagErrors: bad flags are all reported at once, each
// naming its flag and the rule, before anything starts.
func TestEgressGatewayFlagErrors(t *testing.T) {
	f := newAuditProxyFiles(t)
	cmd := newRootCommand()
	cmd.SetArgs([]string{"egress-gateway", "--listen", "nowhere", "--store", "cjg", "--tls-dir", f.dir + "/absent",
		"--signing-key", f.signingKey, "--pseudonym-key", f.shortKey, "--audit-log", f.auditLog, "--consent-url", "https://cases.example/consent",
		"--pod-name", "cjg-dossiers-egress-0"})
	err := cmd.Execute()
	if err == nil {
		t.Fatal("bad flags accepted")
	}
	for _, want := range []string{
		`--listen: "nowhere" is not a listen address`,
		`--store: "cjg" must be NAMESPACE/NAME`,
		"--tls-dir: " + f.dir + "/absent is not a directory",
		"--pseudonym-key: ",
		"--consent-url: ",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestEgressGatewayConfig: good flags give the gateway's configuration,
// with the chain naming the store and this pod.
func TestEgressGatewayConfig(t *testing.T) {
	f := newAuditProxyFiles(t)
	opts := &egressGatewayOptions{} // no API server to connect to in this test
	cmd := egressGatewayCommand(opts)
	if err := cmd.Flags().Parse([]string{"--store", "cjg/cjg-dossiers", "--pod-name", "cjg-dossiers-egress-0", "--tls-dir", f.dir,
		"--signing-key", f.signingKey, "--pseudonym-key", f.pseudonymKey, "--audit-log", f.auditLog, "--policy", f.policy}); err != nil {
		t.Fatal(err)
	}
	cfg, err := opts.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store != "cjg/cjg-dossiers" || cfg.AuditChain == nil || cfg.AuditChain.Pod != "cjg-dossiers-egress-0" || len(cfg.PseudonymKey) != 32 ||
		cfg.SigningKey == nil || cfg.TokenAudience != "dossierguard-egress-gateway" || !cfg.SubjectRequests {
		t.Errorf("config %+v", cfg)
	}
}
