-- Which run of a sync may send a program's batches to LB (docs/sync.md, "One
-- sync of a subscriber at a time"). A run claims the program when it starts;
-- a batch row is written `sending` only while the run still holds the claim,
-- in the same statement, so a run that lost its program to another (a worker
-- evicted from the group while it was blocked) never sends another batch.
CREATE TABLE sync_claims (
    program_id   text        PRIMARY KEY,
    token        text        NOT NULL,
    sync_id      text        NOT NULL,
    claimed_utc  timestamptz NOT NULL
);
