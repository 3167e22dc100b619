-- Programs registry, API keys and the sync ledger.

CREATE TABLE programs (
    program_id            text PRIMARY KEY,
    name                  text NOT NULL DEFAULT '',
    lb_base_url           text,
    lb_api_key            text,          -- a secret: never returned, never logged
    creation_path         text NOT NULL DEFAULT 'LH',
    send_success_email_to text,
    send_failure_email_to text,
    created_utc           timestamptz NOT NULL DEFAULT now(),
    updated_utc           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    user_id     text PRIMARY KEY,
    secret_hash bytea NOT NULL,          -- SHA-256 of a 256-bit random secret; the secret is not kept
    is_system   boolean NOT NULL DEFAULT false,
    grants      jsonb NOT NULL DEFAULT '{}'::jsonb,  -- {"ProgramId": "read"|"write"}
    created_utc timestamptz NOT NULL DEFAULT now(),
    revoked_utc timestamptz
);

CREATE TABLE syncs (
    sync_id      text PRIMARY KEY,
    program_id   text NOT NULL,
    started_utc  timestamptz NOT NULL,
    finished_utc timestamptz,
    status       text NOT NULL,          -- running | ok | failed
    http_status  integer,
    result       jsonb
);
CREATE INDEX syncs_by_program ON syncs (program_id, started_utc DESC);

CREATE TABLE sync_batches (
    sync_id              text NOT NULL REFERENCES syncs (sync_id) ON DELETE CASCADE,
    seq                  integer NOT NULL,
    publisher_program_id text NOT NULL,
    import_process_id    bigint NOT NULL,
    row_count            integer NOT NULL,
    first_offset         bigint,
    last_offset          bigint,
    status               text NOT NULL,  -- accepted | rejected | error
    lb_status            integer,
    lb_message           text,
    batch_id             text,
    batch_url            text,
    created_utc          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sync_id, seq)
);
