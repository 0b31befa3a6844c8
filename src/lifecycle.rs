//! Model lifecycle as data: which models Google has shut down or will shut
//! down, on what date, and what replaces them. The built-in table is
//! `data/lifecycle.json` (compiled in, every row with its source; schema in
//! `schema/lifecycle.schema.json`); operators add or override rows with the
//! `lifecycle` configuration field, checked first.
//!
//! A routed request's model is looked up once; the [`Notice`] it yields puts
//! `Deprecation` (RFC 9745) and `Sunset` (RFC 8594) on every answer, names
//! the replacement, and turns a 404 for a model past its shutdown into the
//! truth: "X was shut down on DATE; its replacement is Y".

use crate::classify::{FirstMatch, Glob, GlobError};
use crate::config::{parse_document, read_opt, read_opt_string, read_seq, read_string};
use crate::config::{read_unit_enum, FieldError, Shape};
use crate::model::ModelName;
use crate::reader::Reader;
use std::fmt;

/// The built-in table.
const BUILTIN: &str = include_str!("../data/lifecycle.json");

/// One row as written (built-in or configuration); unknown fields refused.
#[derive(Debug, Clone, Default)]
pub struct RawRow {
    pattern: String,
    status: Option<RawStatus>,
    deprecated: Option<String>,
    shutdown: Option<String>,
    replacement: Option<String>,
    source: Option<String>,
}

impl RawRow {
    const SHAPE: Shape = Shape {
        name: "RawRow",
        fields: &[
            "match",
            "status",
            "deprecated",
            "shutdown",
            "replacement",
            "source",
        ],
        required: 1,
        defaulted: 0,
        deny_unknown: true,
    };

    /// Reads one row.
    pub(crate) fn read(r: &mut Reader<'_, '_>) -> Result<RawRow, FieldError> {
        let mut row = RawRow::default();
        RawRow::SHAPE.read(r, &mut |r, index| {
            match index {
                0 => row.pattern = read_string(r)?,
                1 => row.status = read_opt(r, RawStatus::read)?,
                2 => read_opt_string(r, &mut row.deprecated)?,
                3 => read_opt_string(r, &mut row.shutdown)?,
                4 => read_opt_string(r, &mut row.replacement)?,
                _ => read_opt_string(r, &mut row.source)?,
            }
            Ok(())
        })?;
        Ok(row)
    }

    /// Reads a JSON list of rows (the built-in table's form).
    pub(crate) fn read_list(json: &[u8]) -> Result<Vec<RawRow>, String> {
        parse_document(json, |r| read_seq(r, RawRow::read))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawStatus {
    Live,
    Deprecated,
    ShutDown,
}

impl RawStatus {
    /// Every status, in declaration order.
    const ALL: [RawStatus; 3] = [RawStatus::Live, RawStatus::Deprecated, RawStatus::ShutDown];
    /// Their names in the table, in the same order.
    const NAMES: [&'static str; 3] = ["live", "deprecated", "shut_down"];
}

impl RawStatus {
    fn read(r: &mut Reader<'_, '_>) -> Result<RawStatus, FieldError> {
        read_unit_enum(r, &RawStatus::NAMES).map(|i| RawStatus::ALL[i])
    }
}

/// A calendar date, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(i64);

const SECONDS_PER_DAY: i64 = 86_400;

impl Date {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = text.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let days_in_month = match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days_in_month)
            .contains(&d)
            .then(|| Date(days_from_civil(y, m, d)))
    }

    /// The date of a Unix time (UTC).
    pub fn from_unix(seconds: u64) -> Date {
        Date(i64::try_from(seconds).unwrap_or(i64::MAX) / SECONDS_PER_DAY)
    }

    /// Seconds since the epoch at the start of the day (UTC).
    pub fn unix(self) -> i64 {
        self.0 * SECONDS_PER_DAY
    }

    /// RFC 9745 `Deprecation` value: `@` and the Unix time.
    pub fn structured(self) -> String {
        format!("@{}", self.unix())
    }

    /// RFC 8594 `Sunset` value: an IMF-fixdate (`Mon, 07 May 2027 00:00:00 GMT`).
    pub fn http_date(self) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (y, m, d) = civil_from_days(self.0);
        let weekday = DAYS[self.0.rem_euclid(7) as usize];
        let month = MONTHS[(m - 1) as usize];
        format!("{weekday}, {d:02} {month} {y:04} 00:00:00 GMT")
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where a row comes from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `data/lifecycle.json`.
    Builtin,
    /// `lifecycle[i]` of the configuration.
    Config(usize),
}

/// One compiled row.
#[derive(Debug, Clone)]
pub struct Row {
    pattern: Glob,
    shut_down: bool,
    deprecated: Option<Date>,
    shutdown: Option<Date>,
    replacement: Option<String>,
    origin: Origin,
}

/// Why a lifecycle row was refused; names the row and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Which row.
    pub origin: Origin,
    /// The field.
    pub field: &'static str,
    /// Why.
    pub why: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            Origin::Builtin => write!(f, "data/lifecycle.json: {}: {}", self.field, self.why),
            Origin::Config(i) => write!(f, "lifecycle[{i}].{}: {}", self.field, self.why),
        }
    }
}

impl std::error::Error for RowError {}

impl Row {
    /// Compiles `raws` onto `rows`: the configuration's rows, or the
    /// built-in ones. (One loop for both.)
    fn compile_all(rows: &mut Vec<Row>, raws: &[RawRow], builtin: bool) -> Result<(), RowError> {
        for (i, raw) in raws.iter().enumerate() {
            let origin = if builtin {
                Origin::Builtin
            } else {
                Origin::Config(i)
            };
            rows.push(Row::compile(raw, origin)?);
        }
        Ok(())
    }

    fn compile(raw: &RawRow, origin: Origin) -> Result<Row, RowError> {
        let error = |field: &'static str, why: String| RowError { origin, field, why };
        let pattern =
            Glob::new(&raw.pattern).map_err(|e: GlobError| error("match", e.to_string()))?;
        let deprecated = date(origin, "deprecated", raw.deprecated.as_deref())?;
        let shutdown = date(origin, "shutdown", raw.shutdown.as_deref())?;
        let replacement = match raw.replacement.as_deref() {
            Some(r) => Some(
                ModelName::parse(r, 128)
                    .map_err(|e| error("replacement", e.to_string()))?
                    .id,
            ),
            None => None,
        };
        let shut_down = raw.status == Some(RawStatus::ShutDown);
        let live = raw.status == Some(RawStatus::Live);
        let refusal =
            if origin == Origin::Builtin && raw.source.as_deref().map_or(true, str::is_empty) {
                Some(("source", "every built-in row names its source"))
            } else if live && shutdown.is_some() {
                Some((
                    "status",
                    "a live model has no shutdown date (use deprecated)",
                ))
            } else if !shut_down && shutdown.is_none() && !live {
                Some(("shutdown", "is required unless status is shut_down or live"))
            } else {
                None
            };
        if let Some((field, why)) = refusal {
            return Err(error(field, why.to_owned()));
        }
        Ok(Row {
            pattern,
            shut_down,
            deprecated,
            shutdown,
            replacement,
            origin,
        })
    }
}

/// A row's date field, if set. (Not inlined: one copy for both fields.)
#[inline(never)]
fn date(
    origin: Origin,
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<Date>, RowError> {
    match value {
        None => Ok(None),
        Some(v) => Date::parse(v).map(Some).ok_or_else(|| RowError {
            origin,
            field,
            why: format!("{v:?} is not a date (YYYY-MM-DD)"),
        }),
    }
}

/// The lifecycle table: configuration rows first, then the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    rows: Vec<Row>,
    /// The row each recent model id matched.
    first: FirstMatch,
}

impl Lifecycle {
    /// Compiles the table from the configuration's rows and, unless turned
    /// off, the built-in ones.
    pub fn new(config_rows: &[RawRow], builtin: bool) -> Result<Lifecycle, RowError> {
        let mut rows = Vec::new();
        Row::compile_all(&mut rows, config_rows, false)?;
        if builtin {
            let raw = RawRow::read_list(BUILTIN.as_bytes()).map_err(|why| RowError {
                origin: Origin::Builtin,
                field: "(file)",
                why,
            })?;
            Row::compile_all(&mut rows, &raw, true)?;
        }
        Ok(Lifecycle {
            rows,
            first: FirstMatch::default(),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// What the table says of `model` (a bare id) at Unix time `now`.
    pub fn notice(&self, model: &str, now: u64) -> Option<Notice> {
        self.notice_at(model, || now)
    }

    /// [`Lifecycle::notice`] with the time read from `now` only for a model the
    /// table lists.
    pub fn notice_at(&self, model: &str, now: impl FnOnce() -> u64) -> Option<Notice> {
        let patterns = self.rows.iter().map(|r| &r.pattern);
        let row = self
            .first
            .find(model, patterns)
            .and_then(|i| self.rows.get(i))?;
        let today = Date::from_unix(now());
        let shut_down = row.shut_down || row.shutdown.is_some_and(|d| d <= today);
        if row.shutdown.is_none() && !shut_down {
            // A live row (an override that clears a built-in one).
            return None;
        }
        Some(Notice {
            shut_down,
            deprecated: row.deprecated.or(row.shutdown),
            shutdown: row.shutdown,
            replacement: row.replacement.clone(),
            rule: match row.origin {
                Origin::Builtin => format!("{} (built-in)", row.pattern.as_str()),
                Origin::Config(i) => format!("{} (lifecycle[{i}])", row.pattern.as_str()),
            },
        })
    }
}

/// What the lifecycle table says of a routed request's model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The shutdown date has passed (or the row says shut down).
    pub shut_down: bool,
    /// For `Deprecation`: the row's deprecation date, else its shutdown date.
    pub deprecated: Option<Date>,
    /// For `Sunset`.
    pub shutdown: Option<Date>,
    /// The recommended replacement, a bare model id.
    pub replacement: Option<String>,
    /// The row that matched, as a label.
    pub rule: String,
}

impl Notice {
    /// The response headers every answer for this model carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(d) = self.deprecated {
            out.push((crate::headers::DEPRECATION, d.structured()));
        }
        if let Some(d) = self.shutdown {
            out.push((crate::headers::SUNSET, d.http_date()));
        }
        if let Some(r) = &self.replacement {
            out.push((crate::headers::REPLACEMENT, r.clone()));
        }
        out
    }

    /// The hint's account of a 404 for a model past its shutdown, or
    /// `None` while the model is still served.
    pub fn shut_down_sentence(&self, model: &str) -> Option<String> {
        if !self.shut_down {
            return None;
        }
        let when = self
            .shutdown
            .map(|d| format!(" on {d}"))
            .unwrap_or_default();
        Some(match &self.replacement {
            Some(r) => format!("{model} was shut down{when}; its replacement is {r}"),
            None => format!("{model} was shut down{when}; Google names no replacement"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEC_2_2026: u64 = 1_796_169_600; // 2026-12-02T00:00:00Z

    fn rows(json: &str) -> Vec<RawRow> {
        RawRow::read_list(json.as_bytes()).unwrap()
    }

    #[test]
    fn dates_parse_and_format() {
        let cases = [
            ("1970-01-01", 0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            ("2026-12-01", 1_796_083_200, "Tue, 01 Dec 2026 00:00:00 GMT"),
            ("2027-05-07", 1_809_648_000, "Fri, 07 May 2027 00:00:00 GMT"),
            ("2024-02-29", 1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
        ];
        for (text, unix, http) in cases {
            let d = Date::parse(text).unwrap();
            assert_eq!(
                (d.unix(), d.http_date().as_str(), d.to_string().as_str()),
                (unix, http, text),
                "{text}"
            );
            assert_eq!(d.structured(), format!("@{unix}"));
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "26-12-01",
            "2026-1-01",
            "2026/12/01",
            "2026-12-32",
            "+026-12-01",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert_eq!(Date::from_unix(DEC_2_2026).to_string(), "2026-12-02");
    }

    #[test]
    fn the_built_in_table_compiles_and_knows_december_2026() {
        let table = Lifecycle::new(&[], true).unwrap();
        let cases = [
            (
                "imagen-3.0-generate-002",
                Some((true, Some("2026-06-24"), Some("gemini-3.1-flash-image"))),
            ),
            (
                "imagen-4.0-ultra-generate-001",
                Some((true, Some("2026-08-17"), Some("gemini-3.1-flash-image"))),
            ),
            (
                "gemini-2.5-flash",
                Some((true, Some("2026-12-01"), Some("gemini-3.8-flash"))),
            ),
            (
                "gemini-2.5-flash-lite",
                Some((true, Some("2026-07-22"), Some("gemini-3.1-flash-lite"))),
            ),
            (
                "gemini-2.0-flash-001",
                Some((true, Some("2026-06-01"), Some("gemini-3.1-flash-lite"))),
            ),
            (
                "gemini-3.1-flash-lite",
                Some((false, Some("2027-05-07"), None)),
            ),
            (
                "gemini-1.5-pro",
                Some((true, None, Some("gemini-3.5-flash"))),
            ),
            ("gemini-3.5-flash", None),
            ("gemini-3.1-flash-image", None),
            ("gemini-embedding-001", None),
        ];
        for (model, want) in cases {
            let got = table.notice(model, DEC_2_2026).map(|n| {
                (
                    n.shut_down,
                    n.shutdown.map(|d| d.to_string()),
                    n.replacement,
                )
            });
            let want = want.map(|(s, d, r)| (s, d.map(str::to_owned), r.map(str::to_owned)));
            assert_eq!(got, want, "{model}");
        }
    }

    #[test]
    fn configuration_rows_come_first_and_can_clear_a_built_in_one() {
        let table = Lifecycle::new(
            &rows(r#"[{"match":"gemini-2.5-flash","status":"live"},
                     {"match":"my-*","shutdown":"2026-12-03","replacement":"models/my-next","source":"ops"}]"#),
            true,
        )
        .unwrap();
        assert_eq!(table.notice("gemini-2.5-flash", DEC_2_2026), None);
        let mine = table.notice("my-model", DEC_2_2026).unwrap();
        assert!(!mine.shut_down, "the date is tomorrow");
        assert_eq!(mine.replacement.as_deref(), Some("my-next"));
        assert_eq!(mine.rule, "my-* (lifecycle[1])");
        assert!(
            table
                .notice("my-model", DEC_2_2026 + 86_400)
                .unwrap()
                .shut_down
        );
    }

    #[test]
    fn bad_rows_name_their_field() {
        let cases = [
            (
                r#"[{"match":"x","shutdown":"2026-02-30"}]"#,
                "lifecycle[0].shutdown: \"2026-02-30\" is not a date",
            ),
            (
                r#"[{"match":"x","shutdown":"2026-01-01","replacement":"../y"}]"#,
                "lifecycle[0].replacement:",
            ),
            (
                r#"[{"match":"","shutdown":"2026-01-01"}]"#,
                "lifecycle[0].match:",
            ),
            (r#"[{"match":"x"}]"#, "lifecycle[0].shutdown: is required"),
            (
                r#"[{"match":"x","status":"live","shutdown":"2026-01-01"}]"#,
                "lifecycle[0].status:",
            ),
        ];
        for (json, want) in cases {
            let err = Lifecycle::new(&rows(json), false).unwrap_err().to_string();
            assert!(err.starts_with(want), "{json}: {err}");
        }
        assert!(RawRow::read_list(br#"[{"match":"x","nope":1}]"#).is_err());
    }

    #[test]
    fn notices_become_headers_and_hints() {
        let table = Lifecycle::new(&[], true).unwrap();
        let n = table.notice("imagen-3.0-generate-002", DEC_2_2026).unwrap();
        assert_eq!(
            n.headers(),
            vec![
                (crate::headers::DEPRECATION, "@1782259200".to_owned()),
                (
                    crate::headers::SUNSET,
                    "Wed, 24 Jun 2026 00:00:00 GMT".to_owned()
                ),
                (
                    crate::headers::REPLACEMENT,
                    "gemini-3.1-flash-image".to_owned()
                ),
            ]
        );
        assert_eq!(
            n.shut_down_sentence("imagen-3.0-generate-002").as_deref(),
            Some("imagen-3.0-generate-002 was shut down on 2026-06-24; its replacement is gemini-3.1-flash-image")
        );
        let live = table.notice("gemini-3.1-flash-lite", DEC_2_2026).unwrap();
        assert_eq!(live.shut_down_sentence("gemini-3.1-flash-lite"), None);
        assert_eq!(
            live.headers().len(),
            2,
            "Deprecation and Sunset, no replacement named"
        );
    }
}
