// Package egressgateway is the egress gateway of dossierguard: the only way
// out from a store's case-management application to its partners. The
// application sends a request for a partner to the gateway with the
// agreement named in the path, /<agreement>/<partner path>; the gateway
// forwards it to the agreement's partner endpoint only when it may leave,
// and only once its decision is durably recorded:
//
//  1. the caller is a pod of the store's workload, by its projected
//     ServiceAccount token (a TokenReview with the gateway's audience, the
//     pod's UID and the store's workload selector; the logbook's
//     KubernetesSenders does it), not by its address;
//  2. the partner path matches an outbound route of the named agreement
//     (method and path pattern with {dossier}, by the audit proxy's
//     Router), which gives the categories disclosed and the dossier;
//  3. the agreement is in force for outbound sharing at that instant, the
//     route's categories are within it, the processing activity is one it
//     serves, and consent for that dossier is confirmed by the consent
//     source when the agreement needs it (the audit proxy's
//     AuthoriseSharing, fail closed); the dossier is neither restricted
//     nor objected to;
//  4. the decision is appended to the hash-chained audit log (and shipped
//     to the logbook) and is durable, whatever the method: the outbound
//     request is itself the disclosure, so unlike the audit proxy the
//     gateway never overlaps it with the append; if it cannot be, nothing
//     leaves (503);
//  5. the request goes to the partner over TLS that the gateway originates,
//     verifying the partner's certificate against the agreement's CA bundle
//     and presenting its client certificate, both read from mounted files
//     and re-read when they change; redirects are not followed, the
//     caller's token and hop-by-hop headers never leave.
//
// Anything else is refused with an RFC 9457 problem (403 for a decision,
// naming what is missing: the route, categories, consent, the agreement in
// force, the activity) and recorded too; a problem never holds the dossier
// id. A completion event with the partner's status follows an allowed
// request, 502 when the partner could not be reached or its certificate was
// not trusted.
//
// The gateway starts, reloads its egress document and shuts down with the
// audit proxy's code (internal/httpserve, internal/policyfile), and serves
// /healthz, /readyz and its Prometheus metrics (metrics.go) on the health
// port.
package egressgateway
