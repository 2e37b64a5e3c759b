//! Query string parameters, including repeated ones (`?tag=a&tag=b`).

use super::error::{ApiError, ErrorCode};

/// Decoded query parameters in request order.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The same parameters without `key`.
    pub fn without(&self, key: &str) -> Query {
        Query(self.0.iter().filter(|(k, _)| k != key).cloned().collect())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The page size `n`, if given.
    pub fn page_size(&self) -> Result<Option<u32>, ApiError> {
        self.get("n")
            .map(|n| {
                n.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(
                        ErrorCode::Unsupported,
                        format!("invalid page size n={n:?}: expected a non-negative integer"),
                    )
                })
            })
            .transpose()
    }
}

/// Encodes a value for a query string (`+` and `/` in media types included).
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_repeated_and_encoded_values() {
        let q = Query::parse(Some(
            "tag=a&tag=b&artifactType=application%2Fvnd.x%2Bjson&n=5",
        ));
        assert_eq!(q.all("tag").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(q.get("artifactType"), Some("application/vnd.x+json"));
        assert_eq!(q.page_size().unwrap(), Some(5));
        assert!(Query::parse(Some("n=-1")).page_size().is_err());
        assert_eq!(Query::parse(None).page_size().unwrap(), None);
    }

    #[test]
    fn encodes_plus_signs() {
        assert_eq!(
            encode("application/vnd.x+json"),
            "application%2Fvnd.x%2Bjson"
        );
    }
}
