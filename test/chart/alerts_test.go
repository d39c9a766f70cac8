package chart

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const runbookBase = "https://github.com/dossierguard/dossierguard/blob/main/docs/alerts.md#"

// TestPrometheusRule: off by default; when enabled, the PrometheusRule's spec
// is the rule file that `make test-alerts` tests with promtool, and it carries
// the labels Prometheus selects it by.
func TestPrometheusRule(t *testing.T) {
	if has(decode(t, mustHelm(t, templateArgs()...)), "PrometheusRule", "dossierguard") {
		t.Error("a PrometheusRule by default; it needs the Prometheus Operator's CRDs and must be opted in")
	}
	objs := decode(t, mustHelm(t, templateArgs("--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=prometheus")...))
	rule := find(t, objs, "PrometheusRule", "dossierguard")
	if rule.GetAPIVersion() != "monitoring.coreos.com/v1" || rule.GetNamespace() != namespace || rule.GetLabels()["release"] != "prometheus" {
		t.Errorf("PrometheusRule %s %s/%s labels %v", rule.GetAPIVersion(), rule.GetNamespace(), rule.GetName(), rule.GetLabels())
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "alerts", "dossierguard.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if got := rule.Object["spec"]; !reflect.DeepEqual(got, want) {
		t.Errorf("the PrometheusRule's spec is not the rule file:\n got %v\nwant %v", got, want)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	runbooks := string(doc)
	groups, _ := want["groups"].([]any)
	alerts := 0
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			ann, _ := r.(map[string]any)["annotations"].(map[string]any)
			name, _ := r.(map[string]any)["alert"].(string)
			if want := runbookBase + strings.ToLower(name); ann["runbook_url"] != want {
				t.Errorf("alert %s: runbook_url %v, want %s", name, ann["runbook_url"], want)
			}
			if !strings.Contains(runbooks, "\n## "+name+"\n") {
				t.Errorf("alert %s has no section in docs/alerts.md", name)
			}
			alerts++
		}
	}
	if alerts < 7 {
		t.Errorf("%d alerts in the rule file, want at least 7", alerts)
	}
}
