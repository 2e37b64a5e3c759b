//! Form bodies and URL pieces: `application/x-www-form-urlencoded` with a size limit, and
//! percent-encoding for values put into links.

use axum::body::Body;
use http_body_util::BodyExt;

use super::UiError;

/// Largest form body accepted; every form here is a few short fields.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A parsed form: fields in order, repeated names kept.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads and parses a form body, refusing bodies over the limit.
    pub async fn read(body: Body) -> Result<Form, UiError> {
        let limited = http_body_util::Limited::new(body, MAX_FORM_BYTES);
        let bytes = limited
            .collect()
            .await
            .map_err(|_| UiError::BadRequest("the form is too large".into()))?
            .to_bytes();
        Ok(Form::parse(&bytes))
    }

    /// Parses form-encoded bytes.
    pub fn parse(bytes: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name`, untrimmed (passwords).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), "on" | "yes" | "true" | "1")
    }

    /// A required field, or a readable refusal naming it.
    pub fn required(&self, name: &str, label: &str) -> Result<&str, UiError> {
        match self.get(name) {
            "" => Err(UiError::BadRequest(format!("{label} is required"))),
            v => Ok(v),
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_encode() {
        let f = Form::parse(b"a=1&b=+x+&a=2&c=%3Cscript%3E&t=on");
        assert_eq!(f.get("a"), "1");
        assert_eq!(f.get("b"), "x");
        assert_eq!(f.raw("b"), " x ");
        assert_eq!(f.get("c"), "<script>");
        assert!(f.checked("t"));
        assert!(!f.checked("missing"));
        assert!(f.required("missing", "Name").is_err());
        assert_eq!(encode("a b&c/d"), "a+b%26c%2Fd");
    }
}
