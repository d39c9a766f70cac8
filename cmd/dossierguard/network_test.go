package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The manager's flags for the isolation policy's installation rules: each
// bad value is refused naming its flag, and the rules follow the flags.
func TestNetworkOptions(t *testing.T) {
	parse := func(args ...string) networkOptions {
		var o networkOptions
		f := pflag.NewFlagSet("manager", pflag.ContinueOnError)
		o.bindFlags(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return o
	}
	const url = "http://dossierguard-logbook.dossierguard-system.svc:4318"
	for _, tc := range []struct {
		args      []string
		url, opNS string
		want      string // "" for valid
	}{
		{nil, "", "dossierguard-system", ""},
		{nil, url, "dossierguard-system", ""},
		{[]string{"--logbook-pod-labels=app.kubernetes.io/component=logbook"}, url, "dossierguard-system", ""},
		{[]string{"--logbook-pod-labels=app.kubernetes.io/component=logbook"}, "", "dossierguard-system", "--logbook-pod-labels needs --logbook-url"},
		{[]string{"--logbook-pod-labels=bad key=logbook"}, url, "dossierguard-system", "--logbook-pod-labels"},
		{[]string{"--logbook-pod-labels=app=not valid"}, url, "dossierguard-system", "--logbook-pod-labels: the value of app"},
		{[]string{"--logbook-pod-labels=app=logbook"}, url, "", "--logbook-namespace is required"},
		{[]string{"--logbook-pod-labels=app=logbook", "--logbook-namespace=Audit_NS"}, url, "", "--logbook-namespace"},
		{[]string{"--logbook-port=0"}, url, "dossierguard-system", "--logbook-port"},
		{[]string{"--proxy-metrics-namespace-labels=kubernetes.io/metadata.name=monitoring"}, "", "", ""},
		{[]string{"--proxy-metrics-namespace-labels=-x=monitoring"}, "", "", "--proxy-metrics-namespace-labels"},
	} {
		o := parse(tc.args...)
		err := o.validate(tc.url, tc.opNS)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}

	pn := parse()
	none := pn.extras("dossierguard-system")
	if none.Logbook != nil || none.ProxyMetricsNamespaces != nil {
		t.Errorf("no flags: %+v, want no rules", none)
	}
	px := parse("--logbook-pod-labels=app.kubernetes.io/component=logbook,app.kubernetes.io/instance=dg",
		"--proxy-metrics-namespace-labels=kubernetes.io/metadata.name=monitoring")
	x := px.extras("dossierguard-system")
	if x.Logbook == nil || x.Logbook.Namespace != "dossierguard-system" || x.Logbook.Port != 4318 ||
		x.Logbook.PodLabels["app.kubernetes.io/instance"] != "dg" || len(x.Logbook.PodLabels) != 2 {
		t.Errorf("logbook peer %+v, want the operator's namespace, port 4318 and both labels", x.Logbook)
	}
	if x.ProxyMetricsNamespaces["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("metrics namespaces %v", x.ProxyMetricsNamespaces)
	}
	py := parse("--logbook-pod-labels=app=logbook", "--logbook-namespace=audit", "--logbook-port=14318")
	if y := py.extras("dossierguard-system"); y.Logbook.Namespace != "audit" || y.Logbook.Port != 14318 {
		t.Errorf("explicit namespace and port: %+v", y.Logbook)
	}
}
