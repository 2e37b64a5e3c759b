-- Object storage beyond the local directory (S3, GCS, Azure).
--
-- blobs.storage_key: where a blob's bytes live when not at the canonical key
--   blobs/<algorithm>/<xx>/<hex> (a blob completed from a multipart upload stays where the
--   upload assembled it, since cloud stores cannot rename large objects).
-- uploads.staging: the multipart upload of a session (id and part ETags, JSON), if any.
-- uploads.pending: bytes received but not yet sent as a part (less than one part).
ALTER TABLE blobs ADD COLUMN storage_key TEXT;
ALTER TABLE uploads ADD COLUMN staging TEXT;
ALTER TABLE uploads ADD COLUMN pending BLOB NOT NULL DEFAULT x'';
