// Package retention is the retention sweeper: it destroys or anonymises the
// records of a PostgreSQL database whose retention period (bewaartermijn)
// has passed, as declared by the rules of a RetentionPolicy, and writes a
// proof of destruction (verklaring van vernietiging).
//
// # What is due
//
// For each rule a record is due when all of these hold:
//
//   - its clock column is before the cutoff, now minus the rule's period
//     (see [Cutoff]); a NULL clock is never due, and such records are
//     counted in the report (NoClock);
//   - it is not under legal hold: the legal-hold column is not true (NULL
//     counts as not held);
//   - its extension column (a client-requested extension) is NULL or before
//     now; an extension up to and including today keeps the record;
//   - for Anonymise rules, at least one of the anonymise columns is not yet
//     NULL, so that anonymised records are not selected again.
//
// Records that are due by their clock but held by a legal hold or a future
// extension are counted as held and never touched.
//
// # Retention decisions per dossier
//
// Config.Decisions names the dossiers (by pseudonym) that granted
// retention extension decisions keep at the sweep's now. For each rule with
// a dossier column the sweep reads the table's distinct dossier ids, keys
// them with the store's pseudonym key in the process (as [Erase] does) and
// excludes the records of the matching ids from its batches; they are
// counted as held and, separately, as KeptByExtension. When Decisions fails
// the sweep destroys nothing and reports Failed; when a rule's dossier ids
// cannot be read, that rule destroys nothing.
//
// # How it destroys
//
// A sweep works in batches over ranges of keys, each batch one transaction
// of one statement: it finds the range's last key by a walk of the key's
// index alone (the next k keys after the previous range), deletes the due
// records in the range (or sets their anonymise columns to NULL) with one
// DELETE whose WHERE holds the range and the whole due predicate, then
// commits. The table is so read in ranges rather than a due record at a
// time. The first range has Config.BatchSize keys; each next one as many as
// should hold about 90 % of BatchSize due records at the density the
// previous batch found, between BatchSize and 8 times it. A batch over more
// than BatchSize keys that would change more than BatchSize records is
// rolled back and run again over fewer, so no batch changes more than
// BatchSize records (unless records share a key, which a batch never
// splits). The DELETE takes no
// lock before it changes a row; in READ COMMITTED PostgreSQL re-checks its
// WHERE against the newest version of a row that another transaction
// changed meanwhile, so a legal hold or extension set while the batch runs
// keeps the record. A batch that waits longer than DefaultLockWait for a
// row another transaction holds locked is rolled back and run again with
// FOR UPDATE SKIP LOCKED: records held locked are skipped and stay overdue,
// in the report's count, until the next sweep. The next batch starts after
// the previous range's last key, so a sweep examines each key once: a record
// the application updates during the sweep is still examined under its key,
// one inserted ahead of the sweep's position is swept by it, one inserted
// behind is left to the next sweep (and counted overdue).
// A batch commits with synchronous_commit off: its locks are released at
// COMMIT, which returns without waiting for the write-ahead log's flush, so
// that the flush overlaps the next batch. After a rule's last batch one
// transaction with a transaction id commits with the server's own
// synchronous_commit, which makes every batch before it durable before the
// report is out; when that commit fails, the rule fails and its report
// leaves out the batches it could not confirm (their outcome is unknown).
// A batch runs on a context that is not cancelled with the caller's, so a
// cancelled sweep (SIGTERM) finishes the batch it is in, never leaves half a
// batch, and reports Interrupted. A sweep that exceeds Config.MaxRunTime
// starts no new batch and reports Interrupted too. A killed sweeper loses at
// most its open batch, which PostgreSQL rolls back; the next sweep finishes
// the job. Sweeps are idempotent: a sweep right after a complete one
// destroys nothing.
//
// Table and column names are quoted with pgx.Identifier; cutoffs, the batch
// size and keys are always query parameters. A dry run only counts, in a
// read-only transaction.
//
// # The report
//
// [Run] returns a [Report]: counts per rule (destroyed, anonymised, held,
// still overdue after the run, without a clock; the last three are
// [Unknown] when the sweep was interrupted before it counted) and the hex SHA-256 of "<table>:<id>" of each
// destroyed or anonymised record, never the ids themselves and never
// personal data, DSNs or driver messages. [Report.WriteJSON] writes it as
// one JSON line, [Report.Digest] is its SHA-256 and [Report.Summary] maps it
// to the RetentionRun status of the API.
//
// # Erasure of one dossier
//
// [Erase] destroys every record of one dossier, named by its pseudonym, in
// the tables of the rules that name a dossier column, in one transaction:
// the whole dossier or nothing. It finds the dossier's raw ids by reading
// the distinct values of each dossier column and keying them in the
// process with the store's pseudonym key, as the audit proxy does; the key
// never reaches the database. A record under legal hold, or within its
// statutory minimum without the child's-interest weighing, stops it. Its
// [ErasureReport] counts per table and hashes the destroyed records, as
// the sweep's report does.
package retention
