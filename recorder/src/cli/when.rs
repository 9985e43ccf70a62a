//! `--since` / `--until` values: absolute times (RFC 3339, a date, a local
//! date and time) and relative ones (`2h`, `3d`, `1w 2d`, meaning that long
//! ago), parsed with jiff rather than by hand.

use jiff::{civil, tz::TimeZone, Span, Timestamp, ZonedDateTime};

pub const FORMS: &str = "RFC 3339 (2026-11-25T08:00:00Z), a date (2026-11-25), a local date and time \
(2026-11-25 08:00), `now`, `today`, `yesterday`, or a span ago (30m, 2h, 3d, 1w)";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a time: use {FORMS}")]
pub struct WhenError {
    pub text: String,
}

/// The instant `text` names, relative to `now` (in `now`'s time zone).
pub fn parse(text: &str, now: &ZonedDateTime) -> Result<Timestamp, WhenError> {
    let err = || WhenError { text: text.to_owned() };
    let trimmed = text.trim();
    let start_of = |date: civil::Date| date.to_zoned_datetime(now.time_zone().clone()).map(|z| z.timestamp());
    match trimmed {
        "now" => return Ok(now.timestamp()),
        "today" => return start_of(now.date()).map_err(|_| err()),
        "yesterday" => {
            let date = now.date().yesterday().map_err(|_| err())?;
            return start_of(date).map_err(|_| err());
        }
        _ => {}
    }
    if let Ok(ts) = trimmed.parse::<Timestamp>() {
        return Ok(ts);
    }
    // Date and time before a bare date: jiff's date parser would accept
    // `2026-11-24 07:15` and drop the time.
    if let Ok(dt) = trimmed.replacen(' ', "T", 1).parse::<civil::DateTime>() {
        return dt.to_zoned_datetime(now.time_zone().clone()).map(|z| z.timestamp()).map_err(|_| err());
    }
    if let Ok(date) = trimmed.parse::<civil::Date>() {
        return start_of(date).map_err(|_| err());
    }
    // A span is how long ago: `2h`, `3d`, `1w 2d` (jiff's friendly format).
    let span: Span = trimmed.trim_start_matches('-').parse().map_err(|_| err())?;
    now.checked_sub(span).map(|z| z.timestamp()).map_err(|_| err())
}

/// As [`parse`], against the system clock and time zone.
pub fn parse_now(text: &str) -> Result<Timestamp, WhenError> {
    parse(text, &Timestamp::now().to_zoned_datetime(TimeZone::system()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> ZonedDateTime {
        "2026-11-25T08:30:00+00:00[UTC]".parse().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn absolute_and_relative_forms() {
        let cases = [
            ("2026-11-24T07:00:00Z", "2026-11-24T07:00:00Z"),
            ("2026-11-24T09:00:00+02:00", "2026-11-24T07:00:00Z"),
            ("2026-11-24", "2026-11-24T00:00:00Z"),
            ("2026-11-24 07:15", "2026-11-24T07:15:00Z"),
            ("now", "2026-11-25T08:30:00Z"),
            ("today", "2026-11-25T00:00:00Z"),
            ("yesterday", "2026-11-24T00:00:00Z"),
            ("2h", "2026-11-25T06:30:00Z"),
            ("30m", "2026-11-25T08:00:00Z"),
            ("3d", "2026-11-22T08:30:00Z"),
            ("1w 1d", "2026-11-17T08:30:00Z"),
            ("-2h", "2026-11-25T06:30:00Z"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text, &now()), Ok(at(want)), "{text}");
        }
    }

    #[test]
    fn nonsense_names_the_accepted_forms() {
        let err = parse("last tuesday", &now()).unwrap_err();
        assert!(err.to_string().contains("RFC 3339") && err.to_string().contains("2h"), "{err}");
        assert!(parse("", &now()).is_err());
    }
}
