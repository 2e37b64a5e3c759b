//! Paths inside an image: normalised once, and the subtree operations whiteouts need.

use std::collections::BTreeMap;

/// An absolute path without `.` or empty components; `..` and over-long paths are refused.
/// Non-UTF-8 bytes are replaced (U+FFFD), the same way for every layer.
pub(crate) fn normalise(raw: &[u8], max_len: usize) -> Result<String, String> {
    if raw.len() > max_len {
        return Err(format!(
            "not read: a path of {} bytes (at most {max_len})",
            raw.len()
        ));
    }
    let text = String::from_utf8_lossy(raw);
    let mut path = String::with_capacity(text.len() + 1);
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("not read: the path has a `..` component".into()),
            part => {
                path.push('/');
                path.push_str(part);
            }
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// `/a/b/c` into (`/a/b`, `c`); the root's children have the parent `""`.
pub(crate) fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

pub(crate) fn join(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// Removes every entry strictly under the directory `dir` (`""` or `/` is the root): the
/// keys with the prefix `dir/` sit together in a sorted map.
pub(crate) fn remove_under<V>(map: &mut BTreeMap<String, V>, dir: &str) {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let doomed: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for key in doomed {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_escapes_refused() {
        assert_eq!(
            normalise(b"./etc/os-release", 4096).as_deref(),
            Ok("/etc/os-release")
        );
        assert_eq!(
            normalise(b"/var//lib/./dpkg/", 4096).as_deref(),
            Ok("/var/lib/dpkg")
        );
        assert_eq!(normalise(b"./", 4096).as_deref(), Ok("/"));
        assert!(normalise(b"../etc/passwd", 4096).is_err());
        assert!(normalise(b"a/../../b", 4096).is_err());
        assert!(normalise(&[b'a'; 5000], 4096).is_err());
        assert_eq!(split("/etc/os-release"), ("/etc", "os-release"));
        assert_eq!(split("/.wh..wh..opq"), ("", ".wh..wh..opq"));
    }

    #[test]
    fn subtree_removal_spares_siblings() {
        let mut map = BTreeMap::new();
        for key in ["/a/b", "/a/b/c", "/a/b/c/d", "/a/bc", "/a/b-"] {
            map.insert(key.to_owned(), ());
        }
        remove_under(&mut map, "/a/b");
        let left: Vec<_> = map.keys().map(String::as_str).collect();
        assert_eq!(left, ["/a/b", "/a/b-", "/a/bc"]);
        remove_under(&mut map, "");
        assert!(map.is_empty());
    }
}
