package metrics

import (
	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// KindDataSubjectRequest is the kind label of a DataSubjectRequest.
const KindDataSubjectRequest = "DataSubjectRequest"

// The metrics of data-subject requests. Their labels are the request's
// kind, namespace and name, and the request type: never the dossier's
// pseudonym.
const (
	// RequestDue is when an undecided request's deadline passes; absent once
	// it is decided.
	RequestDue = "dossierguard_datasubjectrequest_due_timestamp_seconds"
	// RequestOverdue is 1 while a request is past its deadline undecided.
	RequestOverdue = "dossierguard_datasubjectrequest_overdue"
)

const labelType = "type"

var subjectRightsDefinitions = map[string]definition{
	RequestDue: {"When an undecided DataSubjectRequest's deadline passes (the start of the day after its due date in Europe/Amsterdam), as a Unix timestamp; absent once it is decided.",
		[]string{labelType}},
	RequestOverdue: {"1 while a DataSubjectRequest is past its deadline and not decided, else 0.",
		[]string{labelType}},
}

// withSubjectRights adds the data-subject request metrics to defs.
func withSubjectRights(defs map[string]definition) map[string]definition {
	for name, d := range subjectRightsDefinitions {
		defs[name] = d
	}
	return defs
}

// DataSubjectRequest is a request's samples: while it is undecided its
// deadline, and whether it has passed. Its ResponseDeadline control is not
// exported: a request decided late keeps that record in its status, and an
// alert on it would never resolve; the store's DataSubjectRights control
// and these series say what needs doing now.
func DataSubjectRequest(r *v1alpha1.DataSubjectRequest) []Sample {
	var out []Sample
	typ := []string{string(r.Spec.Type)}
	switch r.Status.State {
	case v1alpha1.StateOpen, v1alpha1.StateOverdue:
		if r.Status.DueAt != nil {
			out = append(out, Sample{RequestDue, typ, unix(r.Status.DueAt.Time)})
		}
		out = append(out, Sample{RequestOverdue, typ, bit(r.Status.State == v1alpha1.StateOverdue)})
	case "":
	default:
		out = append(out, Sample{RequestOverdue, typ, 0})
	}
	return out
}

// RecordDataSubjectRequest sets a DataSubjectRequest's series from its
// status.
func RecordDataSubjectRequest(r *v1alpha1.DataSubjectRequest) {
	Default.Set(Object{KindDataSubjectRequest, r.Namespace, r.Name}, DataSubjectRequest(r))
}
