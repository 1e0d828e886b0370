//! TOML files read with line numbers: the one reader of profiles and experiment files.
//!
//! A file is deserialised into raw structs (`#[serde(deny_unknown_fields)]`, values
//! wrapped in [`Spanned`]) and every problem becomes one line
//! `FILE:LINE: KEY: what is wrong` ([`Invalid`]):
//!
//! - a syntax error names the line and the key `syntax`;
//! - an unknown key names its line, the key and the keys allowed where it stands;
//! - a value of the wrong type names its line and its dotted key (`ipv4.ttl`);
//! - a missing key names the table that lacks it;
//! - a value the caller refuses ([`TomlFile::err`], [`TomlFile::value`],
//!   [`TomlFile::int`], [`TomlFile::one_of`]) names the line of that value.
//!
//! Pure: the caller reads the file.

use std::ops::Range;

use serde::de::DeserializeOwned;
pub use toml::Spanned;

/// One problem in a TOML file: `FILE:LINE: KEY: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {key}: {msg}")]
pub struct Invalid {
    /// The file (or the name of an embedded one).
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// The key at fault (`syntax` for a TOML syntax error).
    pub key: String,
    /// What is wrong.
    pub msg: String,
}

/// A TOML text and where it came from (for messages).
#[derive(Debug, Clone, Copy)]
pub struct TomlFile<'a> {
    /// The whole text.
    pub text: &'a str,
    /// File name or embedded name, the `FILE` of every message.
    pub origin: &'a str,
}

impl<'a> TomlFile<'a> {
    /// A text and its origin.
    pub fn new(text: &'a str, origin: &'a str) -> TomlFile<'a> {
        TomlFile { text, origin }
    }

    /// Deserialises the whole text into `T` (raw structs with spans); syntax, unknown
    /// keys, wrong types and missing keys become [`Invalid`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Invalid> {
        toml::from_str(self.text).map_err(|e| self.translate(e.span(), e.message()))
    }

    /// 1-based line of the byte offset where `span` starts.
    pub fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The error for the value at `span`.
    pub fn invalid(&self, span: Range<usize>, key: &str, msg: impl Into<String>) -> Invalid {
        Invalid {
            origin: self.origin.into(),
            line: self.line(span),
            key: key.into(),
            msg: msg.into(),
        }
    }

    /// [`TomlFile::invalid`] as an `Err`.
    pub fn err<T>(
        &self,
        span: Range<usize>,
        key: &str,
        msg: impl Into<String>,
    ) -> Result<T, Invalid> {
        Err(self.invalid(span, key, msg))
    }

    /// A string value through `parse` (e.g. one of [`crate::units`]' parsers), whose
    /// one-line error becomes the message.
    pub fn value<T>(
        &self,
        v: &Spanned<String>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, Invalid> {
        parse(v.get_ref()).map_err(|m| self.invalid(v.span(), key, m))
    }

    /// An integer in `lo..=hi`, converted to `T`.
    pub fn int<T: TryFrom<i64>>(
        &self,
        v: &Spanned<i64>,
        key: &str,
        lo: i64,
        hi: i64,
    ) -> Result<T, Invalid> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return self.err(v.span(), key, format!("{x} is out of range ({lo} to {hi})"));
        }
        T::try_from(x).or_else(|_| self.err(v.span(), key, format!("{x} is out of range")))
    }

    /// One of a fixed set of words; the error lists them (`allowed`, comma-separated).
    pub fn one_of<T>(
        &self,
        v: &Spanned<String>,
        key: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        allowed: &str,
    ) -> Result<T, Invalid> {
        parse(v.get_ref()).ok_or_else(|| {
            self.invalid(
                v.span(),
                key,
                format!("unknown value '{}' (one of {allowed})", v.get_ref()),
            )
        })
    }

    /// The deserialiser's error as `FILE:LINE: KEY: message`.
    fn translate(&self, span: Option<Range<usize>>, msg: &str) -> Invalid {
        let span = span.unwrap_or(0..0);
        let msg = msg.trim().replace('\n', " ");
        let backticked = |m: &str| m.split('`').nth(1).map(str::to_owned);
        if let Some(rest) = msg.strip_prefix("unknown field ") {
            // "unknown field `x`, expected one of `a`, `b`" / "expected `a`" /
            // "there are no fields"
            let key = backticked(rest).unwrap_or_else(|| "syntax".into());
            let allowed: Vec<&str> = rest
                .split_once(", expected")
                .map(|(_, a)| a.split('`').skip(1).step_by(2).collect())
                .unwrap_or_default();
            let table = self.table_at(span.start);
            let place = if table.is_empty() {
                "at the top of the file".to_owned()
            } else {
                format!("in [{table}]")
            };
            let m = if allowed.is_empty() {
                format!("unknown key {place} (no keys allowed here)")
            } else {
                format!("unknown key {place} (allowed: {})", allowed.join(", "))
            };
            return self.invalid(span, &key, m);
        }
        if let Some(rest) = msg.strip_prefix("missing field ") {
            let key = backticked(rest).unwrap_or_else(|| "syntax".into());
            let table = self.table_at(span.start);
            let m = if table.is_empty() {
                "missing: this key is required".to_owned()
            } else {
                format!("missing in [{table}]: this key is required")
            };
            return self.invalid(span, &key, m);
        }
        if (msg.starts_with("invalid type") || msg.starts_with("invalid value"))
            && let Some(key) = self.key_at(span.start)
        {
            return self.invalid(span, &key, msg);
        }
        self.invalid(span, "syntax", msg)
    }

    /// The line holding byte `at`, as text.
    fn line_text(&self, at: usize) -> &str {
        let at = at.min(self.text.len());
        let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i);
        &self.text[start..end]
    }

    /// The dotted key of the `key = value` line holding byte `at` (with its table's
    /// name in front), if that line is one.
    fn key_at(&self, at: usize) -> Option<String> {
        let (k, _) = self.line_text(at).split_once('=')?;
        let k = k.trim().trim_matches('"');
        if k.is_empty() || k.starts_with('[') || k.contains(char::is_whitespace) {
            return None;
        }
        let table = self.table_at(at);
        Some(if table.is_empty() {
            k.to_owned()
        } else {
            format!("{table}.{k}")
        })
    }

    /// Name of the `[table]` or `[[array]]` whose header is the last one before byte
    /// `at` (empty: the top of the file). A header at `at` itself counts.
    fn table_at(&self, at: usize) -> String {
        let at = at.min(self.text.len());
        let upto = self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i);
        self.text[..upto]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Raw {
        name: Spanned<String>,
        count: Option<Spanned<i64>>,
        ipv4: Option<RawIpv4>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct RawIpv4 {
        src: Option<Spanned<String>>,
        ttl: Option<Spanned<i64>>,
    }

    fn err(text: &str) -> String {
        TomlFile::new(text, "f.toml")
            .parse::<Raw>()
            .map(|r| format!("accepted: {r:?}"))
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn unknown_keys_name_line_key_and_the_allowed_keys() {
        assert_eq!(
            err("name = \"x\"\n\n[ipv4]\nsrc = \"1.2.3.4\"\nsource = 1\n"),
            "f.toml:5: source: unknown key in [ipv4] (allowed: src, ttl)"
        );
        assert_eq!(
            err("name = \"x\"\ncolour = 1\n"),
            "f.toml:2: colour: unknown key at the top of the file (allowed: name, count, ipv4)"
        );
    }

    #[test]
    fn type_errors_name_line_and_dotted_key() {
        let e = err("name = \"x\"\n[ipv4]\nttl = \"high\"\n");
        assert!(e.starts_with("f.toml:3: ipv4.ttl: invalid type"), "{e}");
        let e = err("name = \"x\"\ncount = \"many\"\n");
        assert!(e.starts_with("f.toml:2: count: invalid type"), "{e}");
    }

    #[test]
    fn syntax_and_missing_keys() {
        let e = err("name = \"x\"\ncount = \n");
        assert!(e.starts_with("f.toml:2: syntax:"), "{e}");
        let e = err("count = 1\n");
        assert!(e.starts_with("f.toml:1: name: missing"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn values_refused_by_the_caller_name_their_line() {
        let text = "name = \"x\"\ncount = 300\n[ipv4]\nsrc = \"1.2.3\"\nttl = 0\n";
        let f = TomlFile::new(text, "f.toml");
        let raw: Raw = f.parse().expect("parses");
        let ip = raw.ipv4.expect("ipv4");
        let src = ip.src.expect("src");
        let e = f
            .value(&src, "ipv4.src", crate::units::parse_ipv4)
            .expect_err("bad address");
        assert_eq!(
            e.to_string(),
            "f.toml:4: ipv4.src: '1.2.3' is not an IPv4 address"
        );
        let count = raw.count.expect("count");
        let e = f.int::<u8>(&count, "count", 0, 1000).expect_err("300 > u8");
        assert_eq!(e.to_string(), "f.toml:2: count: 300 is out of range");
        let e = f.int::<u8>(&count, "count", 0, 100).expect_err("300 > 100");
        assert_eq!(
            e.to_string(),
            "f.toml:2: count: 300 is out of range (0 to 100)"
        );
        let e = f
            .one_of(&raw.name, "name", |_| None::<()>, "a, b")
            .expect_err("not a or b");
        assert_eq!(
            e.to_string(),
            "f.toml:1: name: unknown value 'x' (one of a, b)"
        );
        assert_eq!(f.line(text.len()..text.len()), 6);
    }
}
