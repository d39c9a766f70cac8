// Package auditlog is the tamper-evident audit log of the dossierguard audit
// proxy: one JSON line per data processing (dataverwerking), aligned with the
// Dutch "Logboek Dataverwerkingen" standard, in a hash chain with periodic
// Ed25519-signed checkpoints.
//
// Every line carries a sequence number (seq, 1, 2, 3, ...), the hash of the
// previous line (prev) and its own hash: the hex SHA-256 of the exact bytes of
// the line with its final ,"hash":"..." member removed. Every N events, every
// T and on Close the writer adds a checkpoint line to the same chain whose
// signature covers its seq and the hash of the chain so far, so that even a
// rewrite of the whole chain after the last checkpoint is detected by
// [Verify]. The format is specified for auditors and integrators in
// docs/audit-log.md.
//
// [Writer] appends events to a file and mirrors them to an io.Writer (the
// container's stdout, for the cluster's log collection). Concurrent
// [Writer.Append] calls are group-committed: they are written and fsynced
// together, and each returns only once its own event is durable. A caller
// that gets an error from Append must deny the request it was recording.
//
// A writer given its origin ([Chain]: store, pod, incarnation) opens every
// new log with a genesis line; the chain id is its hash. [ParseRecord] checks
// and decodes single lines and [SpanOf], [ExportRequest] and [RecordOfSpan]
// carry them as OTLP spans, for the logbook (internal/logbook), which
// verifies each line against the head of its chain on receipt.
//
// Data subjects never appear in the log: [Pseudonymise] turns a subject
// identifier (such as a BSN) into a keyed hash with the store's pseudonym key,
// and [Writer.Append] rejects any data subject that is not such a hash.
package auditlog
