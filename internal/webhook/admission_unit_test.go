package webhook

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestOwningStore(t *testing.T) {
	mk := func(name string, sel map[string]string) v1alpha1.DossierStore {
		return v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: sel}}}}
	}
	stores := []v1alpha1.DossierStore{mk("a", map[string]string{"app": "a"}), mk("b", map[string]string{"app": "b"}),
		mk("c", map[string]string{"tier": "x"})}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string // store name, "" for none
		err    string
	}{
		{"no store", map[string]string{"app": "web"}, "", ""},
		{"selected, unlabelled", map[string]string{"app": "a"}, "a", ""},
		{"selected and labelled", map[string]string{"app": "a", "privacy.dossierguard.io/store": "a"}, "a", ""},
		{"labelled for another store", map[string]string{"app": "a", "privacy.dossierguard.io/store": "b"}, "", `labelled for DossierStore "b" but DossierStore "a"`},
		{"labelled, not selected", map[string]string{"app": "web", "privacy.dossierguard.io/store": "a"}, "", "does not select it"},
		{"labelled for a missing store", map[string]string{"privacy.dossierguard.io/store": "z"}, "", `DossierStore "z" does not exist`},
		{"two selectors", map[string]string{"app": "a", "tier": "x"}, "", `"a", "c"`},
	} {
		got, err := OwningStore(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}}, stores)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && got != nil, tc.want != "" && (got == nil || got.Name != tc.want):
			t.Errorf("%s: store %v, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseBreakGlass(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ok := "INC-4711 restart a stuck worker"
	for _, tc := range []struct {
		name          string
		justification *string
		until         *string
		err           string
	}{
		{"none", nil, nil, ""},
		{"open", &ok, str("2026-12-01T09:30:00Z"), ""},
		{"justification alone", &ok, nil, "break-glass-until]: required"},
		{"until alone", nil, str("2026-12-01T09:30:00Z"), "break-glass-justification]: required"},
		{"too short", str("INC-1"), str("2026-12-01T09:30:00Z"), "10 to 200 characters"},
		{"too long", str(strings.Repeat("x", 201)), str("2026-12-01T09:30:00Z"), "10 to 200 characters"},
		{"bidi override", str("INC-4711 \u202egnikcah"), str("2026-12-01T09:30:00Z"), "U+202E"},
		{"zero width", str("INC-4711\u200b restart"), str("2026-12-01T09:30:00Z"), "U+200B"},
		{"newline", str("INC-4711\nrestart a worker"), str("2026-12-01T09:30:00Z"), "U+000A"},
		{"not a time", &ok, str("in an hour"), "RFC 3339"},
		{"expired", &ok, str("2026-12-01T08:59:59Z"), "closed"},
		{"too long a window", &ok, str("2026-12-01T10:00:01Z"), "at most 1h0m0s"},
	} {
		a := map[string]string{}
		if tc.justification != nil {
			a[v1alpha1.AnnotationBreakGlassJustification] = *tc.justification
		}
		if tc.until != nil {
			a[v1alpha1.AnnotationBreakGlassUntil] = *tc.until
		}
		bg, err := ParseBreakGlass(a, at, 0)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.justification == nil && bg != nil, tc.justification != nil && bg == nil:
			t.Errorf("%s: window %+v", tc.name, bg)
		}
	}
}

func str(s string) *string { return &s }

// The injected proxy passes its own verification, in both sidecar modes;
// a pod that only carries the annotation does not.
func TestVerifyProxyAcceptsOnlyTheInjectedProxy(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{AppPort: 8080},
			Audit: &v1alpha1.AuditSpec{Identity: &v1alpha1.IdentitySpec{TrustedProxy: &v1alpha1.TrustedProxySpec{CIDRs: []string{"127.0.0.1/32"}}}}}}
	for _, native := range []bool{true, false} {
		cfg := Config{Image: "img", NativeSidecar: native}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		Inject(pod, store, cfg)
		if p := VerifyProxy(pod, store, cfg); len(p) != 0 {
			t.Errorf("native=%v: the injected proxy fails verification: %v", native, p)
		}
		if p := CheckPod(pod, store, cfg); len(p) != 0 {
			t.Errorf("native=%v: the injected pod fails the pod checks: %v", native, p)
		}
		other := cfg
		other.Image = "other"
		if p := VerifyProxy(pod, store, other); len(p) == 0 {
			t.Errorf("native=%v: a proxy of another image passes", native)
		}
	}
	onlyAnnotated := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.AnnotationAuditProxy: "injected"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if p := VerifyProxy(onlyAnnotated, store, Config{Image: "img", NativeSidecar: true}); len(p) == 0 {
		t.Error("a pod with only the injected annotation passes")
	}
}
