-- What retention removed: per chain, a contiguous range of seqs starting at
-- 2 (the genesis line is kept), with the hash of its last line, signed by
-- the logbook. Verification of the rest of the chain starts after it.
CREATE TABLE logbook_removals (
	id         bigserial PRIMARY KEY,
	chain_id   text NOT NULL REFERENCES logbook_chains,
	from_seq   bigint NOT NULL CHECK (from_seq >= 2),
	to_seq     bigint NOT NULL,
	count      bigint NOT NULL,
	last_hash  text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$'),
	cutoff     timestamptz NOT NULL,
	removed_at timestamptz NOT NULL,
	key_id     text NOT NULL,
	sig        text NOT NULL,
	CHECK (to_seq >= from_seq AND count = to_seq - from_seq + 1),
	UNIQUE (chain_id, from_seq)
);

-- The public keys the logbook signs removal records with, kept for good.
CREATE TABLE logbook_signers (
	key_id     text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
	public_key text NOT NULL,
	added_at   timestamptz NOT NULL DEFAULT now()
);

-- The role retention runs with: it may remove lines and record what it
-- removed, and nothing else. Grant it to the login role of the retention
-- run only:
--   GRANT dossierguard_logbook_retention TO logbook_retention;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dossierguard_logbook_retention') THEN
		CREATE ROLE dossierguard_logbook_retention NOLOGIN;
	END IF;
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO dossierguard_logbook_retention', current_schema());
END $$;
GRANT SELECT ON logbook_chains, logbook_records, logbook_keys, logbook_refusals, logbook_removals, logbook_signers, logbook_schema_migrations TO dossierguard_logbook_retention;
GRANT DELETE ON logbook_records TO dossierguard_logbook_retention;
GRANT INSERT ON logbook_removals, logbook_signers TO dossierguard_logbook_retention;
GRANT USAGE ON SEQUENCE logbook_removals_id_seq TO dossierguard_logbook_retention;
GRANT SELECT ON logbook_removals, logbook_signers TO dossierguard_logbook_ingest;
