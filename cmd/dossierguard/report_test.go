package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
	"github.com/dossierguard/dossierguard/controllers"
	"github.com/dossierguard/dossierguard/internal/testenv"
	"github.com/dossierguard/dossierguard/internal/webhook"
)

// runCommand runs `dossierguard args...` and returns stdout and the error.
func runCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

// Bad flags are refused before anything is read, with the flag and the
// rule named, and exit code 2.
func TestReportFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--lang", "de"}, `--lang: must be one of nl, en, not "de"`},
		{[]string{"-n", "wijkteam", "--all-namespaces"}, "--namespace and --all-namespaces exclude each other"},
		{[]string{"-n", "Wijk_Team"}, `--namespace "Wijk_Team": must be a namespace name`},
		{[]string{"--output", dir}, "is a directory"},
		{[]string{"--output", filepath.Join(dir, "missing", "r.html")}, "does not exist"},
		{[]string{"--pdf", "r.pdf"}, "unknown flag: --pdf"},
		{[]string{"extra"}, `unknown command "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// No cluster is reachable: validation must come first.
			t.Setenv("KUBECONFIG", filepath.Join(dir, "no-kubeconfig"))
			_, err := runCommand(t, append([]string{"report"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one containing %q", err, tc.want)
			}
			if tc.args[0] != "extra" && exitCodeOf(err) != 2 {
				t.Errorf("exit code %d; want 2 for a usage error", exitCodeOf(err))
			}
		})
	}
}

// What may identify a person or a dossier, seeded into the objects the
// report reads: the samples' own User subject, more users, a dossier number
// and a client number in an annotation and a label, and the names of the
// database credentials. None of it may reach the report; the names of the
// objects do.
var reportSecrets = []string{
	"privacy-officer@voorbeeldstad.nl", // a User subject of the samples
	"j.devries@cjg.example", "u900000017",
	"DOS-2026-004712", "999990019",
	"wijkteam-db-credentials", "vt-db-credentials", "cjg-db-credentials",
	openRequestPseudonym,
}

// openRequestPseudonym is the dossier of the open request seeded for the
// report; it must not be in the report.
const openRequestPseudonym = "4e7a1c9b2d5f8e0a3c6b9d2f5a8e1c4b7d0a3f6c9e2b5d8a1f4c7e0b3d6a9c2f"

// The auditor's read-only permissions, as docs/reports.md gives them.
var reportReaderRole = &rbacv1.ClusterRole{
	ObjectMeta: metav1.ObjectMeta{Name: "dossierguard-report-reader"},
	Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{v1alpha1.GroupVersion.Group},
		Resources: []string{"dossierstores", "accessroles", "sharingagreements", "retentionpolicies", "datasubjectrequests"},
		Verbs:     []string{"get", "list"},
	}},
}

// `dossierguard report` against a real API server with the real
// reconcilers: the samples, reconciled, appear with every control of every
// store; the author is the user the API server authenticated; a user
// allowed one namespace gets that namespace and is refused all of them;
// the report renders in a real Chromium.
func TestReport(t *testing.T) {
	ctx := t.Context()
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	startReconcilers(t, env)
	seedReportObjects(t, env.Client)
	settled(t, env.Client)

	dir := t.TempDir()
	admin, err := env.AddUser(envtest.User{Name: "platform-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	adminKubeconfig := writeKubeconfig(t, dir, "admin", admin)
	auditor, err := env.AddUser(envtest.User{Name: "auditor@gemeente.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	auditorKubeconfig := writeKubeconfig(t, dir, "auditor", auditor)
	for _, obj := range []client.Object{
		reportReaderRole.DeepCopy(),
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "auditor-report"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reportReaderRole.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "auditor@gemeente.example"}},
		},
	} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("all namespaces, as the platform admin", func(t *testing.T) {
		out := filepath.Join(dir, "all.html")
		if _, err := runCommand(t, "report", "--kubeconfig", adminKubeconfig, "--all-namespaces", "--output", out); err != nil {
			t.Fatal(err)
		}
		html, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		s := string(html)
		for _, w := range []string{`<html lang="nl">`, "Nalevingsrapport privacymaatregelen", "platform-admin", "envtest", "alle namespaces"} {
			if !strings.Contains(s, w) {
				t.Errorf("report lacks %q", w)
			}
		}
		checkEveryControl(t, ctx, env.Client, s, "")
		checkNoSecrets(t, s)
	})

	t.Run("one namespace, in English, as the auditor", func(t *testing.T) {
		out, err := runCommand(t, "report", "--kubeconfig", auditorKubeconfig, "-n", "wijkteam", "--lang", "en")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{`<html lang="en">`, "Privacy controls compliance report", "auditor@gemeente.example", "<dd>wijkteam</dd>",
			`data-store="wijkteam/wijkteam-dossiers"`, "Woonstichting Voorbeeldstad",
			"Data-subject requests", `data-request="correctie-2026-0099"`, "rectification"} {
			if !strings.Contains(out, w) {
				t.Errorf("report lacks %q", w)
			}
		}
		if strings.Contains(out, `data-store="cjg/`) || strings.Contains(out, `data-store="veilig-thuis/`) {
			t.Error("the report of namespace wijkteam shows stores of other namespaces")
		}
		checkEveryControl(t, ctx, env.Client, out, "wijkteam")
		checkNoSecrets(t, out)
	})

	t.Run("all namespaces, as the auditor: refused", func(t *testing.T) {
		out := filepath.Join(dir, "refused.html")
		_, err := runCommand(t, "report", "--kubeconfig", auditorKubeconfig, "-A", "--output", out)
		if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "docs/reports.md") {
			t.Fatalf("error %v; want forbidden, pointing at docs/reports.md", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused report left %s behind (%v)", out, err)
		}
	})

	t.Run("the register in Chromium", func(t *testing.T) {
		activities := reconciledActivities(t, env.Client)
		html, err := runCommand(t, "register", "export", "--kubeconfig", adminKubeconfig, "--all-namespaces", "--format", "html")
		if err != nil {
			t.Fatal(err)
		}
		checkRegisterInChromium(t, []byte(html), activities, reportSecrets)
	})

	t.Run("Chromium", func(t *testing.T) {
		html, err := runCommand(t, "report", "--kubeconfig", adminKubeconfig, "--all-namespaces")
		if err != nil {
			t.Fatal(err)
		}
		checkInChromium(t, []byte(html), reportSecrets)
	})
}

// settled waits until the reconcilers stop changing any status (a store's
// status follows its roles and policies without a new generation), so that
// what the report shows can be compared with what the API holds.
func settled(t *testing.T, c client.Client) {
	t.Helper()
	versions := func() string {
		var (
			b          strings.Builder
			stores     v1alpha1.DossierStoreList
			roles      v1alpha1.AccessRoleList
			agreements v1alpha1.SharingAgreementList
			policies   v1alpha1.RetentionPolicyList
		)
		for _, l := range []client.ObjectList{&stores, &roles, &agreements, &policies} {
			if err := c.List(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			b.WriteString(l.GetResourceVersion() + " ")
		}
		return b.String()
	}
	deadline := time.Now().Add(60 * time.Second)
	last := versions()
	for stable := 0; stable < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the statuses did not settle within 60s")
		}
		time.Sleep(time.Second)
		if now := versions(); now == last {
			stable++
		} else {
			stable, last = 0, now
		}
	}
}

// checkEveryControl checks that the report shows every store of the
// namespace (all when empty) with each control of its status.
func checkEveryControl(t *testing.T, ctx context.Context, c client.Client, html, namespace string) {
	t.Helper()
	var stores v1alpha1.DossierStoreList
	if err := c.List(ctx, &stores, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	if len(stores.Items) < 3 && namespace == "" {
		t.Fatalf("%d stores; want the samples' three", len(stores.Items))
	}
	for _, s := range stores.Items {
		start := strings.Index(html, fmt.Sprintf(`data-store="%s/%s"`, s.Namespace, s.Name))
		if start < 0 {
			t.Errorf("store %s/%s is not in the report", s.Namespace, s.Name)
			continue
		}
		section := html[start:]
		if end := strings.Index(section, "</section>"); end > 0 {
			section = section[:end]
		}
		if len(s.Status.Compliance) == 0 {
			t.Errorf("store %s/%s has no controls in status", s.Namespace, s.Name)
		}
		for _, ctl := range s.Status.Compliance {
			if !strings.Contains(section, fmt.Sprintf(`data-control="%s"`, ctl.Control)) || !strings.Contains(section, ctl.Reference) {
				t.Errorf("store %s/%s: control %s (%s) is not in its section", s.Namespace, s.Name, ctl.Control, ctl.Reference)
			}
			for _, e := range ctl.Evidence {
				if !strings.Contains(section, htmlEscape(e)) {
					t.Errorf("store %s/%s: evidence %q of %s is not in its section", s.Namespace, s.Name, e, ctl.Control)
				}
			}
		}
	}
}

func checkNoSecrets(t *testing.T, html string) {
	t.Helper()
	for _, s := range reportSecrets {
		if strings.Contains(html, s) {
			t.Errorf("the report contains %q", s)
		}
	}
}

// htmlEscape is how html/template writes a text value.
func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func writeKubeconfig(t *testing.T, dir, name string, u *envtest.AuthenticatedUser) string {
	t.Helper()
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startReconcilers runs the operator's reconcilers against env until the
// test ends.
func startReconcilers(t *testing.T, env *testenv.Env) {
	t.Helper()
	// Errors only, so that a failing reconcile explains itself.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, Cache: controllers.CacheOptions(controllers.ReportKinds{})})
	if err != nil {
		t.Fatal(err)
	}
	const operatorNamespace = "dossierguard-system"
	if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		t.Fatal(err)
	}
	certs := &webhook.CertManager{Client: env.Client, Namespace: operatorNamespace, SecretName: "dossierguard-webhook-tls",
		ServiceName: "dossierguard-webhook", WebhookConfigName: "dossierguard-sidecar-injector", CertDir: t.TempDir()}
	if err := certs.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := controllers.SetupAll(mgr, controllers.Options{Certs: certs, TrustNamespace: operatorNamespace}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// seedReportObjects applies the samples on an encrypted StorageClass, adds
// objects holding what looks like personal data and identifiers, and
// waits until the reconcilers have written the status of every object.
func seedReportObjects(t *testing.T, c client.Client) {
	t.Helper()
	ctx := t.Context()
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "encrypted-ssd"}, Provisioner: "ebs.csi.aws.com",
		Parameters: map[string]string{"type": "gp3", "encrypted": "true", "kmsKeyId": "alias/dossierguard-test"}}
	if err := c.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	samples, err := testenv.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range samples {
		if obj.GetKind() == "DossierStore" && obj.GetName() == "cjg-dossiers" {
			obj.SetAnnotations(map[string]string{"casemanagement.example/dossier": "DOS-2026-004712"})
			obj.SetLabels(map[string]string{"casemanagement.example/client": "999990019"})
		}
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	open := &v1alpha1.DataSubjectRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "correctie-2026-0099"},
		Spec: v1alpha1.DataSubjectRequestSpec{
			StoreRef: v1alpha1.StoreReference{Name: "wijkteam-dossiers"}, Type: v1alpha1.RequestRectification,
			Dossier: openRequestPseudonym, ReceivedAt: metav1.NewTime(time.Now().Add(-24 * time.Hour).Truncate(time.Second)),
			Requester: v1alpha1.Requester{Relation: v1alpha1.RelationSelf}, Subject: v1alpha1.DataSubject{AgeBand: v1alpha1.AgeAdult},
			Handler: "privacy-officer",
		},
	}
	if err := c.Create(ctx, open); err != nil {
		t.Fatal(err)
	}
	role := &v1alpha1.AccessRole{
		ObjectMeta: metav1.ObjectMeta{Namespace: "cjg", Name: "team-2026-0417"},
		Spec: v1alpha1.AccessRoleSpec{
			StoreRef: v1alpha1.StoreReference{Name: "cjg-dossiers"},
			Subjects: []v1alpha1.Subject{
				{Kind: v1alpha1.SubjectGroup, Name: "cjg-team-0417"},
				{Kind: v1alpha1.SubjectUser, Name: "j.devries@cjg.example"},
				{Kind: v1alpha1.SubjectUser, Name: "u900000017"},
			},
			Categories: []v1alpha1.DataCategory{v1alpha1.CategoryIdentity},
			Actions:    []v1alpha1.Action{v1alpha1.ActionRead},
			Purpose:    "Overdracht van casus 0417 aan het wijkteam",
		},
	}
	if err := c.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pending, err := unreconciled(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reconciled within 60s: %v", pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unreconciled names the objects whose status does not yet describe their
// spec.
func unreconciled(ctx context.Context, c client.Client) ([]string, error) {
	var (
		pending    []string
		stores     v1alpha1.DossierStoreList
		roles      v1alpha1.AccessRoleList
		agreements v1alpha1.SharingAgreementList
		policies   v1alpha1.RetentionPolicyList
	)
	check := func(kind string, m metav1.Object, st *v1alpha1.CommonStatus) {
		if st.ObservedGeneration != m.GetGeneration() || len(st.Compliance) == 0 {
			pending = append(pending, kind+"/"+m.GetNamespace()+"/"+m.GetName())
		}
	}
	for _, l := range []client.ObjectList{&stores, &roles, &agreements, &policies} {
		if err := c.List(ctx, l); err != nil {
			return nil, err
		}
	}
	for i := range stores.Items {
		check("DossierStore", &stores.Items[i], &stores.Items[i].Status.CommonStatus)
	}
	for i := range roles.Items {
		check("AccessRole", &roles.Items[i], &roles.Items[i].Status.CommonStatus)
	}
	for i := range agreements.Items {
		check("SharingAgreement", &agreements.Items[i], &agreements.Items[i].Status.CommonStatus)
	}
	for i := range policies.Items {
		check("RetentionPolicy", &policies.Items[i], &policies.Items[i].Status.CommonStatus)
	}
	return pending, nil
}
