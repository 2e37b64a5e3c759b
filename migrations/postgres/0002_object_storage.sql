-- Object storage beyond the local directory; see migrations/sqlite/0002_object_storage.sql.
ALTER TABLE blobs ADD COLUMN storage_key TEXT;
ALTER TABLE uploads ADD COLUMN staging TEXT;
ALTER TABLE uploads ADD COLUMN pending BYTEA NOT NULL DEFAULT '\x';
