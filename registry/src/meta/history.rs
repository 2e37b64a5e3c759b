//! Tag history: every creation, move and delete of a tag is recorded in the same transaction
//! as the change, so a moved or deleted tag can be put back within the history window (what
//! Quay calls its time machine). Garbage collection keeps a manifest while a young enough
//! entry says a tag left it (see [`super::gc::GcPolicy::history_since_ms`]).

use async_trait::async_trait;

use super::MetaResult;
use crate::domain::{Digest, RepoName, Tag};

/// One recorded change of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// The entry's id: later changes have larger ids (a pagination cursor).
    pub id: i64,
    /// The tag.
    pub tag: String,
    /// What it pointed at before (`None`: the change created it).
    pub old_digest: Option<Digest>,
    /// What it points at after (`None`: the change deleted it).
    pub new_digest: Option<Digest>,
    /// When, in Unix milliseconds.
    pub changed_at: i64,
}

/// A page of a repository's tag history, newest first.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery<'a> {
    /// Only this tag's changes.
    pub tag: Option<&'a Tag>,
    /// Only changes made at or after this time (the history window).
    pub since_ms: i64,
    /// Only entries older than this id (the previous page's last id).
    pub before_id: Option<i64>,
    /// At most this many entries.
    pub limit: u32,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The tag points at the manifest again; `previous` is what it pointed at before.
    Moved {
        /// The manifest the tag now points at.
        digest: Digest,
        /// What it pointed at before the restore (`None`: it did not exist).
        previous: Option<Digest>,
    },
    /// The tag already pointed there.
    Unchanged(Digest),
    /// The history window holds nothing to restore the tag to (or not that digest).
    NotInHistory,
    /// The manifest was deleted (by digest) since; it cannot be restored.
    ManifestGone(Digest),
}

/// The tag history queries.
#[async_trait]
pub trait HistoryStore {
    /// A page of `repo`'s tag history, newest first; `None` when the repository does not
    /// exist.
    async fn tag_history(
        &self,
        repo: &RepoName,
        query: HistoryQuery<'_>,
    ) -> MetaResult<Option<Vec<TagChange>>>;

    /// Points `tag` back at `digest` (or, without one, at the newest manifest in its history
    /// other than the current one), provided the history since `since_ms` shows the tag
    /// pointed there and the manifest is still stored. The restore is itself recorded, in
    /// the tag's history and (as `event`, with the digest) in the audit log.
    async fn restore_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: Option<&Digest>,
        since_ms: i64,
        event: &super::events::Event,
    ) -> MetaResult<Restored>;
}
