package v1alpha1

// LogbookTokenAudience is the audience of the projected ServiceAccount
// token the webhook mounts into every audit proxy that ships to the
// logbook, and that the logbook requires of every sender: a token of this
// audience is good for nothing else (not for the Kubernetes API), and a
// token for anything else is refused by the logbook.
const LogbookTokenAudience = "dossierguard-logbook"

// EgressGatewayTokenAudience is the audience of the projected
// ServiceAccount token with which a store's application authenticates to
// the store's egress gateway; a token for the logbook (or the API server)
// is refused there, and this one is refused everywhere else.
const EgressGatewayTokenAudience = "dossierguard-egress-gateway"
