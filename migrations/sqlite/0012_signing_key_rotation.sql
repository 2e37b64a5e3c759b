-- Key rotation (`berth admin key rotate`): signing_keys holds several keys, one row each
-- (slot: 1 for the key of 0003, then increasing). Each key signs from signs_from; once a newer
-- key replaces it, access tokens it signed are accepted until access_until and refresh tokens
-- until refresh_until, after which the row is deleted. NULL: not replaced. Times are Unix ms.
-- The key of 0003 signs from the beginning (0). Binaries before 0012 read slot 1 only: finish
-- a rolling upgrade before the first rotation. Same meaning as
-- migrations/postgres/0012_signing_key_rotation.sql.
ALTER TABLE signing_keys ADD COLUMN signs_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE signing_keys ADD COLUMN access_until INTEGER;
ALTER TABLE signing_keys ADD COLUMN refresh_until INTEGER;
