package register

import (
	"bytes"
	"flag"
	"html/template"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/report"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestRegisterFromSamples: the register of config/samples, with each
// activity's status derived as the reconciler derives it, matches
// testdata/register.golden.csv.
func TestRegisterFromSamples(t *testing.T) {
	objs, err := testenv.Samples()
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]*compliance.ActivityFacts{}
	var activities []v1alpha1.ProcessingActivity
	for _, u := range objs {
		ns := u.GetNamespace()
		if facts[ns] == nil {
			facts[ns] = &compliance.ActivityFacts{}
		}
		f := facts[ns]
		conv := func(into any) {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
		switch u.GetKind() {
		case "ProcessingActivity":
			var a v1alpha1.ProcessingActivity
			conv(&a)
			activities = append(activities, a)
		case "AccessRole":
			var r v1alpha1.AccessRole
			conv(&r)
			f.Roles = append(f.Roles, r)
		case "SharingAgreement":
			var s v1alpha1.SharingAgreement
			conv(&s)
			f.Agreements = append(f.Agreements, s)
		case "DossierStore":
			var s v1alpha1.DossierStore
			conv(&s)
			f.Stores = append(f.Stores, s)
		}
	}
	if len(activities) < 5 {
		t.Fatalf("%d activities in the samples; want at least five", len(activities))
	}
	for i := range activities {
		a := &activities[i]
		v := compliance.EvaluateActivity(a, *facts[a.Namespace])
		a.Status.Recipients, a.Status.Measures = v.Recipients, v.Measures
	}
	var buf bytes.Buffer
	rows := Rows(activities)
	if err := WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/register.golden.csv"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("the register differs from %s; run go test ./internal/register -update and review the diff:\n%s", golden, buf.String())
	}
	if !bytes.Contains(want, []byte("Cliëntervaringsonderzoek")) || !bytes.Contains(want, []byte("Verwijsindex Risicojongeren regio Voorbeeldstad (ReferralIndex)")) {
		t.Error("the register lacks the survey or the referral index as a recipient")
	}
	for _, lang := range report.Langs {
		var html bytes.Buffer
		meta := report.Meta{Lang: lang, GeneratedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), GeneratedBy: "privacy-officer@gemeente.example",
			Cluster: "gemeente-prod", Server: "https://api.gemeente-prod.example:6443", Version: "v1.2.3"}
		if err := WriteHTML(&html, rows, meta); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		checkGolden(t, "testdata/register."+string(lang)+".golden.html", html.Bytes())
		for _, r := range rows {
			// The same rows as the CSV, each cell escaped as HTML text.
			for _, cell := range []string{r.Activity, r.Purpose, r.Basis, r.Categories, r.Recipients, r.Retention, r.Measures} {
				if !strings.Contains(html.String(), template.HTMLEscapeString(cell)) {
					t.Errorf("%s: the HTML register lacks %q of %s/%s", lang, cell, r.Namespace, r.Name)
				}
			}
		}
		if got := strings.Count(html.String(), `<tr class="activity"`); got != len(rows) {
			t.Errorf("%s: %d activity rows in the HTML; want %d, as in the CSV", lang, got, len(rows))
		}
	}
}

// checkGolden compares got with the golden file, rewriting it first under
// -update.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the register differs from %s; run go test ./internal/register -update and review the diff", golden)
	}
}

func TestWriteHTMLEscapesAndEmpty(t *testing.T) {
	meta := report.Meta{Lang: report.LangEN, GeneratedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Cluster: "c", Version: "test"}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, []Row{{Namespace: "ns", Name: "a", Activity: "<script>alert(1)</script>", Purpose: "p"}}, meta); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>alert") {
		t.Error("an activity's text reached the page unescaped")
	}
	buf.Reset()
	if err := WriteHTML(&buf, nil, meta); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "No processing activities are recorded.") {
		t.Error("an empty register does not say so")
	}
	if err := WriteHTML(&buf, nil, report.Meta{Lang: "de"}); err == nil {
		t.Error("an unsupported language rendered")
	}
}
