-- Who owns each namespace (the first segment of repository names), by record. Rights on a
-- namespace come from this row, never from an account that happens to bear its name: an
-- account created later must not inherit repositories it did not own.
--
-- A row appears when an account is created (owned by it) or when the first repository of a
-- namespace nobody owns is created (owner NULL: administrators alone may reach it). When its
-- account is deleted, a namespace that holds repositories stays, owned by nobody, and its name
-- stays reserved: only an administrator may create an account of that name, and only by
-- adopting the namespace explicitly. Same meaning as migrations/postgres/0011_namespaces.sql.
CREATE TABLE namespaces (
    name       TEXT    PRIMARY KEY,
    owner_id   INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX namespaces_by_owner ON namespaces (owner_id);

-- Every existing account owns the namespace of its name, as it did by name before.
INSERT INTO namespaces (name, owner_id, created_at) SELECT name, id, created_at FROM accounts;

-- Namespaces that hold repositories but no account's name (pushed by an administrator, pushed
-- with authentication off, or left by a deleted account) belong to nobody.
INSERT INTO namespaces (name, owner_id, created_at)
SELECT ns, NULL, MIN(created_at) FROM (
    SELECT CASE WHEN instr(name, '/') > 0 THEN substr(name, 1, instr(name, '/') - 1) ELSE name END AS ns,
           created_at
    FROM repositories
) WHERE true
GROUP BY ns
ON CONFLICT (name) DO NOTHING;
