-- retention-floor.sql: the server-side floor of the retention sweeper's
-- batch statement against one plain DELETE, without a client in between
-- (docs/benchmarks-retention.md, "Where the time goes now").
--
--   hack/postgres.sh start
--   psql -X -h 127.0.0.1 -p "${PGPORT:-55432}" -U postgres dossierguard_test -f hack/retention-floor.sql
--
-- It builds the benchmark's table (1,000,000 rows, 30 % due) in the schema
-- retention_floor, then times on fresh copies, in the server:
--   keyset  the sweeper's batch statement before key ranges: the next 5,000
--           due rows in id order (a walk of the primary key that reads every
--           row), deleted by ctid, one transaction per batch, the changed ids
--           returned as text[];
--   range   the sweeper's batch statement: the next k keys found by a walk
--           of the index alone, the due rows among them deleted by one
--           DELETE of that key range, one transaction per batch, the changed
--           ids returned as text[]; k is 5,000 for the first batch and then
--           sized as the sweeper sizes it (rangeKeys in
--           internal/retention/sweep.go: about 90 % of 5,000 due rows at the
--           density the last batch found, 5,000 to 40,000 keys); then the
--           plan of one batch of 15,000 keys;
--   blocks  a DELETE per range of 350 heap blocks (physical order), ids
--           returned as text[];
--   plain   one plain DELETE of the same predicate.
-- The schema is dropped at the end.
\set ON_ERROR_STOP on
\timing off
\set schema retention_floor
\ir retention-table.sql

CREATE PROCEDURE retention_floor.copy() LANGUAGE sql AS $$
  DROP TABLE IF EXISTS retention_floor.t;
  CREATE TABLE retention_floor.t AS SELECT * FROM retention_floor.src;
  ALTER TABLE retention_floor.t ADD PRIMARY KEY (id);
$$;

CALL retention_floor.copy();
VACUUM ANALYZE retention_floor.t;
CHECKPOINT;
\echo keyset
\timing on
DO $$
DECLARE after bigint := 0; sel bigint; lst bigint; arr text[]; total bigint := 0;
BEGIN
  LOOP
    WITH b AS (SELECT ctid AS r, id AS k FROM ONLY retention_floor.t
               WHERE last_contact_at < '2021-06-15 10:00Z' AND legal_hold IS NOT TRUE
                 AND (retain_until IS NULL OR retain_until < '2026-06-15 10:00Z') AND id > after
               ORDER BY id LIMIT 5000),
         d AS (DELETE FROM ONLY retention_floor.t AS x WHERE x.ctid = ANY (ARRAY(SELECT r FROM b))
                 AND last_contact_at < '2021-06-15 10:00Z' AND legal_hold IS NOT TRUE
                 AND (retain_until IS NULL OR retain_until < '2026-06-15 10:00Z') RETURNING x.id)
    SELECT (SELECT count(*) FROM b), (SELECT k FROM b ORDER BY k DESC LIMIT 1), (SELECT array_agg(id::text) FROM d)
      INTO sel, lst, arr;
    total := total + coalesce(cardinality(arr), 0);
    COMMIT;
    EXIT WHEN sel < 5000;
    after := lst;
  END LOOP;
  RAISE NOTICE 'keyset: % rows', total;
END $$;
\timing off

CALL retention_floor.copy();
VACUUM ANALYZE retention_floor.t;
CHECKPOINT;
\echo range
\timing on
DO $$
DECLARE after bigint := 0; isfull boolean; upto bigint; arr text[]; total bigint := 0; batches int := 0;
  keys bigint := 5000; changed bigint;
BEGIN
  LOOP
    WITH r AS MATERIALIZED ((SELECT id AS u, true AS f FROM retention_floor.t WHERE id > after ORDER BY id OFFSET keys - 1 LIMIT 1)
                            UNION ALL (SELECT id, false FROM retention_floor.t WHERE id > after ORDER BY id DESC LIMIT 1) LIMIT 1),
         d AS (DELETE FROM retention_floor.t AS x WHERE x.id > after AND x.id <= (SELECT u FROM r)
                 AND last_contact_at < '2021-06-15 10:00Z' AND legal_hold IS NOT TRUE
                 AND (retain_until IS NULL OR retain_until < '2026-06-15 10:00Z') RETURNING x.id)
    SELECT coalesce((SELECT f FROM r), false), (SELECT u FROM r), (SELECT array_agg(id::text) FROM d) INTO isfull, upto, arr;
    changed := coalesce(cardinality(arr), 0);
    total := total + changed;
    COMMIT;
    EXIT WHEN upto IS NULL;
    batches := batches + 1;
    EXIT WHEN NOT isfull;
    after := upto;
    keys := CASE WHEN changed = 0 THEN least(keys * 4, 40000)
                 ELSE greatest(5000, least(keys * 5000 * 9 / (changed * 10), 40000)) END;
  END LOOP;
  RAISE NOTICE 'range: % rows in % batches', total, batches;
END $$;
\timing off
CALL retention_floor.copy();
VACUUM ANALYZE retention_floor.t;
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH r AS MATERIALIZED ((SELECT id AS u, true AS f FROM retention_floor.t WHERE id > 500000 ORDER BY id OFFSET 15000 - 1 LIMIT 1)
                        UNION ALL (SELECT id, false FROM retention_floor.t WHERE id > 500000 ORDER BY id DESC LIMIT 1) LIMIT 1),
     d AS (DELETE FROM retention_floor.t AS x WHERE x.id > 500000 AND x.id <= (SELECT u FROM r)
             AND last_contact_at < '2021-06-15 10:00Z' AND legal_hold IS NOT TRUE
             AND (retain_until IS NULL OR retain_until < '2026-06-15 10:00Z') RETURNING x.id)
SELECT coalesce((SELECT f FROM r), false), (SELECT u FROM r), (SELECT array_agg(id::text) FROM d);
ROLLBACK;

CALL retention_floor.copy();
VACUUM ANALYZE retention_floor.t;
CHECKPOINT;
\echo blocks
\timing on
DO $$
DECLARE lo bigint := 0; arr text[]; total bigint := 0; pages bigint;
BEGIN
  SELECT relpages INTO pages FROM pg_class WHERE oid = 'retention_floor.t'::regclass;
  WHILE lo <= pages LOOP
    WITH d AS (DELETE FROM ONLY retention_floor.t
               WHERE ctid >= format('(%s,0)', lo)::tid AND ctid < format('(%s,0)', lo + 350)::tid
                 AND last_contact_at < '2021-06-15 10:00Z' AND legal_hold IS NOT TRUE
                 AND (retain_until IS NULL OR retain_until < '2026-06-15 10:00Z') RETURNING id)
    SELECT array_agg(id::text) FROM d INTO arr;
    total := total + coalesce(cardinality(arr), 0);
    COMMIT;
    lo := lo + 350;
  END LOOP;
  RAISE NOTICE 'blocks: % rows', total;
END $$;
\timing off

CALL retention_floor.copy();
VACUUM ANALYZE retention_floor.t;
CHECKPOINT;
\echo plain
\timing on
DELETE FROM retention_floor.t WHERE last_contact_at < '2021-06-15 10:00Z' AND legal_hold IS NOT TRUE
  AND (retain_until IS NULL OR retain_until < '2026-06-15 10:00Z');
\timing off
DROP SCHEMA retention_floor CASCADE;
