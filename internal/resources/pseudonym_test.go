package resources

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

func TestReadPseudonymKey(t *testing.T) {
	store := &v1alpha1.DossierStore{ObjectMeta: metav1.ObjectMeta{Name: "wijkteam-dossiers", Namespace: "wijkteam"}}
	name, key := PseudonymKeyRef(store)
	good := bytes.Repeat([]byte{9}, 32)
	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		want   string
	}{
		{"the store's key", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{key: good}}, ""},
		{"another Secret", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Data: map[string][]byte{key: good}}, "is in Secret " + name},
		{"no Secret", nil, "is in Secret " + name},
		{"a short key", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{key: []byte("short")}}, "key " + key + ": pseudonym key is 5 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadPseudonymKey(store, tc.secret)
			switch {
			case tc.want == "" && (err != nil || !bytes.Equal(got, good)):
				t.Errorf("key %x, error %v; want the key", got, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), string(good)) {
				t.Error("the error holds key material")
			}
		})
	}
}
