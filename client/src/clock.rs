//! The core's clock: dates and times for notes, signatures, audit entries
//! and listings. Every operation reads the time here, not in a front end,
//! so the CLI and the web page stamp a note alike.
//!
//! Instants are kept in UTC (Unix seconds, or RFC 3339 with `Z` where text
//! is stored), so every device agrees on them. What a person types and
//! reads is their local time, from the system's time-zone database (`TZ`,
//! else the system's zone): a session date defaults to today where they
//! are, `2026-12-31` as an expiry means the end of that local day, and
//! times print in local time with the zone's name.

use casebook_shared::clock::Clock;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

fn instant(unix: u64) -> Timestamp {
    Timestamp::from_second(i64::try_from(unix).unwrap_or(i64::MAX)).unwrap_or(Timestamp::MAX)
}

fn unix(ts: Timestamp) -> Option<u64> {
    u64::try_from(ts.as_second()).ok()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time: what is stored and what JSON
/// output carries.
pub fn rfc3339(unix: u64) -> String {
    instant(unix).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now by the system clock, as RFC 3339 in UTC (for a front end; the
/// core reads its home's clock).
pub fn now() -> String {
    rfc3339(Clock::system().now())
}

/// Today's date where the person is, by the system clock.
pub fn today() -> String {
    date(Clock::system().now())
}

/// The local date of an instant.
pub fn date(unix: u64) -> String {
    date_in(unix, &TimeZone::system())
}

fn date_in(unix: u64, tz: &TimeZone) -> String {
    instant(unix)
        .to_zoned_datetime(tz.clone())
        .date()
        .to_string()
}

/// An instant in local time with the zone, for people to read:
/// `2026-12-01 18:05 CET`.
pub fn local(unix: u64) -> String {
    local_in(unix, &TimeZone::system())
}

/// An end (a share's expiry) in local time. `--expires 2026-12-31` is
/// stored as the first second of the next day, so an end at a local
/// midnight reads as the end of the day before ("the end of 2026-12-31"),
/// the day the person wrote, not the next one.
pub fn local_until(unix: u64) -> String {
    local_until_in(unix, &TimeZone::system())
}

fn local_until_in(unix: u64, tz: &TimeZone) -> String {
    let at = instant(unix).to_zoned_datetime(tz.clone());
    let midnight = at
        .start_of_day()
        .is_ok_and(|s| s.timestamp() == at.timestamp());
    match at.date().yesterday() {
        Ok(day) if midnight => format!("the end of {day}"),
        _ => local_in(unix, tz),
    }
}

fn local_in(unix: u64, tz: &TimeZone) -> String {
    instant(unix)
        .to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// A stored RFC 3339 instant (a signature's, an addendum's) in local time;
/// text that is not one is shown as it is.
pub fn local_text(stored: &str) -> String {
    match stored.parse::<Timestamp>().ok().and_then(unix) {
        Some(u) => local(u),
        None => stored.to_string(),
    }
}

/// The start of a local day, `YYYY-MM-DD`; or an RFC 3339 instant.
pub fn parse_instant(s: &str) -> Option<u64> {
    parse_in(s, &TimeZone::system(), false)
}

/// The end of a local day, `YYYY-MM-DD` (the first second of the next
/// day: "until 2026-12-31" includes all of it); or an RFC 3339 instant.
pub fn parse_until(s: &str) -> Option<u64> {
    parse_in(s, &TimeZone::system(), true)
}

fn parse_in(s: &str, tz: &TimeZone, end_of_day: bool) -> Option<u64> {
    let s = s.trim();
    if s.contains('T') {
        // An instant must say its offset: a bare local time is ambiguous
        // across devices in different zones.
        return s.parse::<Timestamp>().ok().and_then(unix);
    }
    let day: Date = s.parse().ok()?;
    let day = if end_of_day {
        day.tomorrow().ok()?
    } else {
        day
    };
    let start: ZonedDateTime = day
        .to_zoned_datetime(tz.clone())
        .ok()?
        .start_of_day()
        .ok()?;
    unix(start.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).expect("the system's time-zone database has it")
    }

    #[test]
    fn instants_are_utc_and_days_are_local() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        let utc = TimeZone::UTC;
        assert_eq!(
            parse_in("2026-11-18T11:06:40Z", &utc, false),
            Some(1_795_000_000)
        );
        assert_eq!(parse_in("2000-02-29", &utc, false), Some(951_782_400));
        // The end of 2026-12-31 in Auckland (UTC+13 in summer) is
        // 2026-12-31T11:00:00Z.
        let nz = zone("Pacific/Auckland");
        let end = parse_in("2026-12-31", &nz, true).unwrap();
        // And reads back as the day written, not the next.
        assert_eq!(local_until_in(end, &nz), "the end of 2026-12-31");
        assert_eq!(
            local_until_in(end + 60, &nz),
            local_in(end + 60, &nz),
            "an end within a day is shown as it is"
        );
        assert_eq!(rfc3339(end), "2026-12-31T11:00:00Z");
        assert_eq!(local_in(end, &nz), "2027-01-01 00:00 NZDT");
        // Late evening in New York is the next day in UTC, not locally.
        let ny = zone("America/New_York");
        let evening = parse_in("2026-12-01T03:30:00Z", &ny, false).unwrap();
        assert_eq!(date_in(evening, &ny), "2026-11-30");
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "soon",
            "2026-11-18T25:00:00Z",
            "2026-11-18T10:00:00",
        ] {
            assert_eq!(parse_in(bad, &utc, false), None, "{bad}");
        }
    }
}
