//! The image's operating system, from `/etc/os-release` or `/usr/lib/os-release`.
//!
//! os-release(5): newline-separated `KEY=value` assignments in a subset of shell syntax;
//! values may be enclosed in double or single quotes, and within double quotes (and unquoted)
//! `\` escapes `"`, `\`, `$` and `` ` ``. Lines starting with `#` are comments. The file in
//! `/etc` takes precedence; `/usr/lib/os-release` is the fallback.

use std::io::Read;

/// Where the walker looks, in order of precedence.
pub const PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The largest os-release file read (real ones are under 1 KiB).
pub const MAX_BYTES: u64 = 64 * 1024;

/// The fields of os-release that name a distribution and its release.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OsRelease {
    /// `ID`: the distribution, lower case (`debian`, `alpine`, `rocky`).
    pub id: String,
    /// `VERSION_ID`: its release (`12`, `3.20.3`, `9.4`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    /// `PRETTY_NAME`, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// `ID_LIKE`: distributions this one derives from, closest first (`rhel centos fedora`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
}

/// Reads and parses an os-release file, bounded by [`MAX_BYTES`].
pub fn read(contents: &mut dyn Read) -> Result<OsRelease, String> {
    let bytes =
        super::read_bounded(contents, MAX_BYTES, "os-release").map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8".to_owned())?;
    parse(text)
}

/// Parses os-release text. `ID` defaults to `linux`, as os-release(5) says.
pub fn parse(text: &str) -> Result<OsRelease, String> {
    let mut os = OsRelease {
        id: "linux".into(),
        ..OsRelease::default()
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            return Err(format!("line {} is not an assignment", number + 1));
        };
        let value = unquote(raw).ok_or_else(|| format!("line {}: bad quoting", number + 1))?;
        match key {
            "ID" => os.id = value,
            "VERSION_ID" => os.version_id = Some(value),
            "VERSION_CODENAME" => os.version_codename = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_owned).collect(),
            _ => {}
        }
    }
    Ok(os)
}

/// One shell word: double-quoted, single-quoted or bare pieces, concatenated.
fn unquote(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        e @ ('"' | '\\' | '$' | '`') => out.push(e),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    },
                    other => out.push(other),
                }
            },
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    other => out.push(other),
                }
            },
            '\\' => out.push(chars.next()?),
            c if c.is_whitespace() => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_alpine_and_rocky() {
        let debian = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;
        let os = parse(debian).expect("parses");
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );

        let rocky = "ID='rocky'\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n";
        let os = parse(rocky).expect("parses");
        assert_eq!(os.id, "rocky");
        assert_eq!(os.id_like, ["rhel", "centos", "fedora"]);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            unquote(r#""a \"b\" \$c \\ \n""#).as_deref(),
            Some(r#"a "b" $c \ \n"#)
        );
        assert_eq!(unquote(r#"'it''s'"#).as_deref(), Some("its"));
        assert_eq!(unquote(r#"plain\ word"#).as_deref(), Some("plain word"));
        assert_eq!(unquote(r#""unterminated"#), None);
        assert_eq!(unquote("two words"), None);
        assert!(parse("garbage line\n").is_err());
        assert_eq!(parse("# only a comment\n").expect("parses").id, "linux");
    }
}
