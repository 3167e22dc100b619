-- A parked event dropped by staff (DELETE .../eventSubs/{pub}/parked/{EventId})
-- is never delivered: the ledger keeps who it was and why it was parked
-- (docs/sync.md, "When one event cannot be rendered").
CREATE TABLE parked_drops (
    program_id            text        NOT NULL,
    publisher_program_id  text        NOT NULL,
    event_id              text        NOT NULL,
    event_offset          bigint      NOT NULL,
    entry_key             text,
    reason                text        NOT NULL,
    parked_utc            timestamptz NOT NULL,
    dropped_utc           timestamptz NOT NULL,
    dropped_by            text
);
CREATE INDEX parked_drops_by_program ON parked_drops (program_id, dropped_utc DESC);
