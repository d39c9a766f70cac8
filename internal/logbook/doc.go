// Package logbook is the durable audit trail of dossierguard: the logbook
// role (`dossierguard logbook`) that receives the hash-chained audit lines of
// the audit proxies over OTLP/HTTP (traces signal, one span per line, with
// the Logboek Dataverwerkingen dpl.core.* attributes), verifies every line
// against the head of its chain, and stores the chains in PostgreSQL, where
// they outlive the pods and stores that wrote them.
//
// # Verification on receipt
//
// Lines are decoded and checked with internal/auditlog (ParseRecord,
// RecordOfSpan, Record.VerifySignature): the same hash, format and signature
// rules as `dossierguard audit verify`. Every chain starts with its genesis
// line (store, pod, incarnation, start time) and its id is that line's hash,
// so every checkpoint, which signs the hash of all before it, is bound to its
// chain. The logbook keeps the head (last seq and hash) of every chain in
// logbook_chains and, in one transaction per chain and request that locks
// the head, stores a line only when it continues the head. A gap, a fork
// (another line with a stored seq), a substitution (the next seq that does
// not follow the head, or a line sent for another store), a bad checkpoint
// signature or a malformed line is refused: recorded in logbook_refusals and
// reported to the sender, never stored as a record. A line that is stored
// already is acknowledged again without a second copy, so redelivery is
// harmless: (chain_id, seq) is the primary key.
//
// A response acknowledges lines only after the transaction that stored them
// committed; when the database fails, the response is 503 and the sender
// retries.
//
// # Schema and roles
//
// The schema is plain versioned SQL (migrations/NNNN_name.sql, embedded) that
// Migrate applies in order, each in a transaction, under an advisory lock,
// recording the versions in logbook_schema_migrations. A migration library
// (such as goose) would add a dependency and its own command for the two
// things needed here: ordered files and a version table; the logbook checks
// the version at startup and refuses a schema it does not know.
//
// Migrate runs with the owner's rights (`dossierguard logbook migrate`). It
// creates the role dossierguard_logbook_ingest, which may INSERT lines,
// refusals and keys, move chain heads and read, and may not UPDATE or DELETE
// a line; a trigger refuses UPDATE of a line to every role. The logbook
// itself should connect as a login role that is granted only that role.
//
// # Keys
//
// The checkpoint public keys of each store are kept in logbook_keys
// (TrustKey); they are never removed, so the chains of a store can be
// verified after the store and its Secrets are deleted. A checkpoint signed
// with a key the logbook does not hold for the chain's store is refused.
package logbook
