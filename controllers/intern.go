package controllers

import (
	"unique"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// interned runs next, then has the object share one copy of each string
// that many cached objects repeat: its namespace, the keys and values of
// its labels and annotations, its owners' kinds and names, its managers,
// and, for the resources of dossierguard's API, the condition types,
// reasons and messages and the controls of their status. The informers
// decode every object afresh, so without this each of some twenty
// children of a store holds its own copy of the same labels, and each
// store's status its own copy of the same control references and
// messages. The values are unchanged; only their storage is shared (Go
// strings are immutable). Anything that is not an object passes unchanged.
func interned(next toolscache.TransformFunc) toolscache.TransformFunc {
	return func(in any) (any, error) {
		out, err := next(in)
		if err != nil {
			return out, err
		}
		if obj, err := meta.Accessor(out); err == nil {
			internMeta(obj)
		}
		if st := commonStatusOf(out); st != nil {
			internStatus(st)
		}
		return out, nil
	}
}

// unchanged is the transform that changes nothing, for kinds that are
// cached whole.
func unchanged(in any) (any, error) { return in, nil }

// intern is the copy of s that the cache shares.
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

func internMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if !distinctValues[k] {
			v = intern(v)
		}
		out[intern(k)] = v
	}
	return out
}

// distinctValues are the annotations whose values differ from object to
// object (content hashes): sharing them would only add an entry of the
// intern table to each object's own copy.
var distinctValues = map[string]bool{
	v1alpha1.AnnotationAppliedHash: true,
	v1alpha1.AnnotationReportHash:  true,
}

func internMeta(obj metav1.Object) {
	obj.SetNamespace(intern(obj.GetNamespace()))
	obj.SetLabels(internMap(obj.GetLabels()))
	obj.SetAnnotations(internMap(obj.GetAnnotations()))
	if refs := obj.GetOwnerReferences(); len(refs) > 0 {
		for i := range refs {
			refs[i].APIVersion, refs[i].Kind, refs[i].Name = intern(refs[i].APIVersion), intern(refs[i].Kind), intern(refs[i].Name)
		}
		obj.SetOwnerReferences(refs)
	}
	if entries := obj.GetManagedFields(); len(entries) > 0 {
		for i := range entries {
			e := &entries[i]
			e.Manager, e.APIVersion, e.FieldsType, e.Subresource = intern(e.Manager), intern(e.APIVersion), intern(e.FieldsType), intern(e.Subresource)
			e.Operation = metav1.ManagedFieldsOperationType(intern(string(e.Operation)))
		}
		obj.SetManagedFields(entries)
	}
}

func internStatus(st *v1alpha1.CommonStatus) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Reason, c.Message = intern(c.Type), intern(c.Reason), intern(c.Message)
	}
	for i := range st.Compliance {
		c := &st.Compliance[i]
		c.Control, c.Reference, c.Reason, c.Message = intern(c.Control), intern(c.Reference), intern(c.Reason), intern(c.Message)
		c.Result = v1alpha1.ComplianceResult(intern(string(c.Result)))
		for j := range c.Evidence {
			c.Evidence[j] = intern(c.Evidence[j])
		}
	}
}

// commonStatusOf is the status every kind of dossierguard's API has, nil
// for any other object.
func commonStatusOf(obj any) *v1alpha1.CommonStatus {
	switch o := obj.(type) {
	case *v1alpha1.DossierStore:
		return &o.Status.CommonStatus
	case *v1alpha1.AccessRole:
		return &o.Status.CommonStatus
	case *v1alpha1.SharingAgreement:
		return &o.Status.CommonStatus
	case *v1alpha1.RetentionPolicy:
		return &o.Status.CommonStatus
	case *v1alpha1.DataSubjectRequest:
		return &o.Status.CommonStatus
	case *v1alpha1.ProcessingActivity:
		return &o.Status.CommonStatus
	default:
		return nil
	}
}
