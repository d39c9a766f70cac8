package chart

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
)

// managerRefuses is what `dossierguard manager --retention-statutes` does with
// the table of a values file: strict YAML, then compliance.ValidateStatutes.
func managerRefuses(t *testing.T, values string) error {
	t.Helper()
	var v struct {
		RetentionStatutes map[v1alpha1.Service]compliance.Statute `json:"retentionStatutes"`
	}
	if err := yaml.UnmarshalStrict([]byte(values), &v); err != nil {
		return err
	}
	return compliance.ValidateStatutes(v.RetentionStatutes)
}

// TestChartRefusesWhatTheManagerRefuses: every class of statute table the
// manager refuses at start-up (unknown service, unknown field, clock, period
// form, a minimum longer than its maximum in the manager's calendar
// arithmetic) fails `helm template` with a message naming the value, so that
// `helm install` never deploys a manager that exits; and the edge cases the
// manager accepts (equal ends in other units) the chart accepts too.
func TestChartRefusesWhatTheManagerRefuses(t *testing.T) {
	statute := func(service, minimum, maximum string) string {
		return "retentionStatutes:\n  " + service + ":\n    clock: EndOfHelp\n    minimum: " + minimum +
			"\n    maximum: " + maximum + "\n    source: Jeugdwet art. 7.3.8\n"
	}
	for _, c := range []struct {
		name, values, want string // want "" means both accept
	}{
		{"minimum above maximum", statute("YouthCare", "P30Y", "P25Y"),
			"retentionStatutes.YouthCare.minimum P30Y is longer than retentionStatutes.YouthCare.maximum P25Y"},
		{"months above years", statute("VeiligThuis", "P13M", "P1Y"),
			"retentionStatutes.VeiligThuis.minimum P13M is longer than retentionStatutes.VeiligThuis.maximum P1Y"},
		{"days above a leap year", statute("YouthProtection", "P367D", "P1Y"),
			"retentionStatutes.YouthProtection.minimum P367D is longer than retentionStatutes.YouthProtection.maximum P1Y"},
		{"weeks above a year", statute("YouthProbation", "P53W", "P1Y"),
			"retentionStatutes.YouthProbation.minimum P53W is longer than retentionStatutes.YouthProbation.maximum P1Y"},
		{"period without P", statute("YouthCare", "20Y", "P25Y"),
			"at '/retentionStatutes/YouthCare/minimum': '20Y' does not match pattern"},
		{"zero period", statute("YouthCare", "P20Y", "P0Y"),
			"at '/retentionStatutes/YouthCare/maximum': 'P0Y' does not match pattern"},
		{"two units", statute("YouthCare", "P20Y", "P25Y6M"),
			"at '/retentionStatutes/YouthCare/maximum': 'P25Y6M' does not match pattern"},
		{"unknown service", statute("Jeugdzorg", "P20Y", "P25Y"),
			"at '/retentionStatutes': additional properties 'Jeugdzorg' not allowed"},
		{"unknown clock", strings.Replace(statute("YouthCare", "P20Y", "P25Y"), "EndOfHelp", "FileClosed", 1),
			"at '/retentionStatutes/YouthCare/clock': value must be one of"},
		{"misspelt field", strings.Replace(statute("YouthCare", "P20Y", "P25Y"), "minimum:", "minimun:", 1),
			"at '/retentionStatutes/YouthCare': additional properties 'minimun' not allowed"},
		{"equal ends", statute("YouthCare", "P25Y", "P25Y"), ""},
		{"twelve months are a year", statute("YouthCare", "P12M", "P1Y"), ""},
		{"366 days are a year from 2000", statute("YouthCare", "P366D", "P1Y"), ""},
		{"52 weeks within a year", statute("YouthCare", "P52W", "P1Y"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			managerErr := managerRefuses(t, c.values)
			if (managerErr == nil) != (c.want == "") {
				t.Fatalf("the manager's check gives %v; the case expects it to %s", managerErr, map[bool]string{true: "accept", false: "refuse"}[c.want == ""])
			}
			out, stderr, err := helm(t, templateArgs("-f", writeValues(t, c.values))...)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("helm template refused values the manager accepts: %v\n%s", err, stderr)
			case c.want != "" && err == nil:
				t.Fatalf("helm template accepted values the manager refuses (%v):\n%s", managerErr, firstLine(out))
			case c.want != "" && !strings.Contains(stderr, c.want):
				t.Errorf("helm's error lacks %q:\n%s", c.want, stderr)
			}
		})
	}
	// The same through --set, as an operator would type it.
	_, stderr, err := helm(t, templateArgs("--set", "retentionStatutes.YouthCare.minimum=P30Y")...)
	if err == nil || !strings.Contains(stderr, "retentionStatutes.YouthCare.minimum P30Y is longer than retentionStatutes.YouthCare.maximum P25Y") {
		t.Errorf("--set retentionStatutes.YouthCare.minimum=P30Y: err %v, stderr:\n%s", err, stderr)
	}
}
