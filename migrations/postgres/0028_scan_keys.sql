-- Keys that let a re-match skip reading what has not changed. Same meaning as
-- migrations/sqlite/0028_scan_keys.sql.
-- inventory_key: the SHA-256 of the stored inventory (operating system and packages), set
-- when the inventory is stored. Manifests of one catch-up round with the same key are matched
-- once (1,000 images of one base have one inventory). NULL for inventories stored before
-- this migration: those are read and matched each on their own.
ALTER TABLE scans ADD COLUMN inventory_key TEXT;
-- targets_key: the SHA-256 of the manifest's scan_targets, set whenever they are written. A
-- re-match whose targets have the same key leaves them alone without reading them. NULL
-- until the next match writes them.
ALTER TABLE scans ADD COLUMN targets_key TEXT;
