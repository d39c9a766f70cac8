package register

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/internal/compliance"
	"github.com/dossierguard/dossierguard/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden file")

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
	if err := WriteCSV(&buf, Rows(activities)); err != nil {
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
}
