//! Storage accounting per repository and namespace.

use serde::Serialize;

use super::quota::QuotaStatus;
use super::{Registry, RegistryError, RegistryResult};
use crate::domain::RepoName;
use crate::meta::usage::{RepositoryUsage, UploadSessions, UsageTotal};

/// What a scope holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The repository or namespace (`None`: the whole registry).
    pub scope: Option<String>,
    /// Its total, each stored blob once (`blob_bytes + manifest_bytes` is what it occupies).
    pub total: UsageTotal,
    /// Each repository in it, in name order.
    pub repositories: Vec<RepositoryUsage>,
    /// The quotas that apply to it (all of them for the whole registry), with their usage.
    pub quotas: Vec<QuotaStatus>,
}

/// What the whole registry holds and is receiving, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSummary {
    /// The registry's total, each stored blob once.
    pub total: UsageTotal,
    /// The open upload sessions.
    pub uploads: UploadSessions,
}

impl Registry {
    /// Usage of a repository, a namespace (every repository under `scope/`) or, without a
    /// scope, the whole registry.
    #[tracing::instrument(skip(self))]
    pub async fn usage(&self, scope: Option<&RepoName>) -> RegistryResult<Usage> {
        let name = scope.map(RepoName::as_str);
        let repositories = self.meta.repository_usage(name).await?;
        if let (Some(scope), true) = (scope, repositories.is_empty()) {
            return Err(RegistryError::NameUnknown(scope.clone()));
        }
        let total = self.meta.usage_total(name).await?;
        let quotas = self.quota_status(scope).await?;
        Ok(Usage {
            scope: name.map(str::to_owned),
            total,
            repositories,
            quotas,
        })
    }

    /// What `scope` (a repository or namespace) holds in total, each blob once; zeros when
    /// it holds nothing.
    pub async fn usage_total(&self, scope: &RepoName) -> RegistryResult<UsageTotal> {
        Ok(self.meta.usage_total(Some(scope.as_str())).await?)
    }

    /// The whole registry's totals and open upload sessions: aggregate queries only
    /// (`usage(None)` also lists every repository).
    #[tracing::instrument(skip(self))]
    pub async fn usage_summary(&self) -> RegistryResult<UsageSummary> {
        Ok(UsageSummary {
            total: self.meta.usage_total(None).await?,
            uploads: self.meta.upload_sessions().await?,
        })
    }
}
