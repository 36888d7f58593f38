//! Seconds since 1970 for people: RFC 3339 UTC and "3 min ago".

/// `2026-12-03T12:00:00Z`.
pub fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How far `at` is from `now`: `3 min ago`, `in 2 h 5 min`.
pub fn ago(at: u64, now: u64) -> String {
    let span = |secs: u64| {
        if secs < 120 {
            format!("{secs} s")
        } else if secs < 7200 {
            format!("{} min", secs / 60)
        } else if secs < 172_800 {
            format!("{} h {} min", secs / 3600, secs % 3600 / 60)
        } else {
            format!("{} days", secs / 86_400)
        }
    };
    if at <= now {
        format!("{} ago", span(now - at))
    } else {
        format!("in {}", span(at - now))
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_spans() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_764_763_200), "2025-12-03T12:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(ago(100, 130), "30 s ago");
        assert_eq!(ago(1000, 100), "in 15 min");
        assert_eq!(ago(0, 90_000), "25 h 0 min ago");
    }
}
