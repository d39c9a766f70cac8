package report

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dossierguard/dossierguard/api/v1alpha1"
)

// List reads the resources a compliance report is built from, in one
// namespace or, when namespace is empty, in all of them. It fails when any
// kind cannot be listed: a report that silently left out a kind would show
// an auditor less than there is.
func List(ctx context.Context, c client.Reader, namespace string) (Input, error) {
	var (
		in         Input
		stores     v1alpha1.DossierStoreList
		roles      v1alpha1.AccessRoleList
		agreements v1alpha1.SharingAgreementList
		policies   v1alpha1.RetentionPolicyList
		requests   v1alpha1.DataSubjectRequestList
	)
	opts := []client.ListOption{}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	for _, l := range []struct {
		kind string
		list client.ObjectList
	}{
		{"DossierStores", &stores},
		{"AccessRoles", &roles},
		{"SharingAgreements", &agreements},
		{"RetentionPolicies", &policies},
		{"DataSubjectRequests", &requests},
	} {
		if err := c.List(ctx, l.list, opts...); err != nil {
			return Input{}, fmt.Errorf("list %s: %w", l.kind, err)
		}
	}
	in.Stores, in.Roles, in.Agreements, in.Policies = stores.Items, roles.Items, agreements.Items, policies.Items
	in.Requests = requests.Items
	return in, nil
}
