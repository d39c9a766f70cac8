package webhook

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// TestInjectMountsTheLogbookToken: with a logbook, the proxy alone gets a
// projected ServiceAccount token of the logbook's audience, bound to the
// pod, and presents it; the pod checks refuse any other container or
// volume that would get such a token.
func TestInjectMountsTheLogbookToken(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Namespace: "wijkteam", Name: "dossiers"},
		Spec: v1alpha1.DossierStoreSpec{Workload: v1alpha1.WorkloadSpec{AppPort: 8080}}}
	for _, url := range []string{"", "http://dossierguard-logbook.dossierguard-system.svc:4318"} {
		cfg := Config{Image: "img", NativeSidecar: true, LogbookURL: url}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		Inject(pod, store, cfg)
		proxy := pod.Spec.InitContainers[0]
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == LogbookTokenVolume {
				vol = &pod.Spec.Volumes[i]
			}
		}
		hasArg := slices.Contains(proxy.Args, "--logbook-token-file="+LogbookTokenDir+"/"+LogbookTokenFile)
		hasMount := slices.ContainsFunc(proxy.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == LogbookTokenVolume && m.MountPath == LogbookTokenDir && m.ReadOnly
		})
		if url == "" {
			if vol != nil || hasArg || hasMount {
				t.Errorf("no logbook: token volume %v, arg %v, mount %v", vol != nil, hasArg, hasMount)
			}
			continue
		}
		if vol == nil || vol.Projected == nil || len(vol.Projected.Sources) != 1 || vol.Projected.Sources[0].ServiceAccountToken == nil {
			t.Fatalf("no projected token volume: %+v", pod.Spec.Volumes)
		}
		tok := vol.Projected.Sources[0].ServiceAccountToken
		if tok.Audience != v1alpha1.LogbookTokenAudience || tok.Path != LogbookTokenFile || tok.ExpirationSeconds == nil || *tok.ExpirationSeconds != 3600 {
			t.Errorf("token projection %+v", tok)
		}
		if !hasArg || !hasMount {
			t.Errorf("the proxy does not present the token: args %v mounts %v", proxy.Args, proxy.VolumeMounts)
		}
		if p := CheckPod(pod, store, cfg); len(p) != 0 {
			t.Errorf("the injected pod fails the pod checks: %v", p)
		}
		if p := VerifyProxy(pod, store, cfg); len(p) != 0 {
			t.Errorf("the injected proxy fails verification: %v", p)
		}

		// The application mounts the proxy's token volume.
		stolen := pod.DeepCopy()
		stolen.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: LogbookTokenVolume, MountPath: "/t"}}
		if p := CheckPod(stolen, store, cfg); !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, LogbookTokenVolume) }) {
			t.Errorf("the app mounting the token volume: %v, want a refusal naming it", p)
		}
		// The application projects a token of the logbook's audience itself.
		own := pod.DeepCopy()
		own.Spec.Volumes = append(own.Spec.Volumes, corev1.Volume{Name: "mine", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: v1alpha1.LogbookTokenAudience, Path: "t",
				ExpirationSeconds: ptr.To[int64](600)}}}}}})
		if p := CheckPod(own, store, cfg); !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, "serviceAccountToken") }) {
			t.Errorf("a second token of the logbook's audience: %v, want a refusal", p)
		}
		// Another audience (such as the application's own API access) is fine.
		fine := pod.DeepCopy()
		fine.Spec.Volumes = append(fine.Spec.Volumes, corev1.Volume{Name: "api", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "t"}}}}}})
		if p := CheckPod(fine, store, cfg); len(p) != 0 {
			t.Errorf("a token of another audience: %v", p)
		}
	}
}
