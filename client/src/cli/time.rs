//! Dates and times for notes and listings, without a calendar crate: the
//! CLI only needs today's date and an RFC 3339 timestamp in UTC.

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of a Unix time, UTC.
pub fn date(unix: u64) -> String {
    let (y, m, d) = civil((unix / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
pub fn rfc3339(unix: u64) -> String {
    let s = unix % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(unix),
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Now, as RFC 3339.
pub fn now() -> String {
    rfc3339(casebook::home::now())
}

/// Today's date.
pub fn today() -> String {
    date(casebook::home::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
