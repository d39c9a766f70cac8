-- The role the logbook ingests with: it may add lines, refusals and keys and
-- move chain heads, and read everything, but never change or delete a line.
-- Grant it to the login role of the logbook's DSN:
--   GRANT dossierguard_logbook_ingest TO logbook;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dossierguard_logbook_ingest') THEN
		CREATE ROLE dossierguard_logbook_ingest NOLOGIN;
	END IF;
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO dossierguard_logbook_ingest', current_schema());
END $$;
GRANT SELECT ON logbook_chains, logbook_records, logbook_keys, logbook_refusals, logbook_schema_migrations TO dossierguard_logbook_ingest;
GRANT INSERT ON logbook_records, logbook_keys, logbook_refusals TO dossierguard_logbook_ingest;
GRANT INSERT, UPDATE (head_seq, head_hash, head_type, checkpoint_seq, checkpoint_at, updated_at) ON logbook_chains TO dossierguard_logbook_ingest;
GRANT USAGE ON SEQUENCE logbook_refusals_id_seq TO dossierguard_logbook_ingest;
