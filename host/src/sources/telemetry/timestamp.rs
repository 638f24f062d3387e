//! The Telemetry API's timestamps: RFC 3339 in UTC with milliseconds
//! (`2022-10-21T14:05:03.165Z`), as Lambda writes them in `time` and in span
//! `start`s.
//!
//! Formatting is exact to the millisecond; parsing is lenient about the
//! fraction's length and accepts a numeric offset, and returns `None` (never
//! panics) on anything else, since timestamps arrive from outside.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a wall-clock time as Lambda does: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use pyrometer::sources::telemetry::format_timestamp;
/// let t = UNIX_EPOCH + Duration::from_millis(1_666_361_103_165);
/// assert_eq!(format_timestamp(t), "2022-10-21T14:05:03.165Z");
/// ```
pub fn format_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let millis = since.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses an RFC 3339 timestamp into milliseconds since the Unix epoch.
///
/// ```
/// use pyrometer::sources::telemetry::parse_timestamp_ms;
/// assert_eq!(parse_timestamp_ms("2022-10-21T14:05:03.165Z"), Some(1_666_361_103_165.0));
/// assert_eq!(parse_timestamp_ms("yesterday"), None);
/// ```
pub fn parse_timestamp_ms(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut fraction_ms = 0.0;
    if let Some((b'.', tail)) = rest.split_first() {
        let len = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        let mut scale = 100.0;
        for &c in &tail[..len] {
            fraction_ms += f64::from(c - b'0') * scale;
            scale /= 10.0;
        }
        rest = &tail[len..];
    }
    let offset_secs: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            let secs = h * 3600 + m * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs as f64 * 1000.0 + fraction_ms)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_millisecond() {
        for ms in [0u64, 951_782_400_000, 1_666_361_103_165, 4_102_444_799_999] {
            let text = format_timestamp(UNIX_EPOCH + Duration::from_millis(ms));
            assert_eq!(parse_timestamp_ms(&text), Some(ms as f64), "{text}");
        }
    }

    #[test]
    fn accepts_offsets_and_long_fractions() {
        assert_eq!(
            parse_timestamp_ms("2022-10-21T16:05:03.165123+02:00"),
            Some(1_666_361_103_165.123)
        );
        assert_eq!(
            parse_timestamp_ms("2022-10-21T14:05:03Z"),
            Some(1_666_361_103_000.0)
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "2022",
            "2022-13-01T00:00:00Z",
            "2022-10-21T14:05:03.Z",
            "２０２２-10-21T14:05:03Z",
            "2022-10-21T14:05:03.165",
        ] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad}");
        }
    }
}
