package v1alpha1_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dossierguard/dossierguard/internal/testenv"
)

// TestSamplesAcceptedAndListed applies every manifest in config/samples and
// then lists them the way an auditor would, with `kubectl get privacy -A`.
func TestSamplesAcceptedAndListed(t *testing.T) {
	ctx := context.Background()
	objs, err := testenv.Samples()
	if err != nil {
		t.Fatalf("read samples: %v", err)
	}
	counts := map[string]int{}
	var names []string
	for _, u := range objs {
		if err := env.Client.Create(ctx, u); err != nil {
			t.Fatalf("sample %s %s/%s rejected: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		got := u.DeepCopy()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
			t.Fatalf("read back %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		counts[u.GetKind()]++
		if u.GetKind() != "Namespace" {
			names = append(names, u.GetName())
		}
	}
	for _, kind := range testenv.Kinds {
		if counts[kind] < 3 {
			t.Errorf("samples hold %d %s objects; want at least one per service (3)", counts[kind], kind)
		}
	}

	out, errOut, err := kubectl(t, "get", "privacy", "-A")
	if err != nil {
		t.Fatalf("kubectl get privacy -A: %v\n%s", err, errOut)
	}
	t.Logf("kubectl get privacy -A:\n%s", out)
	for _, name := range names {
		if !strings.Contains(out, name) {
			t.Errorf("kubectl get privacy -A does not list %s", name)
		}
	}
	for _, column := range []string{"SERVICE", "ENCRYPTION", "KEY", "READY", "COMPLIANT", "STORE", "CATEGORIES", "ACTIONS",
		"REVIEW DUE", "PARTNER", "BASIS", "IN FORCE", "UNTIL", "PERIOD", "LAST RUN", "DESTROYED", "OVERDUE", "TYPE", "DUE", "STATE", "DECISION", "ACTIVITY", "RETENTION"} {
		if !strings.Contains(out, column) {
			t.Errorf("kubectl get privacy -A has no %s column", column)
		}
	}
	for _, row := range []string{"YouthAndFamilyCentre", "Verwijsindex Risicojongeren", "LegalObligation", "VitalInterest", `["identity","contact"]`, "2027-07-17T00:00:00Z", "Cliëntervaringsonderzoek"} {
		if !strings.Contains(out, row) {
			t.Errorf("kubectl get privacy -A does not show %q", row)
		}
	}

	// Short names resolve to the right kinds and do not clash with built-ins.
	for short, kind := range map[string]string{"dstore": "dossierstore", "arole": "accessrole", "share": "sharingagreement", "rpol": "retentionpolicy", "dsr": "datasubjectrequest", "pact": "processingactivity"} {
		out, errOut, err := kubectl(t, "get", short, "-A", "-o", "name")
		if err != nil {
			t.Errorf("kubectl get %s: %v\n%s", short, err, errOut)
			continue
		}
		if !strings.Contains(out, kind+".privacy.dossierguard.io/") {
			t.Errorf("kubectl get %s listed %q; want %s objects", short, out, kind)
		}
	}
}

func kubectl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "auditor", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("add a kubectl user: %v", err)
	}
	kc, err := user.Kubectl()
	if err != nil {
		t.Fatalf("kubectl for that user: %v", err)
	}
	stdout, stderr, err := kc.Run(args...)
	out, _ := io.ReadAll(stdout)
	errOut, _ := io.ReadAll(stderr)
	return string(out), string(errOut), err
}
