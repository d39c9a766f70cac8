package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// may asks the API server whether user may get the Secret ns/name.
func may(t *testing.T, user, ns, name string) bool {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: name}}}
	if err := k8s.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.Allowed
}

// A privacy officer who answers a family's access request runs `audit
// query`, which needs the store's pseudonym key, and nothing that can sign
// the audit log. The store ships a Role that reads exactly the pseudonym
// Secret; bound to it, the officer can read that key and no Secret that
// holds a signing key. (With one Secret for both keys there was no such
// Role, and no way to grant the one key without the other.)
func TestPseudonymReaderCannotReadTheSigningKey(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	store := newStore(t, ns, encryptedClass(t).Name)
	eventually(t, timeout, storeCondition(store, v1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	const officer = "privacy-officer@gemeente.example"
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "privacy-officer", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: store.Name + "-pseudonym-reader"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: officer}}}
	if err := k8s.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	secrets := &corev1.SecretList{}
	if err := k8s.List(ctx, secrets); err != nil {
		t.Fatal(err)
	}
	var pseudonymSecrets []string
	eventually(t, timeout, func() error {
		pseudonymSecrets = nil
		if err := k8s.List(ctx, secrets); err != nil {
			return err
		}
		for _, s := range secrets.Items {
			if s.Namespace != ns {
				continue
			}
			_, signing := s.Data["signing.key"]
			for name := range s.Data {
				signing = signing || strings.HasSuffix(name, ".key") && strings.HasPrefix(name, "signing")
			}
			switch {
			case signing && may(t, officer, ns, s.Name):
				return fmt.Errorf("the pseudonym reader may read Secret %s, which holds a signing key", s.Name)
			case !signing && s.Data["pseudonym.key"] != nil && may(t, officer, ns, s.Name):
				pseudonymSecrets = append(pseudonymSecrets, s.Name)
			}
		}
		if len(pseudonymSecrets) != 1 {
			return fmt.Errorf("the pseudonym reader may read the pseudonym key from %v; want exactly one Secret without a signing key", pseudonymSecrets)
		}
		return nil
	})
	for _, other := range []string{"dossiers-datakey", "dossiers-proxy-tls"} {
		if may(t, officer, ns, other) {
			t.Errorf("the pseudonym reader may read Secret %s", other)
		}
	}
}
