-- The chains the logbook holds, one row per chain: its origin (the genesis
-- line) and its head, the last line stored. Ingest locks the row while it
-- appends, so the lines of one chain are checked and stored one at a time.
CREATE TABLE logbook_chains (
	chain_id       text PRIMARY KEY CHECK (chain_id ~ '^[0-9a-f]{64}$'),
	store          text NOT NULL,
	pod            text NOT NULL,
	incarnation    text NOT NULL,
	started_at     timestamptz NOT NULL,
	head_seq       bigint NOT NULL CHECK (head_seq >= 1),
	head_hash      text NOT NULL,
	head_type      text NOT NULL,
	checkpoint_seq bigint NOT NULL DEFAULT 0,
	checkpoint_at  timestamptz,
	updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logbook_chains_store ON logbook_chains (store, started_at);

-- Every line of every chain, exactly as the proxy wrote it (line), with the
-- members the queries select on. (chain_id, seq) is the key: a redelivered
-- line is recognised and not stored twice.
CREATE TABLE logbook_records (
	chain_id        text NOT NULL REFERENCES logbook_chains,
	seq             bigint NOT NULL CHECK (seq >= 1),
	type            text NOT NULL CHECK (type IN ('genesis', 'event', 'checkpoint')),
	hash            text NOT NULL,
	prev            text NOT NULL,
	time            timestamptz NOT NULL,
	store           text NOT NULL,
	data_subject_id text,
	line            text NOT NULL,
	received_at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (chain_id, seq)
);
-- audit query: the accesses of one dossier of one store, by time.
CREATE INDEX logbook_records_subject ON logbook_records (store, data_subject_id, time) WHERE data_subject_id IS NOT NULL;
-- audit verify --since/--until and retention: the lines of a store by time.
CREATE INDEX logbook_records_time ON logbook_records (store, time);

-- Lines are never changed once stored, whatever the role.
CREATE FUNCTION logbook_records_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'logbook records are append-only: UPDATE is not allowed';
END $$;
CREATE TRIGGER logbook_records_no_update BEFORE UPDATE ON logbook_records
	FOR EACH ROW EXECUTE FUNCTION logbook_records_immutable();

-- The checkpoint public keys of every store, kept after the store is gone so
-- that its chains can still be verified.
CREATE TABLE logbook_keys (
	store      text NOT NULL,
	key_id     text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
	public_key text NOT NULL,
	added_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (store, key_id)
);

-- Lines the logbook refused: a gap, a fork, a substitution, a bad signature
-- or a malformed line. They are never stored as records.
CREATE TABLE logbook_refusals (
	id          bigserial PRIMARY KEY,
	chain_id    text NOT NULL,
	store       text NOT NULL,
	seq         bigint NOT NULL,
	reason      text NOT NULL,
	detail      text NOT NULL,
	hash        text NOT NULL,
	line        text NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logbook_refusals_chain ON logbook_refusals (chain_id, seq);
CREATE INDEX logbook_refusals_store ON logbook_refusals (store, received_at);
