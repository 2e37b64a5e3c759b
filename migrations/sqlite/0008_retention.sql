-- Retention policies keep tags pulled recently: when a tag (or the manifest it points at)
-- was last pulled, recorded in batches by each server (so within a flush interval).
ALTER TABLE tags ADD COLUMN pulled_at INTEGER;
