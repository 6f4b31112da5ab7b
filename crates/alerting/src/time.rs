//! UTC calendar arithmetic for message timestamps and weekly maintenance windows, small
//! enough that a date library is not worth its weight.

use prophasis_model::Millis;

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
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

pub(crate) const DAY_MS: i64 = 86_400_000;

/// `2026-11-26T11:04:13.123Z`, the RFC 3339 form RFC 5424 asks for.
pub(crate) fn rfc3339(at: Millis) -> String {
    let days = at.div_euclid(DAY_MS);
    let ms = at.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Monday = 0 … Sunday = 6, for the UTC day containing `at`.
pub(crate) fn weekday(at: Millis) -> u8 {
    // 1970-01-01 was a Thursday.
    ((at.div_euclid(DAY_MS) + 3).rem_euclid(7)) as u8
}

/// Start of the UTC day containing `at`.
pub(crate) fn day_start(at: Millis) -> Millis {
    at.div_euclid(DAY_MS) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_weekdays() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z, a Thursday.
        let t = 1_709_210_096_789;
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(weekday(t), 3);
        assert_eq!(weekday(0), 3);
        assert_eq!(day_start(t) % DAY_MS, 0);
    }
}
