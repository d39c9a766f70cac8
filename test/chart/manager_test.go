package chart

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestManagerAcceptsTheFlags builds the dossierguard binary and parses the
// arguments of every manager Deployment that the chart (default, with
// cert-manager, with every optional flag) and kustomize (config/default,
// config/certmanager) render: a flag the manager does not know fails here,
// not in a crash-looping pod.
func TestManagerAcceptsTheFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dossierguard")
	run(t, nil, "go", "build", "-o", bin, "./cmd/dossierguard")

	rendered := map[string][]*unstructured.Unstructured{
		"chart":              decode(t, mustHelm(t, templateArgs()...)),
		"chart cert-manager": decode(t, mustHelm(t, templateArgs("--set", "certManager.enabled=true")...)),
		"chart options": decode(t, mustHelm(t, templateArgs("--set", "auditProxy.image=example.nl/proxy:1",
			"--set", "manager.logLevel=debug", "--set", "manager.extraArgs={--zap-encoder=console}",
			"--set", "reports.openReports=false", "--set", "reports.policyReports=true")...)),
		"chart logbook": decode(t, mustHelm(t, templateArgs("--set", "logbook.enabled=true", "--set", "logbook.database.secretName=pg",
			"--set", "logbook.database.migrate=true", "--set", "logbook.trustedKeysSecret=keys",
			"--set", "logbook.retention.enabled=true", "--set", "logbook.retention.signingKeySecret=sign",
			"--set", "metrics.auditProxy.scrapeNamespaceLabels.team=observability")...)),
		"chart logbook URL":  decode(t, mustHelm(t, templateArgs("--set", "logbook.url=https://logbook.audit.example.nl")...)),
		"config/default":     decode(t, run(t, nil, kubectl(t), "kustomize", "config/default")),
		"config/logbook":     decode(t, run(t, nil, kubectl(t), "kustomize", "config/logbook")),
		"config/certmanager": decode(t, run(t, nil, kubectl(t), "kustomize", "config/certmanager")),
	}
	for name, objs := range rendered {
		for _, role := range []string{"manager", "logbook"} {
			if !has(objs, "Deployment", "dossierguard-"+role) {
				if role == "manager" && name != "config/logbook" {
					t.Errorf("%s: no manager Deployment", name)
				}
				continue
			}
			checkRoleArgs(t, bin, name, role, convert[appsv1.Deployment](t, find(t, objs, "Deployment", "dossierguard-"+role)))
		}
		if has(objs, "CronJob", "dossierguard-logbook-retain") {
			c := convert[batchv1.CronJob](t, find(t, objs, "CronJob", "dossierguard-logbook-retain")).Spec.JobTemplate.Spec.Template.Spec.Containers[0]
			if out, err := exec.Command(bin, append(append([]string{}, c.Args...), "--help")...).CombinedOutput(); err != nil || len(c.Args) < 2 || c.Args[1] != "retain" {
				t.Errorf("%s: dossierguard %s: %v\n%s", name, strings.Join(c.Args, " "), err, firstLine(string(out)))
			}
		}
	}
}

// checkRoleArgs parses the arguments of a Deployment's container with the
// binary.
func checkRoleArgs(t *testing.T, bin, name, role string, dep *appsv1.Deployment) {
	t.Helper()
	{
		c := dep.Spec.Template.Spec.Containers[0]
		if len(c.Command) > 0 || len(c.Args) == 0 || c.Args[0] != role {
			t.Errorf("%s: command %v args %v, want the image's entrypoint with args [%s ...]", name, c.Command, c.Args, role)
			return
		}
		// --help after the flags: cobra parses every flag first and fails on
		// an unknown one, then prints the help instead of starting.
		args := append(append([]string{}, c.Args...), "--help")
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("%s: dossierguard %s: %v\n%s", name, strings.Join(c.Args, " "), err, firstLine(string(out)))
		}
	}
}

// TestReportFlags: the chart's reports values reach the manager's flags.
func TestReportFlags(t *testing.T) {
	cases := []struct {
		set  []string
		want []string
	}{
		{nil, []string{"--open-reports=true", "--policy-reports=false"}},
		{[]string{"--set", "reports.policyReports=true"}, []string{"--open-reports=true", "--policy-reports=true"}},
		{[]string{"--set", "reports.openReports=false"}, []string{"--open-reports=false", "--policy-reports=false"}},
	}
	for _, c := range cases {
		dep := convert[appsv1.Deployment](t, find(t, decode(t, mustHelm(t, templateArgs(c.set...)...)), "Deployment", "dossierguard-manager"))
		args := dep.Spec.Template.Spec.Containers[0].Args
		for _, w := range c.want {
			if !slices.Contains(args, w) {
				t.Errorf("%v: args %v lack %s", c.set, args, w)
			}
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
