-- retention-counts.sql: what an index on the clock column does for the
-- sweeper's counts after the run and for the plain DELETE it is compared
-- with (docs/benchmarks-retention.md, "An index on the clock column").
--
--   hack/postgres.sh start
--   psql -X -h 127.0.0.1 -p "${PGPORT:-55432}" -U postgres dossierguard_test -f hack/retention-counts.sql
--
-- It builds the benchmark's table (1,000,000 rows, 30 % due) in the schema
-- retention_counts and, on fresh copies k (the primary key alone) and c (the
-- primary key and a B-tree index on last_contact_at):
--   plans    the plain DELETE's plan on k and on c;
--   plain    the plain DELETE's time on k and on c, alternately, each after a
--            CHECKPOINT and rolled back;
--   counts   after the plain DELETE (the state the sweeper's counts find):
--            the counts' plan on c, on c with sequential scans off, on k,
--            and a second time on k (the first read of a page after the
--            deletes prunes it);
--   night    after VACUUM ANALYZE (the next night): the counts with the
--            next day's cutoff on k and on c;
--   prune    the sweeper's ranges of 15,000 keys on k in a procedure with
--            a COMMIT per range, without and then (on a fresh copy) with a
--            read of the previous range before each DELETE, then the counts.
-- The schema is dropped at the end.
\set ON_ERROR_STOP on
\timing off
\set schema retention_counts
\ir retention-table.sql

CREATE PROCEDURE retention_counts.copy() LANGUAGE sql AS $$
  DROP TABLE IF EXISTS retention_counts.k, retention_counts.c;
  CREATE TABLE retention_counts.k AS SELECT * FROM retention_counts.src;
  ALTER TABLE retention_counts.k ADD PRIMARY KEY (id);
  CREATE TABLE retention_counts.c AS SELECT * FROM retention_counts.src;
  ALTER TABLE retention_counts.c ADD PRIMARY KEY (id);
  CREATE INDEX ON retention_counts.c (last_contact_at);
  ANALYZE retention_counts.k;
  ANALYZE retention_counts.c;
$$;

-- The plain DELETE of the benchmark and the sweeper's counts (P5Y, no
-- dossier column), for a table and a cutoff.
CREATE FUNCTION retention_counts.plain(t text) RETURNS text LANGUAGE sql AS $$
  SELECT format('DELETE FROM retention_counts.%s WHERE last_contact_at < %L AND legal_hold IS NOT TRUE'
    ' AND (retain_until IS NULL OR retain_until < %L)', t, '2021-06-15 10:00Z', '2026-06-15')
$$;
CREATE FUNCTION retention_counts.counts(t text, cutoff timestamptz, now date) RETURNS text LANGUAGE sql AS $$
  SELECT format('SELECT count(*) FILTER (WHERE (last_contact_at < %1$L)),'
    ' count(*) FILTER (WHERE (last_contact_at < %1$L) AND legal_hold IS NOT TRUE AND (retain_until IS NULL OR retain_until < %2$L)),'
    ' count(*) FILTER (WHERE (last_contact_at < %1$L) AND FALSE), count(*) FILTER (WHERE last_contact_at IS NULL)'
    ' FROM retention_counts.%3$s WHERE (last_contact_at < %1$L) OR last_contact_at IS NULL', cutoff, now, t)
$$;

CALL retention_counts.copy();
VACUUM retention_counts.k;
VACUUM retention_counts.c;
\echo plans
SELECT 'EXPLAIN (COSTS OFF) ' || retention_counts.plain('k') AS q \gexec
SELECT 'EXPLAIN (COSTS OFF) ' || retention_counts.plain('c') AS q \gexec

\echo plain
SELECT retention_counts.plain('k') AS plain_k, retention_counts.plain('c') AS plain_c \gset
CHECKPOINT;
BEGIN;
\timing on
:plain_k;
\timing off
ROLLBACK;
CHECKPOINT;
BEGIN;
\timing on
:plain_c;
\timing off
ROLLBACK;
CHECKPOINT;
BEGIN;
\timing on
:plain_k;
\timing off
ROLLBACK;
CHECKPOINT;
BEGIN;
\timing on
:plain_c;
\timing off
ROLLBACK;

\echo counts
CALL retention_counts.copy();
VACUUM retention_counts.k;
VACUUM retention_counts.c;
:plain_k;
:plain_c;
SELECT 'EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF) ' || retention_counts.counts('c', '2021-06-15 10:00Z', '2026-06-15') AS q \gexec
\echo counts, a second table after the same DELETE, sequential scans off
CALL retention_counts.copy();
VACUUM retention_counts.k;
VACUUM retention_counts.c;
:plain_k;
:plain_c;
SET enable_seqscan = off;
SELECT 'EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF) ' || retention_counts.counts('c', '2021-06-15 10:00Z', '2026-06-15') AS q \gexec
RESET enable_seqscan;
\echo counts on k, the first and the second time
SELECT 'EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF) ' || retention_counts.counts('k', '2021-06-15 10:00Z', '2026-06-15') AS q \gexec
SELECT 'EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF) ' || retention_counts.counts('k', '2021-06-15 10:00Z', '2026-06-15') AS q \gexec

\echo night
VACUUM ANALYZE retention_counts.k;
VACUUM ANALYZE retention_counts.c;
SELECT 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ' || retention_counts.counts('k', '2021-06-16 10:00Z', '2026-06-16') AS q \gexec
SELECT 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ' || retention_counts.counts('c', '2021-06-16 10:00Z', '2026-06-16') AS q \gexec

\echo prune
CREATE PROCEDURE retention_counts.sweep(t text, touch boolean) LANGUAGE plpgsql AS $$
DECLARE lo bigint := 0; hi bigint; prev bigint; n bigint; began timestamptz; touching interval := '0';
BEGIN
  LOOP
    EXECUTE format('SELECT id FROM retention_counts.%s WHERE id > $1 ORDER BY id OFFSET 14999 LIMIT 1', t) INTO hi USING lo;
    IF touch AND prev IS NOT NULL THEN
      began := clock_timestamp();
      EXECUTE format('SELECT count(*) FROM retention_counts.%s WHERE id > $1 AND id <= $2', t) INTO n USING prev, lo;
      touching := touching + (clock_timestamp() - began);
    END IF;
    EXECUTE format('DELETE FROM retention_counts.%s WHERE id > $1 AND ($2::bigint IS NULL OR id <= $2)'
      ' AND last_contact_at < $3 AND legal_hold IS NOT TRUE AND (retain_until IS NULL OR retain_until < $4)', t)
      USING lo, hi, '2021-06-15 10:00Z'::timestamptz, '2026-06-15'::date;
    COMMIT;
    EXIT WHEN hi IS NULL;
    prev := lo;
    lo := hi;
  END LOOP;
  RAISE NOTICE 'sweep of %, touch %: reading the previous ranges took %', t, touch, touching;
END $$;
SET synchronous_commit = off;
CALL retention_counts.copy();
VACUUM retention_counts.k;
CHECKPOINT;
\timing on
CALL retention_counts.sweep('k', false);
\timing off
SELECT 'EXPLAIN (ANALYZE, COSTS OFF) ' || retention_counts.counts('k', '2021-06-15 10:00Z', '2026-06-15') AS q \gexec
CALL retention_counts.copy();
VACUUM retention_counts.k;
CHECKPOINT;
\timing on
CALL retention_counts.sweep('k', true);
\timing off
SELECT 'EXPLAIN (ANALYZE, COSTS OFF) ' || retention_counts.counts('k', '2021-06-15 10:00Z', '2026-06-15') AS q \gexec
RESET synchronous_commit;

DROP SCHEMA retention_counts CASCADE;
