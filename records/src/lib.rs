//! The contract between the tools and whoever drives them: every JSON record a tool
//! writes (`ready`, `interval`, `final`, one object per line) is a type here, and
//! `lab` reads the very same type back. Nothing is looked up by a path string; a
//! field that is missing, renamed or unknown, or a record written by a tool of
//! another schema version, is an error naming the record, never a silent default.
//!
//! Records by tool: [`generator`], [`tstamp`], [`sink`], [`dut`] (`dut status`, one
//! object; `update-bench`; `install --foreground`).
//!
//! [`args`] holds the argument builders: `lab` assembles each tool's command line
//! through them, and each tool's tests round-trip them through its own clap parser.
//! [`cli`] holds the one output option every tool takes (`--output FORMAT`, `--json`
//! as its alias).
//!
//! Invariant: [`SCHEMA_VERSION`] changes whenever a record's fields change, and
//! every record carries it.

pub mod args;
pub mod cli;
pub mod dut;
pub mod generator;
pub mod sink;
pub mod tstamp;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of the record formats in this crate.
pub const SCHEMA_VERSION: u32 = 2;

/// The `type` of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The tool is set up and measuring (e.g. tstamp capturing).
    Ready,
    /// Periodic progress (counters cumulative, rates over the interval).
    Interval,
    /// Exactly once at the end, also when interrupted.
    Final,
}

/// Why a line could not be read as the record asked for.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or not an object with a string `type`.
    #[error("not a JSON record: {0}")]
    NotJson(String),
    /// Written by a tool of another schema version.
    #[error(
        "record written with schema_version {found}, this build reads {SCHEMA_VERSION}: use tools and lab from the same build"
    )]
    Version {
        /// What the record says.
        found: u64,
    },
    /// The fields do not match the type.
    #[error("{what} record does not match its schema: {source}")]
    Shape {
        /// Which record.
        what: &'static str,
        /// serde's message (names the field).
        source: serde_json::Error,
    },
}

/// The `type` and `schema_version` of one JSON line, checked.
pub fn kind_of(line: &str) -> Result<(Kind, serde_json::Value), RecordError> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| RecordError::NotJson(e.to_string()))?;
    let kind = v
        .get("type")
        .cloned()
        .ok_or_else(|| RecordError::NotJson("no \"type\"".into()))
        .and_then(|t| {
            serde_json::from_value::<Kind>(t).map_err(|e| RecordError::NotJson(e.to_string()))
        })?;
    match v.get("schema_version").and_then(serde_json::Value::as_u64) {
        Some(n) if n == u64::from(SCHEMA_VERSION) => Ok((kind, v)),
        Some(n) => Err(RecordError::Version { found: n }),
        None => Err(RecordError::Version { found: 0 }),
    }
}

/// Checks `v`'s schema version, then reads it as record type `T`.
pub fn typed<T: DeserializeOwned>(
    v: serde_json::Value,
    what: &'static str,
) -> Result<T, RecordError> {
    match v.get("schema_version").and_then(serde_json::Value::as_u64) {
        Some(n) if n == u64::from(SCHEMA_VERSION) => from_value(v, what),
        Some(n) => Err(RecordError::Version { found: n }),
        None => Err(RecordError::Version { found: 0 }),
    }
}

/// Reads a checked JSON value as record type `T` (`what` names it in errors).
pub fn from_value<T: DeserializeOwned>(
    v: serde_json::Value,
    what: &'static str,
) -> Result<T, RecordError> {
    serde_json::from_value(v).map_err(|source| RecordError::Shape { what, source })
}

/// The last record of kind `kind` among `text`'s lines, as `T`.
pub fn last_of<T: DeserializeOwned>(
    text: &str,
    kind: Kind,
    what: &'static str,
) -> Result<Option<T>, RecordError> {
    let mut found = None;
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let (k, v) = kind_of(line)?;
        if k == kind {
            found = Some(v);
        }
    }
    found.map(|v| from_value(v, what)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_type_are_checked() {
        assert!(matches!(
            kind_of(r#"{"type":"final","schema_version":2}"#),
            Ok((Kind::Final, _))
        ));
        assert!(matches!(
            kind_of(r#"{"type":"final","schema_version":7}"#),
            Err(RecordError::Version { found: 7 })
        ));
        assert!(matches!(
            kind_of(r#"{"type":"final"}"#),
            Err(RecordError::Version { found: 0 })
        ));
        assert!(matches!(
            kind_of(r#"{"type":"done","schema_version":2}"#),
            Err(RecordError::NotJson(_))
        ));
        assert!(matches!(kind_of("rate: 5"), Err(RecordError::NotJson(_))));
    }

    #[test]
    fn a_record_with_an_unknown_or_missing_field_is_an_error_naming_it() {
        let ok = r#"{"type":"ready","schema_version":2,"iface":"mon0","backend":"af-packet","clock":"sw","match":"dns"}"#;
        let v: serde_json::Value = serde_json::from_str(ok).expect("json");
        let r: tstamp::Ready = typed(v.clone(), "tstamp ready").expect("typed");
        assert_eq!(r.clock, "sw");
        let mut extra = v.clone();
        extra["clok"] = serde_json::json!("hw");
        let e = typed::<tstamp::Ready>(extra, "tstamp ready")
            .expect_err("unknown field")
            .to_string();
        assert!(e.contains("tstamp ready") && e.contains("clok"), "{e}");
        let mut missing = v;
        missing.as_object_mut().expect("object").remove("backend");
        let e = typed::<tstamp::Ready>(missing, "tstamp ready")
            .expect_err("missing")
            .to_string();
        assert!(e.contains("backend"), "{e}");
    }
}
