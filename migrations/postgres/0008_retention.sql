-- See migrations/sqlite/0008_retention.sql.
ALTER TABLE tags ADD COLUMN pulled_at BIGINT;
