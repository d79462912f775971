//! Calendar arithmetic for the reference model: reading dates and zoned date-times the way the
//! bundle format defines them, and writing them the way Salesforce stores them. Written out
//! plainly (year by year, month by month) so it can be checked by eye.

/// A calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

/// An instant, as milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub i64);

const MS_PER_DAY: i64 = 86_400_000;

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_year(year: i64) -> i64 {
    if is_leap(year) {
        366
    } else {
        365
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Exactly `n` ASCII digits, as a number.
fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Date {
    /// `YYYY-MM-DD`, a day that exists in the calendar (no `2026-02-30`, no `2026-1-5`).
    pub fn parse(s: &str) -> Option<Date> {
        let mut parts = s.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let date = Date {
            year: i64::from(digits(y, 4)?),
            month: digits(m, 2)?,
            day: digits(d, 2)?,
        };
        let valid = (1..=12).contains(&date.month)
            && date.day >= 1
            && date.day <= days_in_month(date.year, date.month);
        valid.then_some(date)
    }

    /// Days since 1970-01-01 (negative before it).
    fn days_since_epoch(self) -> i64 {
        let mut days = 0;
        if self.year >= 1970 {
            for y in 1970..self.year {
                days += days_in_year(y);
            }
        } else {
            for y in self.year..1970 {
                days -= days_in_year(y);
            }
        }
        for m in 1..self.month {
            days += i64::from(days_in_month(self.year, m));
        }
        days + i64::from(self.day) - 1
    }

    fn from_days_since_epoch(mut days: i64) -> Date {
        let mut year = 1970;
        while days < 0 {
            year -= 1;
            days += days_in_year(year);
        }
        while days >= days_in_year(year) {
            days -= days_in_year(year);
            year += 1;
        }
        let mut month = 1;
        while days >= i64::from(days_in_month(year, month)) {
            days -= i64::from(days_in_month(year, month));
            month += 1;
        }
        Date {
            year,
            month,
            day: days as u32 + 1,
        }
    }

    pub fn to_text(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A zone designator: `Z`, `+HH:MM`, `-HH:MM`, `+HHMM` or `-HHMM`, as minutes east of UTC.
/// Real offsets run from -12:00 to +14:00.
fn parse_offset(s: &str) -> Option<i64> {
    if s == "Z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &s[1..];
    let (h, m) = match body.len() {
        5 if body.as_bytes()[2] == b':' => (digits(&body[..2], 2)?, digits(&body[3..], 2)?),
        4 => (digits(&body[..2], 2)?, digits(&body[2..], 2)?),
        _ => return None,
    };
    if m > 59 || h > 14 || (h == 14 && m > 0) {
        return None;
    }
    Some(sign * i64::from(h * 60 + m))
}

impl Instant {
    /// A date-time with a time zone: `YYYY-MM-DD`, `T` (or a space), `HH:MM`, optional `:SS`
    /// and a fraction (kept to the millisecond, the rest cut off, as Salesforce keeps
    /// milliseconds), then the zone. Without a zone the instant is unknown: `None`.
    pub fn parse(s: &str) -> Option<Instant> {
        let date = Date::parse(s.get(..10)?)?;
        let rest = s.get(10..)?;
        let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
        let zone_at = rest.find(['Z', '+', '-'])?;
        let (clock, zone) = rest.split_at(zone_at);
        let offset_minutes = parse_offset(zone)?;
        let mut parts = clock.split(':');
        let hour = digits(parts.next()?, 2)?;
        let minute = digits(parts.next()?, 2)?;
        let (second, millis) = match parts.next() {
            None => (0, 0),
            Some(sec) => {
                let (whole, fraction) = match sec.split_once('.') {
                    Some((w, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                        (w, f)
                    }
                    Some(_) => return None,
                    None => (sec, ""),
                };
                let first_three: String = fraction.chars().chain("000".chars()).take(3).collect();
                (digits(whole, 2)?, first_three.parse::<u32>().ok()?)
            }
        };
        if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let local_ms = date.days_since_epoch() * MS_PER_DAY
            + i64::from(hour) * 3_600_000
            + i64::from(minute) * 60_000
            + i64::from(second) * 1000
            + i64::from(millis);
        // Local time = UTC + offset, so UTC = local time - offset.
        Some(Instant(local_ms - offset_minutes * 60_000))
    }

    /// The UTC calendar date of the instant.
    pub fn utc_date(self) -> Date {
        Date::from_days_since_epoch(self.0.div_euclid(MS_PER_DAY))
    }

    /// As Salesforce returns a datetime: UTC with milliseconds, `2026-01-05T08:00:00.000+0000`.
    pub fn to_salesforce(self) -> String {
        let date = self.utc_date();
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        format!("{}T{h:02}:{m:02}:{s:02}.{ms:03}+0000", date.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sf(s: &str) -> Option<String> {
        Instant::parse(s).map(Instant::to_salesforce)
    }

    #[test]
    fn dates_must_exist_in_the_calendar() {
        assert_eq!(
            Date::parse("2024-02-29").map(Date::to_text).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(Date::parse("2026-02-29"), None, "2026 is not a leap year");
        assert_eq!(
            Date::parse("1900-02-29"),
            None,
            "centuries are leap only every 400 years"
        );
        assert!(Date::parse("2000-02-29").is_some());
        for bad in [
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-1-5",
            "26-01-05",
            "2026/01/05",
            "",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_are_subtracted_to_reach_utc() {
        assert_eq!(
            sf("2026-01-05T10:00:00+02:00").as_deref(),
            Some("2026-01-05T08:00:00.000+0000")
        );
        assert_eq!(
            sf("2026-01-05T10:00:00-0500").as_deref(),
            Some("2026-01-05T15:00:00.000+0000")
        );
        assert_eq!(
            sf("2026-01-05T10:00Z").as_deref(),
            Some("2026-01-05T10:00:00.000+0000")
        );
        assert_eq!(
            sf("2026-01-05 10:00:00+05:30").as_deref(),
            Some("2026-01-05T04:30:00.000+0000")
        );
        // Across midnight and a year boundary, both ways.
        assert_eq!(
            sf("2026-01-01T01:00:00+03:00").as_deref(),
            Some("2025-12-31T22:00:00.000+0000")
        );
        assert_eq!(
            sf("2025-12-31T20:00:00-08:00").as_deref(),
            Some("2026-01-01T04:00:00.000+0000")
        );
        // Before 1970.
        assert_eq!(
            sf("1969-12-31T23:59:59.999Z").as_deref(),
            Some("1969-12-31T23:59:59.999+0000")
        );
        assert_eq!(Instant::parse("1970-01-01T00:00:00Z"), Some(Instant(0)));
    }

    #[test]
    fn daylight_saving_is_the_offset_the_value_carries() {
        // US Eastern springs forward on 2026-03-08 at 02:00: 01:30 EST and 03:30 EDT are one
        // hour apart, not two.
        let before = Instant::parse("2026-03-08T01:30:00-05:00").unwrap();
        let after = Instant::parse("2026-03-08T03:30:00-04:00").unwrap();
        assert_eq!(after.0 - before.0, 3_600_000);
        // It falls back on 2026-11-01: the same wall-clock 01:30 happens twice, an hour apart.
        let first = Instant::parse("2026-11-01T01:30:00-04:00").unwrap();
        let second = Instant::parse("2026-11-01T01:30:00-05:00").unwrap();
        assert_eq!(first.to_salesforce(), "2026-11-01T05:30:00.000+0000");
        assert_eq!(second.to_salesforce(), "2026-11-01T06:30:00.000+0000");
        // Central European summer time ends 2026-10-25.
        assert_eq!(
            sf("2026-10-25T02:30:00+02:00").as_deref(),
            Some("2026-10-25T00:30:00.000+0000")
        );
        assert_eq!(
            sf("2026-10-25T02:30:00+01:00").as_deref(),
            Some("2026-10-25T01:30:00.000+0000")
        );
    }

    #[test]
    fn fractions_keep_milliseconds_and_bad_forms_are_refused() {
        assert_eq!(
            sf("2026-01-05T10:00:00.5Z").as_deref(),
            Some("2026-01-05T10:00:00.500+0000")
        );
        assert_eq!(
            sf("2026-01-05T10:00:00.123456-01:00").as_deref(),
            Some("2026-01-05T11:00:00.123+0000")
        );
        for bad in [
            "2026-01-05T10:00:00", // no zone: which instant is unknown
            "2026-01-05",          // a date, not a date-time
            "2026-01-05T24:00:00Z",
            "2026-01-05T10:60:00Z",
            "2026-01-05T10:00:60Z",
            "2026-01-05T10:00:00+15:00", // no such offset
            "2026-01-05T10:00:00+02",    // hours only
            "2026-01-05T10:00:00.Z",
            "2026-01-05T10:00:00 Z",
            "2026-02-30T10:00:00Z",
            "2026-01-05X10:00:00Z",
        ] {
            assert_eq!(Instant::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_utc_date_of_an_instant() {
        let d = |s: &str| Instant::parse(s).unwrap().utc_date().to_text();
        assert_eq!(d("2026-01-05T23:30:00-05:00"), "2026-01-06");
        assert_eq!(d("2026-01-06T00:30:00+02:00"), "2026-01-05");
        assert_eq!(d("2024-02-28T23:00:00-02:00"), "2024-02-29");
        assert_eq!(d("2024-03-01T00:30:00+01:00"), "2024-02-29");
    }
}
