package main

import (
	"strings"
	"testing"
)

func TestLogbookOptions(t *testing.T) {
	fx := newAuditFixture(t)
	tests := []struct {
		name string
		opts logbookOptions
		want string // substring of the error; "" for none
	}{
		{"defaults", logbookOptions{schema: "dossierguard_logbook", maxRequestBytes: 1 << 20}, ""},
		{"trusted key", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeys: []string{"wijkteam/dossiers=" + fx.pub}}, ""},
		{"schema", logbookOptions{schema: "Drop Table", maxRequestBytes: 1 << 20}, "--schema"},
		{"tls half", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, tlsCertFile: "c"}, "--tls-cert-file and --tls-key-file"},
		{"small request", logbookOptions{schema: "s", maxRequestBytes: 10}, "--max-request-bytes"},
		{"key without store", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeys: []string{fx.pub}}, "NAMESPACE/STORE=PATH"},
		{"private key", logbookOptions{schema: "s", maxRequestBytes: 1 << 20, trustKeys: []string{"a/b=" + fx.priv}}, "private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.opts.config()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("config: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("config: %v, want an error with %q", err, tt.want)
			}
			if tt.name == "trusted key" && len(cfg.TrustKeys["wijkteam/dossiers"]) != 1 {
				t.Fatalf("trusted keys %v", cfg.TrustKeys)
			}
		})
	}
}
