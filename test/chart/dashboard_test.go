package chart

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dossierguard/dossierguard/internal/auditproxy"
	"github.com/dossierguard/dossierguard/internal/egressgateway"
	"github.com/dossierguard/dossierguard/internal/metrics"
)

var dashboardPath = filepath.Join(chartDir, "dashboards", "dossierguard.json")

// dashboardQueries are the PromQL expressions of every panel target and the
// metric of every label_values() variable query of the dashboard, by where
// they are.
func dashboardQueries(t *testing.T) (exprs map[string]string, variables map[string]string) {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	exprs, variables = map[string]string{}, map[string]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s has no expression", p.Title, tg.RefID)
			}
			exprs[p.Title+"/"+tg.RefID] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		variables[v.Name] = q.Query
	}
	return exprs, variables
}

var (
	promString     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers   = regexp.MustCompile(`\{[^}]*\}`)
	promRange      = regexp.MustCompile(`\[[^\]]*\]`)
	promNumber     = regexp.MustCompile(`\b[0-9][0-9a-zA-Z_.]*`)
	promGrouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdentifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords   = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "Inf", "NaN"}
	labelValues    = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// promqlMetrics are the metric names an expression selects: what is left
// once strings, label matchers, ranges, groupings, numbers and durations,
// function names and keywords are taken out.
func promqlMetrics(expr string) []string {
	s := promString.ReplaceAllString(expr, " ")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = promNumber.ReplaceAllString(s, " ")
	var out []string
	for _, m := range promIdentifier.FindAllStringSubmatch(s, -1) {
		name := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[0]), "("))
		if m[1] != "" || slices.Contains(promKeywords, name) {
			continue // a function call or a keyword
		}
		out = append(out, name)
	}
	return out
}

func TestPromqlMetrics(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`dossierguard_control_result{namespace=~"$namespace",result!="Pass"} == 1`, []string{"dossierguard_control_result"}},
		{`count(dossierguard_control_result{result="Fail"} == 1) or vector(0)`, []string{"dossierguard_control_result"}},
		{`sum by (store, outcome) (rate(dossierguard_auditproxy_decisions_total[$__rate_interval]))`, []string{"dossierguard_auditproxy_decisions_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[5m])))`, []string{"x_bucket"}},
		{`time() - max by (namespace, pod) (a_timestamp_seconds) > bool 3`, []string{"a_timestamp_seconds"}},
		{`a / on (namespace) group_left (pod) b offset 5m`, []string{"a", "b"}},
		{`label_replace(up, "x", "$1", "y", "(.*)")`, []string{"up"}},
	}
	for _, c := range cases {
		if got := promqlMetrics(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("promqlMetrics(%s) = %v; want %v", c.expr, got, c.want)
		}
	}
}

// exported are the metrics dossierguard's manager, audit proxy and egress
// gateway export, from their registries; a histogram's series carry the
// suffixes _bucket, _sum and _count.
func exported() map[string]bool {
	out := map[string]bool{}
	for _, n := range slices.Concat(metrics.Names(), auditproxy.MetricNames(), egressgateway.MetricNames()) {
		out[n] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			out[n+suffix] = true
		}
	}
	return out
}

// TestDashboardNamesExportedMetrics: every expression of the dashboard
// selects at least one metric, and every metric it names is one the
// manager, the audit proxy or the egress gateway exports; each panel of the
// brief is there.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	exprs, variables := dashboardQueries(t)
	known := exported()
	used := map[string]bool{}
	for where, e := range exprs {
		names := promqlMetrics(e)
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", where, e)
		}
		for _, n := range names {
			used[n] = true
			if !known[n] {
				t.Errorf("%s: %q names %s, which neither the manager, the audit proxy nor the egress gateway exports", where, e, n)
			}
		}
	}
	for name, q := range variables {
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(metric, label)", name, q)
			continue
		}
		if !known[m[1]] {
			t.Errorf("variable %s names %s, which is not exported", name, m[1])
		}
	}
	for _, want := range []string{
		"dossierguard_controls", "dossierguard_control_result", "dossierguard_control_info", "dossierguard_sharingagreement_in_force",
		"dossierguard_sharingagreement_next_transition_timestamp_seconds", "dossierguard_datakey_created_timestamp_seconds",
		"dossierguard_retention_last_run_result", "dossierguard_retention_last_success_timestamp_seconds",
		"dossierguard_auditproxy_decisions_total", "dossierguard_auditproxy_activity_decisions_total", "dossierguard_auditproxy_consent_lookups_total",
		"dossierguard_auditproxy_audit_append_duration_seconds_bucket", "dossierguard_auditproxy_audit_backlog_events",
		"dossierguard_egressgateway_decisions_total", "dossierguard_egressgateway_partner_request_duration_seconds_bucket",
		"dossierguard_egressgateway_partner_failures_total", "dossierguard_egressgateway_audit_append_failures_total",
	} {
		if !used[want] {
			t.Errorf("the dashboard shows nothing of %s", want)
		}
	}
	// With promtool (make test-alerts sets DOSSIERGUARD_PROMTOOL), every
	// expression also parses as PromQL.
	if promtool := os.Getenv("DOSSIERGUARD_PROMTOOL"); promtool != "" {
		checkPromQL(t, promtool, exprs)
	}
}

// checkPromQL has promtool parse each expression, as a recording rule, with
// Grafana's variables replaced by values.
func checkPromQL(t *testing.T, promtool string, exprs map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	i := 0
	for _, e := range exprs {
		e = strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*").Replace(e)
		quoted, _ := json.Marshal(e)
		fmt.Fprintf(&b, "      - record: dashboard:expr%d\n        expr: %s\n", i, quoted)
		i++
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's expressions: %v\n%s", err, out)
	}
}

// TestGrafanaDashboardConfigMap: off by default; when enabled, a ConfigMap
// with the sidecar's label holds the dashboard file as it is.
func TestGrafanaDashboardConfigMap(t *testing.T) {
	if has(decode(t, mustHelm(t, templateArgs()...)), "ConfigMap", "dossierguard-grafana-dashboard") {
		t.Error("a dashboard ConfigMap by default; it must be opted in")
	}
	objs := decode(t, mustHelm(t, templateArgs("--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.annotations.grafana_folder=Privacy")...))
	cm := find(t, objs, "ConfigMap", "dossierguard-grafana-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Privacy" || cm.GetNamespace() != namespace {
		t.Errorf("ConfigMap %s/%s labels %v annotations %v", cm.GetNamespace(), cm.GetName(), cm.GetLabels(), cm.GetAnnotations())
	}
	want, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := cm.Object["data"].(map[string]any)
	if got, _ := data["dossierguard.json"].(string); strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("the ConfigMap's dossierguard.json is not %s", dashboardPath)
	}
	other := decode(t, mustHelm(t, templateArgs("--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.namespace=monitoring")...))
	if cm := find(t, other, "ConfigMap", "dossierguard-grafana-dashboard"); cm.GetNamespace() != "monitoring" {
		t.Errorf("namespace %q; want monitoring", cm.GetNamespace())
	}
}
