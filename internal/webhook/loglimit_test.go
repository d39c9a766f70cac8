package webhook

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestInjectBoundsTheLogVolume: the proxy's log emptyDir gets the size
// limit and the proxy the bound below it at which it refuses with 503;
// without a limit, neither.
func TestInjectBoundsTheLogVolume(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "dossiers"},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{AppPort: 8080}}}
	for _, tc := range []struct {
		limit   string
		wantArg string
	}{
		{"", ""},
		{"1Gi", "--audit-log-max-bytes=1006632960"},
		{"64Mi", "--audit-log-max-bytes=62914560"},
	} {
		cfg := Config{Image: "img"}
		if tc.limit != "" {
			cfg.LogSizeLimit = resource.MustParse(tc.limit)
		}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		Inject(pod, store, cfg)
		var log *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == LogVolume {
				log = &pod.Spec.Volumes[i]
			}
		}
		if log == nil || log.EmptyDir == nil {
			t.Fatalf("limit %q: no log emptyDir in %+v", tc.limit, pod.Spec.Volumes)
		}
		switch got := log.EmptyDir.SizeLimit; {
		case tc.limit == "" && got != nil:
			t.Errorf("no limit configured, sizeLimit %s", got)
		case tc.limit != "" && (got == nil || got.Cmp(resource.MustParse(tc.limit)) != 0):
			t.Errorf("limit %s: sizeLimit %v", tc.limit, got)
		}
		args := pod.Spec.Containers[1].Args
		hasBound := slices.ContainsFunc(args, func(a string) bool { return len(a) > 21 && a[:21] == "--audit-log-max-bytes" })
		if tc.wantArg == "" && hasBound || tc.wantArg != "" && !slices.Contains(args, tc.wantArg) {
			t.Errorf("limit %q: args %v, want %q", tc.limit, args, tc.wantArg)
		}
		// The admitted pod is checked against the same expectation.
		if problems := VerifyProxy(pod, store, cfg); len(problems) > 0 {
			t.Errorf("limit %q: the injected pod fails its own check: %v", tc.limit, problems)
		}
		other := cfg
		other.LogSizeLimit = resource.MustParse("2Gi")
		if problems := VerifyProxy(pod, store, other); len(problems) == 0 {
			t.Errorf("limit %q: a pod injected with another log limit passes as the expected proxy", tc.limit)
		}
	}
}
