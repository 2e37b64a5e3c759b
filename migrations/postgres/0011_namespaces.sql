-- Who owns each namespace, by record; see migrations/sqlite/0011_namespaces.sql.
CREATE TABLE namespaces (
    name       TEXT COLLATE "C" PRIMARY KEY,
    owner_id   BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX namespaces_by_owner ON namespaces (owner_id);

INSERT INTO namespaces (name, owner_id, created_at) SELECT name, id, created_at FROM accounts;

INSERT INTO namespaces (name, owner_id, created_at)
SELECT split_part(name, '/', 1), NULL, MIN(created_at) FROM repositories
GROUP BY split_part(name, '/', 1)
ON CONFLICT (name) DO NOTHING;
