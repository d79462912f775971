//! Timestamps and durations: ISO 8601 and HTTP-date formatting and parsing, UTC only.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

const MS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_millis() as i64),
            Err(e) => Timestamp(-(e.duration().as_millis() as i64)),
        }
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs())
        }
    }

    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }

    /// Midnight UTC at or before this instant.
    pub fn day_start(self) -> Self {
        Timestamp(self.0.div_euclid(MS_PER_DAY) * MS_PER_DAY)
    }

    /// Midnight UTC after this instant.
    pub fn next_day_start(self) -> Self {
        Timestamp(self.day_start().0 + MS_PER_DAY)
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z`, `±HH:MM` or `±HHMM`.
    /// A date alone means midnight UTC. A datetime without an offset is rejected: a sync
    /// tool that guesses time zones corrupts data silently.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let date = s.get(0..10)?;
        let days = parse_date(date)?;
        if s.len() == 10 {
            return Some(Timestamp(days * MS_PER_DAY));
        }
        let rest = s.get(10..)?;
        let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
        let (clock, offset_ms) = split_offset(rest)?;
        let mut parts = clock.splitn(3, ':');
        let h: i64 = parse_digits(parts.next()?, 2)?;
        let m: i64 = parse_digits(parts.next()?, 2)?;
        let (sec, ms) = match parts.next() {
            None => (0, 0),
            Some(sec) => {
                let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
                let whole = parse_digits(whole, 2)?;
                let ms = if frac.is_empty() {
                    0
                } else {
                    if !frac.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let padded = format!("{frac:0<3}");
                    padded[..3].parse::<i64>().ok()?
                };
                (whole, ms)
            }
        };
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        let local = days * MS_PER_DAY + ((h * 60 + m) * 60 + sec) * 1000 + ms;
        Some(Timestamp(local - offset_ms))
    }

    /// Salesforce's datetime format: `2026-01-05T08:00:00.000+0000`.
    pub fn to_salesforce(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}+0000")
    }

    /// ISO 8601 in UTC with milliseconds: `2026-01-05T08:00:00.000Z`.
    pub fn to_iso(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }

    /// The date part, `YYYY-MM-DD`.
    pub fn to_date(self) -> String {
        let (y, mo, d, ..) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}")
    }

    /// RFC 9110 HTTP-date (`Mon, 05 Jan 2026 08:00:00 GMT`), as `Retry-After` may carry.
    pub fn to_http_date(self) -> String {
        httpdate::fmt_http_date(self.to_system_time())
    }

    pub fn parse_http_date(s: &str) -> Option<Self> {
        httpdate::parse_http_date(s.trim())
            .ok()
            .map(Self::from_system_time)
    }

    fn parts(self) -> (i64, u32, u32, i64, i64, i64, i64) {
        let days = self.0.div_euclid(MS_PER_DAY);
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let ms = in_day % 1000;
        let secs = in_day / 1000;
        (y, m, d, secs / 3600, (secs / 60) % 60, secs % 60, ms)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

fn parse_digits(s: &str, len: usize) -> Option<i64> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = parse_digits(&s[0..4], 4)?;
    let m = parse_digits(&s[5..7], 2)? as u32;
    let d = parse_digits(&s[8..10], 2)? as u32;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Whether `s` is a valid calendar date `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    parse_date(s).is_some()
}

fn split_offset(s: &str) -> Option<(&str, i64)> {
    if let Some(clock) = s.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let pos = s.rfind(['+', '-'])?;
    let (clock, off) = s.split_at(pos);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
    let h = parse_digits(digits.get(0..2)?, 2)?;
    let m = parse_digits(digits.get(2..4)?, 2)?;
    if digits.len() != 4 || h > 14 || m > 59 {
        return None;
    }
    Some((clock, sign * (h * 60 + m) * 60_000))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a duration written as `250ms`, `30s`, `15m`, `2h`, `1d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "s" => n.checked_mul(1000)?,
        "ms" => n,
        "m" | "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Formats a duration compactly for humans and traces (`1h`, `2.5s`, `120ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not a timestamp with a time zone"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_and_offsets() {
        let t = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        assert_eq!(t.to_iso(), "2026-01-05T08:00:00.000Z");
        assert_eq!(t.to_salesforce(), "2026-01-05T08:00:00.000+0000");
        assert_eq!(Timestamp::parse("2026-01-05T10:00:00+02:00"), Some(t));
        assert_eq!(Timestamp::parse("2026-01-05T03:00:00.000-0500"), Some(t));
        assert_eq!(
            Timestamp::parse("2026-01-05").unwrap().to_iso(),
            "2026-01-05T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::parse("2024-02-29T23:59:59.5Z").unwrap().to_iso(),
            "2024-02-29T23:59:59.500Z"
        );
    }

    #[test]
    fn rejects_bad_dates_and_naive_datetimes() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-01-05T08:00:00",
            "05/01/2026",
            "2026-01-05T25:00Z",
            "",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_dates() {
        let t = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        assert_eq!(t.to_http_date(), "Mon, 05 Jan 2026 08:00:00 GMT");
        assert_eq!(
            Timestamp::parse_http_date("Mon, 05 Jan 2026 08:00:00 GMT"),
            Some(t)
        );
    }

    #[test]
    fn day_windows() {
        let t = Timestamp::parse("2026-01-05T08:30:00Z").unwrap();
        assert_eq!(t.day_start().to_iso(), "2026-01-05T00:00:00.000Z");
        assert_eq!(t.next_day_start().to_iso(), "2026-01-06T00:00:00.000Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.500s");
    }
}
