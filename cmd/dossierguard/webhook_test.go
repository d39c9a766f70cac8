package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The manager's webhook flags: break-glass bounds, and the proxies'
// certificate issuer that cert-manager mode needs.
func TestWebhookOptionsValidate(t *testing.T) {
	parse := func(args ...string) webhookOptions {
		var o webhookOptions
		f := pflag.NewFlagSet("manager", pflag.ContinueOnError)
		o.bindFlags(f)
		if err := f.Parse(append([]string{"--operator-namespace=dossierguard-system"}, args...)); err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, tc := range []struct {
		args []string
		want string // "" for valid
	}{
		{nil, ""},
		{[]string{"--break-glass-groups=gemeente:oncall", "--break-glass-max-window=30m"}, ""},
		{[]string{"--break-glass-max-window=12h"}, "--break-glass-max-window"},
		{[]string{"--break-glass-max-window=10s"}, "--break-glass-max-window"},
		{[]string{"--break-glass-groups=a,,b"}, "--break-glass-groups"},
		{[]string{"--webhook-cert-management=cert-manager"}, "--proxy-cert-issuer-name is required"},
		{[]string{"--webhook-cert-management=cert-manager", "--proxy-cert-issuer-name=municipal-ca"}, ""},
		{[]string{"--proxy-cert-issuer-kind=Certificate"}, "--proxy-cert-issuer-kind"},
		{[]string{"--audit-log-size-limit=256Mi"}, ""},
		{[]string{"--audit-log-size-limit=0"}, ""},
		{[]string{"--audit-log-size-limit=1Mi"}, "--audit-log-size-limit"},
		{[]string{"--audit-log-size-limit=lots"}, "--audit-log-size-limit"},
	} {
		o := parse(tc.args...)
		err := o.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
	def, none := parse(), parse("--audit-log-size-limit=0")
	if limit := def.proxyConfig("img").LogSizeLimit; limit.String() != "1Gi" {
		t.Errorf("default log size limit %s, want 1Gi", limit.String())
	}
	if limit := none.proxyConfig("img").LogSizeLimit; !limit.IsZero() {
		t.Errorf("--audit-log-size-limit=0: %s, want none", limit.String())
	}
	cm, op := parse("--webhook-cert-management=cert-manager", "--proxy-cert-issuer-name=municipal-ca"), parse()
	if ref := cm.proxyIssuerRef(); ref == nil || ref.Name != "municipal-ca" || ref.Kind != "ClusterIssuer" {
		t.Errorf("cert-manager mode: issuer %+v, want ClusterIssuer municipal-ca", ref)
	}
	if ref := op.proxyIssuerRef(); ref != nil {
		t.Errorf("operator mode: issuer %+v, want none (the operator's CA)", ref)
	}
}
