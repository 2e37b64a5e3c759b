//! CVSS base scores and the qualitative scale.
//!
//! - v3.0 and v3.1 base scores are computed here from the vector string with the formulas of
//!   the FIRST specification (v3.1 section 7.1 and Appendix A's `Roundup`; v3.0's plain
//!   round-up for `CVSS:3.0` vectors). Temporal and environmental metrics may be present and
//!   are ignored: advisories publish base scores.
//! - v4.0 vectors are scored by the `cvss` crate (RustSec), whose v4 scoring follows FIRST's
//!   reference calculator (macro-vector lookup and interpolation, too large a table to keep
//!   here).
//! - Scores map to FIRST's qualitative scale: 0 none, 0.1-3.9 low, 4.0-6.9 medium,
//!   7.0-8.9 high, 9.0-10.0 critical.

/// A qualitative severity, ordered from none to critical. `Unknown` (no score and no label)
/// sorts first; what it means for a threshold is the caller's policy.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No score and no label.
    Unknown,
    /// Score 0.
    None,
    /// 0.1 to 3.9.
    Low,
    /// 4.0 to 6.9.
    Medium,
    /// 7.0 to 8.9.
    High,
    /// 9.0 to 10.0.
    Critical,
}

impl Level {
    /// The level of a CVSS score (v3 and v4 share the scale).
    pub fn from_score(score: f64) -> Self {
        match score {
            s if s >= 9.0 => Self::Critical,
            s if s >= 7.0 => Self::High,
            s if s >= 4.0 => Self::Medium,
            s if s > 0.0 => Self::Low,
            _ => Self::None,
        }
    }

    /// A database's label: GitHub's `LOW`/`MODERATE`/`HIGH`/`CRITICAL`, Ubuntu's and Debian's
    /// `negligible`/`low`/`medium`/`high`/`critical`, Red Hat's `important`, and `unimportant`.
    pub fn from_label(label: &str) -> Option<Self> {
        Some(match label.trim().to_ascii_lowercase().as_str() {
            "critical" => Self::Critical,
            "high" | "important" => Self::High,
            "moderate" | "medium" => Self::Medium,
            "low" | "negligible" | "unimportant" => Self::Low,
            "none" => Self::None,
            _ => return None,
        })
    }

    /// The level's name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// Why a vector could not be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvssError {
    /// Not a `CVSS:3.0/` or `CVSS:3.1/` vector.
    #[error("not a CVSS v3 vector")]
    NotV3,
    /// A base metric is missing, repeated or has a value the specification does not define.
    #[error("CVSS v3 base metric {0} is missing, repeated or invalid")]
    Metric(&'static str),
    /// A component is not `metric:value`.
    #[error("malformed CVSS vector component")]
    Component,
    /// The v4 scorer refused the vector.
    #[error("CVSS v4 vector: {0}")]
    V4(String),
}

const BASE: [&str; 8] = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];

/// The CVSS v3.x base score of a vector string.
pub fn score_v3(vector: &str) -> Result<f64, CvssError> {
    let (v30, rest) = if let Some(rest) = vector.strip_prefix("CVSS:3.1/") {
        (false, rest)
    } else if let Some(rest) = vector.strip_prefix("CVSS:3.0/") {
        (true, rest)
    } else {
        return Err(CvssError::NotV3);
    };
    let mut values: [Option<&str>; 8] = [None; 8];
    for component in rest.split('/') {
        let (metric, value) = component.split_once(':').ok_or(CvssError::Component)?;
        if let Some(i) = BASE.iter().position(|m| *m == metric)
            && values[i].replace(value).is_some()
        {
            return Err(CvssError::Metric(BASE[i]));
        }
    }
    let get = |i: usize| values[i].ok_or(CvssError::Metric(BASE[i]));
    let scope_changed = match get(4)? {
        "U" => false,
        "C" => true,
        _ => return Err(CvssError::Metric("S")),
    };
    let weight = |i: usize, table: &[(&str, f64)]| -> Result<f64, CvssError> {
        let value = get(i)?;
        table
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, w)| *w)
            .ok_or(CvssError::Metric(BASE[i]))
    };
    let av = weight(0, &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)])?;
    let ac = weight(1, &[("L", 0.77), ("H", 0.44)])?;
    let pr = if scope_changed {
        weight(2, &[("N", 0.85), ("L", 0.68), ("H", 0.5)])?
    } else {
        weight(2, &[("N", 0.85), ("L", 0.62), ("H", 0.27)])?
    };
    let ui = weight(3, &[("N", 0.85), ("R", 0.62)])?;
    let cia = [("H", 0.56), ("L", 0.22), ("N", 0.0)];
    let (c, i, a) = (weight(5, &cia)?, weight(6, &cia)?, weight(7, &cia)?);

    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Ok(0.0);
    }
    let sum = if scope_changed {
        1.08 * (impact + exploitability)
    } else {
        impact + exploitability
    };
    let roundup = if v30 { roundup_v30 } else { roundup_v31 };
    Ok(roundup(sum.min(10.0)))
}

/// v3.0: the smallest one-decimal number not below `x`.
fn roundup_v30(x: f64) -> f64 {
    (x * 10.0).ceil() / 10.0
}

/// v3.1 Appendix A: the same, computed on integers so that floating-point noise
/// (`4.000000000000001`) does not round up.
fn roundup_v31(x: f64) -> f64 {
    #[expect(clippy::cast_possible_truncation, reason = "x is between 0 and 10")]
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

/// The CVSS v4.0 base score of a vector string, by the `cvss` crate.
pub fn score_v4(vector: &str) -> Result<f64, CvssError> {
    if !vector.starts_with("CVSS:4.0/") {
        return Err(CvssError::V4("not a CVSS:4.0 vector".to_owned()));
    }
    let parsed: ::cvss::v4::Vector = vector
        .parse()
        .map_err(|e: ::cvss::Error| CvssError::V4(e.to_string()))?;
    Ok(parsed.score().value())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Base scores as FIRST's v3.1 calculator gives them (and NVD publishes them).
    #[test]
    fn v3_base_scores() {
        let cases = [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N/E:P/RL:W/RC:C",
                6.1,
            ),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H", 7.4),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
            ("CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 6.5),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            // Metric order does not matter.
            ("CVSS:3.1/S:U/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H", 9.8),
        ];
        for (vector, want) in cases {
            let got = score_v3(vector).unwrap_or_else(|e| panic!("{vector}: {e}"));
            assert!((got - want).abs() < 1e-9, "{vector}: {got}, want {want}");
        }
    }

    #[test]
    fn v3_refuses_bad_vectors() {
        for bad in [
            "",
            "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:Q/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",
            "CVSS:3.1/AVN",
        ] {
            assert!(score_v3(bad).is_err(), "{bad:?} scored");
        }
    }

    #[test]
    fn v4_scores_through_the_crate() {
        let v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        assert_eq!(score_v4(v4), Ok(9.3));
        assert!(score_v4("CVSS:4.0/AV:N").is_err());
        assert!(score_v4("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").is_err());
    }

    #[test]
    fn qualitative_scale() {
        let cases = [
            (0.0, Level::None),
            (0.1, Level::Low),
            (3.9, Level::Low),
            (4.0, Level::Medium),
            (6.9, Level::Medium),
            (7.0, Level::High),
            (8.9, Level::High),
            (9.0, Level::Critical),
            (10.0, Level::Critical),
        ];
        for (score, level) in cases {
            assert_eq!(Level::from_score(score), level, "{score}");
        }
        assert_eq!(Level::from_label("MODERATE"), Some(Level::Medium));
        assert_eq!(Level::from_label("unimportant"), Some(Level::Low));
        assert_eq!(Level::from_label("not yet assigned"), None);
        assert!(Level::Unknown < Level::None && Level::High < Level::Critical);
    }
}
