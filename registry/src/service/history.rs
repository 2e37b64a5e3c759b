//! Tag history and restores: what a tag pointed at, and putting it back.

use serde::Serialize;

use super::{Registry, RegistryError, RegistryResult};
use crate::domain::{Digest, RepoName, Tag};
use crate::meta::history::{HistoryQuery, Restored};
use crate::meta::now_ms;

/// One change of a tag, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagEvent {
    /// The entry's id (pass it as `before` for the next page).
    pub id: i64,
    /// The tag.
    pub tag: String,
    /// `create`, `move` or `delete`.
    pub action: &'static str,
    /// What the tag pointed at before.
    pub old_digest: Option<String>,
    /// What it points at after.
    pub new_digest: Option<String>,
    /// When, in Unix milliseconds.
    pub changed_at: i64,
    /// Until when the tag can be restored to `old_digest`, in Unix milliseconds.
    pub restorable_until: i64,
}

/// The outcome of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagRestored {
    /// The tag.
    pub tag: String,
    /// What it points at now.
    pub digest: String,
    /// What it pointed at before the restore (`None`: it did not exist).
    pub previous: Option<String>,
    /// Whether anything changed (false: it already pointed there).
    pub changed: bool,
}

impl Registry {
    /// Changes of `repo`'s tags within the history window, newest first: all tags, or one.
    #[tracing::instrument(skip(self))]
    pub async fn tag_history(
        &self,
        repo: &RepoName,
        tag: Option<&Tag>,
        before: Option<i64>,
        limit: u32,
    ) -> RegistryResult<Vec<TagEvent>> {
        let window = millis(self.limits.tag_history);
        let query = HistoryQuery {
            tag,
            since_ms: now_ms().saturating_sub(window),
            before_id: before,
            limit: limit.clamp(1, 1000),
        };
        let Some(changes) = self.meta.tag_history(repo, query).await? else {
            return Err(RegistryError::NameUnknown(repo.clone()));
        };
        Ok(changes
            .into_iter()
            .map(|c| TagEvent {
                id: c.id,
                action: match (&c.old_digest, &c.new_digest) {
                    (None, _) => "create",
                    (Some(_), Some(_)) => "move",
                    (Some(_), None) => "delete",
                },
                tag: c.tag,
                old_digest: c.old_digest.as_ref().map(Digest::to_string),
                new_digest: c.new_digest.as_ref().map(Digest::to_string),
                changed_at: c.changed_at,
                restorable_until: c.changed_at.saturating_add(window),
            })
            .collect())
    }

    /// Points `tag` back at `digest`, or without one at the newest other manifest in its
    /// history, if the change is within the history window and the manifest is still stored.
    #[tracing::instrument(skip(self))]
    pub async fn restore_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: Option<&Digest>,
        by: &crate::meta::events::Origin,
    ) -> RegistryResult<TagRestored> {
        if let Some(rule) = self.immutable_in(repo).await?.rule_for(repo, tag)
            && self
                .meta
                .manifest(repo, &crate::domain::Reference::Tag(tag.clone()), false)
                .await?
                .is_some()
        {
            return Err(RegistryError::Denied(format!(
                "{repo}:{tag} cannot be moved ({rule})"
            )));
        }
        let since = now_ms().saturating_sub(millis(self.limits.tag_history));
        let days = self.limits.tag_history.as_secs_f64() / 86_400.0;
        let mut event = self.event(
            crate::meta::events::Action::TagRestore,
            by,
            repo,
            Some(crate::meta::events::HookEvent::Push),
        );
        event.tag = Some(tag.to_string());
        match self
            .meta
            .restore_tag(repo, tag, digest, since, &event)
            .await?
        {
            Restored::Moved { digest, previous } => Ok(TagRestored {
                tag: tag.to_string(),
                digest: digest.to_string(),
                previous: previous.as_ref().map(Digest::to_string),
                changed: true,
            }),
            Restored::Unchanged(digest) => Ok(TagRestored {
                tag: tag.to_string(),
                digest: digest.to_string(),
                previous: Some(digest.to_string()),
                changed: false,
            }),
            Restored::NotInHistory => Err(RegistryError::RestoreImpossible(match digest {
                Some(d) => format!(
                    "{repo}:{tag} did not point at {d} within the tag history window ({days:.1} days)"
                ),
                None => format!(
                    "{repo}:{tag} has no earlier manifest within the tag history window ({days:.1} days)"
                ),
            })),
            Restored::ManifestGone(d) => Err(RegistryError::RestoreImpossible(format!(
                "{repo}@{d} was deleted; the tag cannot point at it again"
            ))),
        }
    }

    /// For each of `events` (changes of `repo`'s tags), the manifest a restore could point its
    /// tag back at now, if any: what the tag pointed at before the change (or, for a
    /// creation, after it), while the change is within the history window, the manifest is
    /// still stored and the tag points elsewhere. [`Registry::restore_tag`] decides again
    /// when asked; this is what a page offers.
    #[tracing::instrument(skip(self, events))]
    pub async fn restore_choices(
        &self,
        repo: &RepoName,
        events: &[TagEvent],
    ) -> RegistryResult<Vec<Option<Digest>>> {
        use std::collections::HashMap;

        use crate::domain::Reference;
        let now = now_ms();
        let mut current: HashMap<String, Option<Digest>> = HashMap::new();
        let mut stored: HashMap<Digest, bool> = HashMap::new();
        let mut choices = Vec::with_capacity(events.len());
        for e in events {
            let candidate = e.old_digest.as_ref().or(e.new_digest.as_ref());
            let (Some(candidate), true) = (candidate, e.restorable_until > now) else {
                choices.push(None);
                continue;
            };
            let Ok(candidate) = Digest::parse(candidate) else {
                choices.push(None);
                continue;
            };
            if !current.contains_key(&e.tag) {
                let now_at = match Tag::parse(&e.tag) {
                    Ok(tag) => self
                        .meta
                        .manifest(repo, &Reference::Tag(tag), false)
                        .await?
                        .map(|m| m.digest),
                    Err(_) => None,
                };
                current.insert(e.tag.clone(), now_at);
            }
            if current.get(&e.tag).and_then(Option::as_ref) == Some(&candidate) {
                choices.push(None);
                continue;
            }
            let is_stored = match stored.get(&candidate) {
                Some(s) => *s,
                None => {
                    let s = self
                        .meta
                        .manifest(repo, &Reference::Digest(candidate.clone()), false)
                        .await?
                        .is_some();
                    stored.insert(candidate.clone(), s);
                    s
                }
            };
            choices.push(is_stored.then_some(candidate));
        }
        Ok(choices)
    }
}

/// A duration in stored milliseconds.
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
