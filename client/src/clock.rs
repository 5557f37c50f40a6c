//! The core's clock: dates and times for notes, signatures, audit entries
//! and listings. Every operation reads the time here, not in a front end,
//! so the CLI and the web page stamp a note alike. (Still UTC and
//! hand-written; local time with a time-zone database is the CLI issue's.)

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

/// Days since 1970-01-01 of a civil date (the inverse of `civil`).
fn days(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC) to Unix seconds.
pub fn parse_instant(s: &str) -> Option<u64> {
    let s = s.trim();
    let (date, clock) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut it = date.split('-');
    let (y, m, d): (i64, u32, u32) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    if it.next().is_some() || !(1..=12).contains(&m) || d == 0 || d > 31 {
        return None;
    }
    let day = days(y, m, d);
    if civil(day) != (y, m, d) {
        return None;
    }
    let secs = match clock {
        None => 0,
        Some(t) => {
            let p: Vec<u64> = t
                .split(':')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            match p.as_slice() {
                [h, mi, se] if *h < 24 && *mi < 60 && *se < 60 => h * 3600 + mi * 60 + se,
                [h, mi] if *h < 24 && *mi < 60 => h * 3600 + mi * 60,
                _ => return None,
            }
        }
    };
    u64::try_from(day).ok().map(|d| d * 86_400 + secs)
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
    rfc3339(crate::home::now())
}

/// Today's date.
pub fn today() -> String {
    date(crate::home::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(parse_instant("2026-11-18T11:06:40Z"), Some(1_795_000_000));
        assert_eq!(parse_instant("2000-02-29"), Some(951_782_400));
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "soon",
            "2026-11-18T25:00:00Z",
            "2026-11-18T10:00:00",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
