// Package auditproxy is the audit proxy of dossierguard: a reverse proxy that
// runs as a sidecar next to a case-management application and lets a request
// reach the application only when the store's access-policy document allows
// it and the decision is durably recorded in the hash-chained audit log.
//
// For every request the proxy
//
//  1. identifies the caller, from a verified OpenID Connect bearer token or
//     from the identity headers of an authenticating proxy at a trusted
//     address (the headers are stripped from every other source);
//  2. matches the request to a route of the access-policy document (method
//     and path pattern, where {dossier} captures the dossier id and *
//     matches one path segment) and decides: the caller's non-break-glass
//     roles that grant the route's action must together grant every data
//     category of the route; roles limited to assigned cases count only for
//     dossiers the assignment source says are assigned to the caller, and
//     break-glass roles count only with a stated reason;
//  3. appends the decision to the audit log and waits until it is durable
//     (written and fsynced) before forwarding; when that fails the request
//     is refused with 503 and never reaches the application. A safe request
//     (GET, HEAD or OPTIONS on a read route) is forwarded while its decision
//     is being made durable, and nothing of its response (no 1xx, status,
//     header or byte of body) leaves before it is; when that fails the
//     client gets 503 and nothing of the application's response
//     (durability.go);
//  4. appends a completion event with the same operation id, the response
//     status and the duration once the application has answered and the
//     decision is durable; in the background it rides the audit log's next
//     commit (auditlog.WithDeferredCommit).
//
// Denied requests (401, 403) are recorded too, as one event each, under the
// processing activity the request would have fallen under (the route's,
// never the store's default when the route names activities). The data
// subject in the log is the keyed pseudonym of the dossier id; dossier ids,
// tokens and names never appear in the proxy's own logs.
//
// The access-policy document is polled every two seconds and swapped
// atomically when its content changes (Kubernetes updates ConfigMap volumes
// by swapping a symlink, so content hashes are compared, not modification
// times). A document that fails to load is logged and the last good one is
// kept.
package auditproxy
