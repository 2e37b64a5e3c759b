-- Tag history: every tag creation, move and delete, so a moved or deleted tag can be restored
-- within gc.tag_history_secs. While an entry is that young, garbage collection keeps the
-- manifest it names as old_digest (see registry/src/meta/gc_sql.rs); older entries are pruned
-- by the collector, which then reviews those manifests.
CREATE TABLE tag_history (
    id            INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    tag           TEXT    NOT NULL,
    -- What the tag pointed at before the change (NULL: the tag was created).
    old_digest    TEXT,
    -- What it points at after it (NULL: the tag was deleted).
    new_digest    TEXT,
    changed_at    INTEGER NOT NULL
);
CREATE INDEX tag_history_by_tag ON tag_history (repository_id, tag, id);
CREATE INDEX tag_history_by_old ON tag_history (repository_id, old_digest)
    WHERE old_digest IS NOT NULL;
CREATE INDEX tag_history_by_time ON tag_history (changed_at);
