-- A sync whose worker stopped or died is resumed by the next owner of its
-- request partition under the same SyncId (docs/sync.md): `resumed` counts
-- those takeovers. Each batch carries the fileName LB shows for it, so a
-- batch sent again can be found in LB's Recent Imports by name.
ALTER TABLE syncs ADD COLUMN resumed integer NOT NULL DEFAULT 0;
ALTER TABLE sync_batches ADD COLUMN file_name text;
