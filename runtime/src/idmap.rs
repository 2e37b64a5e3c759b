//! User namespace mappings (`--uidmap`, `--gidmap`): which host IDs the container's IDs are.
//!
//! A container with a mapping runs in a user namespace of its own, so that its root is an
//! unprivileged user on the host. Its image layers stay as pulled (shared with every other
//! container) and are seen through an idmapped mount; what the container writes lands in its
//! upper directory under host IDs, which `commit` maps back.

use serde::{Deserialize, Serialize};

/// One `CONTAINER:HOST:SIZE` range: container IDs `CONTAINER..CONTAINER+SIZE` are host IDs
/// `HOST..HOST+SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// The first ID inside the container.
    pub container: u32,
    /// The first ID on the host.
    pub host: u32,
    /// How many IDs.
    pub size: u32,
}

/// The user and group ID mappings of a container's user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// User IDs.
    pub uids: Vec<IdRange>,
    /// Group IDs.
    pub gids: Vec<IdRange>,
}

/// Why a mapping is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdMapError {
    /// Not `CONTAINER:HOST:SIZE`.
    #[error("invalid ID mapping {0:?}: expected CONTAINER_ID:HOST_ID:SIZE, e.g. 0:100000:65536")]
    Syntax(String),
    /// A range that runs past 2^32 or is empty.
    #[error("invalid ID mapping {0:?}: the size must be at least 1 and the range within 0..2^32")]
    Range(String),
    /// Two ranges that share container or host IDs.
    #[error("the {0} mappings overlap")]
    Overlap(&'static str),
    /// The kernel takes at most 340 ranges.
    #[error("too many {0} mappings (the kernel takes 340)")]
    TooMany(&'static str),
    /// Container root must be someone on the host.
    #[error("the {0} mappings must map the container's ID 0")]
    NoRoot(&'static str),
}

/// The kernel's limit on ranges per map (`/proc/PID/uid_map`).
const MAX_RANGES: usize = 340;

impl IdRange {
    /// Parses `CONTAINER:HOST:SIZE`.
    pub fn parse(s: &str) -> Result<IdRange, IdMapError> {
        let syntax = || IdMapError::Syntax(s.to_owned());
        let parts: Vec<u32> = s
            .split(':')
            .map(|p| p.parse::<u32>().map_err(|_| syntax()))
            .collect::<Result<_, _>>()?;
        let [container, host, size] = parts[..] else {
            return Err(syntax());
        };
        let fits = |start: u32| u64::from(start) + u64::from(size) <= 1 << 32;
        if size == 0 || !fits(container) || !fits(host) {
            return Err(IdMapError::Range(s.to_owned()));
        }
        Ok(IdRange {
            container,
            host,
            size,
        })
    }

    fn to_host(self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.container)?;
        (offset < self.size).then(|| self.host + offset)
    }

    fn to_container(self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.host)?;
        (offset < self.size).then(|| self.container + offset)
    }
}

fn check(ranges: &[IdRange], what: &'static str) -> Result<(), IdMapError> {
    if ranges.len() > MAX_RANGES {
        return Err(IdMapError::TooMany(what));
    }
    let overlaps = |key: fn(&IdRange) -> u32| {
        let mut spans: Vec<(u64, u64)> = ranges
            .iter()
            .map(|r| (u64::from(key(r)), u64::from(key(r)) + u64::from(r.size)))
            .collect();
        spans.sort_unstable();
        spans.windows(2).any(|w| w[1].0 < w[0].1)
    };
    if overlaps(|r| r.container) || overlaps(|r| r.host) {
        return Err(IdMapError::Overlap(what));
    }
    if !ranges.iter().any(|r| r.to_host(0).is_some()) {
        return Err(IdMapError::NoRoot(what));
    }
    Ok(())
}

impl IdMap {
    /// The mapping from `--uidmap` and `--gidmap` values; without `--gidmap` groups are mapped
    /// like users (as podman does). `None` when neither is given.
    pub fn from_flags(uidmap: &[String], gidmap: &[String]) -> Result<Option<IdMap>, IdMapError> {
        if uidmap.is_empty() && gidmap.is_empty() {
            return Ok(None);
        }
        let parse = |v: &[String]| {
            v.iter()
                .map(|s| IdRange::parse(s))
                .collect::<Result<Vec<_>, _>>()
        };
        let uids = parse(uidmap)?;
        let gids = if gidmap.is_empty() {
            uids.clone()
        } else {
            parse(gidmap)?
        };
        let uids = if uidmap.is_empty() {
            gids.clone()
        } else {
            uids
        };
        check(&uids, "user ID")?;
        check(&gids, "group ID")?;
        Ok(Some(IdMap { uids, gids }))
    }

    /// The host user ID of container user `id`.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        self.uids.iter().find_map(|r| r.to_host(id))
    }

    /// The host group ID of container group `id`.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        self.gids.iter().find_map(|r| r.to_host(id))
    }

    /// The container user ID of host user `id` (`None`: unmapped, seen as `nobody`).
    pub fn container_uid(&self, id: u32) -> Option<u32> {
        self.uids.iter().find_map(|r| r.to_container(id))
    }

    /// The container group ID of host group `id`.
    pub fn container_gid(&self, id: u32) -> Option<u32> {
        self.gids.iter().find_map(|r| r.to_container(id))
    }

    /// The text of `/proc/PID/uid_map` (`gid` false) or `gid_map` (`gid` true).
    pub fn proc_map(&self, gid: bool) -> String {
        let ranges = if gid { &self.gids } else { &self.uids };
        ranges
            .iter()
            .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
            .collect()
    }

    /// The spec's `linux.uidMappings` (`gid` false) or `gidMappings` (`gid` true).
    pub fn spec_mappings(&self, gid: bool) -> serde_json::Value {
        let ranges = if gid { &self.gids } else { &self.uids };
        ranges
            .iter()
            .map(|r| serde_json::json!({"containerID": r.container, "hostID": r.host, "size": r.size}))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(u: &[&str], g: &[&str]) -> Result<Option<IdMap>, IdMapError> {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        IdMap::from_flags(&own(u), &own(g))
    }

    #[test]
    fn ranges_parse_and_translate_both_ways() {
        let map = flags(&["0:100000:65536"], &[]).unwrap().expect("a map");
        assert_eq!(map.gids, map.uids, "groups default to the user mapping");
        assert_eq!(map.host_uid(0), Some(100_000));
        assert_eq!(map.host_uid(65_535), Some(165_535));
        assert_eq!(map.host_uid(65_536), None);
        assert_eq!(map.container_uid(100_033), Some(33));
        assert_eq!(map.container_uid(99_999), None);
        assert_eq!(map.proc_map(false), "0 100000 65536\n");
        assert_eq!(
            map.spec_mappings(true),
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(flags(&[], &[]).unwrap(), None);
    }

    #[test]
    fn several_ranges_and_separate_group_ranges() {
        let map = flags(&["0:200000:1", "1:300001:999"], &["0:400000:1000"])
            .unwrap()
            .expect("map");
        assert_eq!(map.host_uid(0), Some(200_000));
        assert_eq!(map.host_uid(5), Some(300_005));
        assert_eq!(map.host_gid(5), Some(400_005));
        assert_eq!(map.container_gid(400_999), Some(999));
        assert_eq!(map.proc_map(false), "0 200000 1\n1 300001 999\n");
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        assert!(matches!(
            flags(&["0:1000"], &[]),
            Err(IdMapError::Syntax(_))
        ));
        assert!(matches!(flags(&["a:b:c"], &[]), Err(IdMapError::Syntax(_))));
        assert!(matches!(
            flags(&["0:100000:0"], &[]),
            Err(IdMapError::Range(_))
        ));
        assert!(matches!(
            flags(&["0:4294967295:2"], &[]),
            Err(IdMapError::Range(_))
        ));
        assert_eq!(
            flags(&["0:100000:10", "5:200000:10"], &[]),
            Err(IdMapError::Overlap("user ID"))
        );
        assert_eq!(
            flags(&["0:100000:10", "10:100005:10"], &[]),
            Err(IdMapError::Overlap("user ID"))
        );
        assert_eq!(
            flags(&["1:100000:10"], &[]),
            Err(IdMapError::NoRoot("user ID"))
        );
        let many: Vec<String> = (0..341).map(|i| format!("{i}:{}:1", 100_000 + i)).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(flags(&many, &[]), Err(IdMapError::TooMany("user ID")));
        let e = flags(&["x"], &[]).unwrap_err().to_string();
        assert!(e.contains("CONTAINER_ID:HOST_ID:SIZE"), "{e}");
    }
}
