//! Who the container's process runs as: `-u`/the image's `User` (`name`, `uid`, `name:group`,
//! `uid:gid`) resolved against the image's own `/etc/passwd` and `/etc/group`, as Docker and
//! runc do. The files are read through the container's root (never following a symlink out of
//! it); parsing is pure and tested without a root filesystem.

use std::io::Read;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups: every group of `/etc/group` that lists the user's name (the
    /// primary group when none does).
    pub additional_gids: Vec<u32>,
    /// The home directory (`HOME` unless the environment sets it).
    pub home: String,
}

/// Why a user cannot be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    /// A name that the image's passwd file does not have.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A group name that the image's group file does not have.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// Empty parts, or more than one `:`.
    #[error("invalid user {0:?} (expected user[:group], names or numeric ids)")]
    Invalid(String),
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

/// `(name, gid, members)` of each line of a group file.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (empty means root) against the text of the image's passwd and group
/// files (either may be missing, as in `scratch` images; then only numeric ids work).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<User, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) if !u.is_empty() && !g.is_empty() && !g.contains(':') => (u, Some(g)),
        Some(_) => return Err(UserError::Invalid(spec.to_owned())),
        None => (if spec.is_empty() { "0" } else { spec }, None),
    };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|e| e.name == user_part)
                .ok_or_else(|| UserError::NoUser(user_part.to_owned()))?,
        ),
    };
    // A numeric uid missing from passwd runs with gid 0 and home `/` (runc's rule).
    let (uid, mut gid, name, home) = match (&entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), e.home.to_owned()),
        (None, Ok(uid)) => (uid, 0, None, "/".to_owned()),
        (None, Err(_)) => return Err(UserError::NoUser(user_part.to_owned())),
    };
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(group)
                .find(|(n, _, _)| *n == g)
                .map(|(_, gid, _)| gid)
                .ok_or_else(|| UserError::NoGroup(g.to_owned()))?,
        };
    }
    let mut additional_gids: Vec<u32> = match name {
        Some(name) => group_entries(group)
            .filter(|(_, _, members)| members.contains(&name))
            .map(|(_, gid, _)| gid)
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.dedup();
    if additional_gids.is_empty() {
        // A user in no group of the file keeps its primary group as the supplementary list
        // (runc's default, so `id` prints the same under docker and berth).
        additional_gids.push(gid);
    }
    let home = if home.is_empty() {
        "/".to_owned()
    } else {
        home
    };
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Reads a small file of the container's root filesystem, resolving symlinks inside `root`
/// (an image whose `/etc/passwd` points at `/../../etc/shadow` reads its own file or nothing).
/// A missing file reads as empty.
pub fn read_in_root(root: &pathrs::Root, path: &str) -> std::io::Result<String> {
    let mut file = match root.open_subpath(path, pathrs::flags::OpenFlags::O_RDONLY) {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                pathrs::error::ErrorKind::OsError(Some(libc::ENOENT | libc::ENOTDIR))
            ) =>
        {
            return Ok(String::new());
        }
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let mut text = String::new();
    // Bounded: an image cannot make us read a huge file.
    (&mut file)
        .take(4 << 20)
        .read_to_string(&mut text)
        .map(|_| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nstaff:x:50:app\n";

    #[test]
    fn names_and_ids_resolve_like_docker() {
        let root = resolve("", PASSWD, GROUP).expect("root");
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        assert_eq!(root.additional_gids, vec![0]);
        let app = resolve("app", PASSWD, GROUP).expect("app");
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.additional_gids, vec![10, 50]);
        assert_eq!(app.home, "/home/app");
        let by_id = resolve("1000:staff", PASSWD, GROUP).expect("id");
        assert_eq!((by_id.uid, by_id.gid), (1000, 50));
        let unknown = resolve("4242", PASSWD, GROUP).expect("numeric");
        assert_eq!(
            (unknown.uid, unknown.gid, unknown.home.as_str()),
            (4242, 0, "/")
        );
        assert_eq!(resolve("4242:7", "", "").expect("scratch").gid, 7);
    }

    #[test]
    fn unknown_names_and_malformed_specs_are_refused() {
        assert_eq!(
            resolve("nobody", PASSWD, GROUP),
            Err(UserError::NoUser("nobody".into()))
        );
        assert_eq!(
            resolve("app:nogroup", PASSWD, GROUP),
            Err(UserError::NoGroup("nogroup".into()))
        );
        for bad in ["app:", ":1", "a:b:c"] {
            assert!(matches!(
                resolve(bad, PASSWD, GROUP),
                Err(UserError::Invalid(_))
            ));
        }
    }
}
