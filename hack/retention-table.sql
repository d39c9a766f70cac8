-- retention-table.sql: the retention benchmark's table (1,000,000 rows, 30 %
-- due, 2 % under legal hold and 2 % under extension that would be due
-- otherwise; the same rows as loadBenchTable in
-- internal/retention/bench_test.go) as :schema.src, in a new schema :schema.
-- Included by retention-floor.sql and retention-counts.sql after
-- `\set schema <name>`; it drops the schema first.
DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
CREATE TABLE :"schema".src (id bigint PRIMARY KEY, last_contact_at timestamptz, legal_hold boolean,
  retain_until date, name text, bsn text, notes text, team text NOT NULL);
INSERT INTO :"schema".src
SELECT i,
  CASE WHEN i % 100 < 34 THEN '2026-06-15 10:00Z'::timestamptz - interval '6 years' - (i % 3650) * interval '1 day'
       ELSE '2026-06-15 10:00Z'::timestamptz - (i % 1500) * interval '1 day' END,
  CASE WHEN i % 100 IN (30, 31) THEN true WHEN i % 2 = 0 THEN false END,
  CASE WHEN i % 100 IN (32, 33) THEN DATE '2030-01-01' WHEN i % 100 < 30 AND i % 7 = 0 THEN DATE '2020-01-01' END,
  'Naam ' || i, lpad(i::text, 9, '0'), repeat('verslag ', 12), 'team-' || (i % 10)
FROM generate_series(1, 1000000) AS i;
