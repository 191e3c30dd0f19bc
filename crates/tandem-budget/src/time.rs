//! Budget periods and the calendar arithmetic behind them, in UTC, from Unix milliseconds.
//!
//! Time is a parameter (`now_ms`, milliseconds since 1970-01-01T00:00:00Z): this crate never reads a
//! clock. Dates use the proleptic Gregorian calendar through Howard Hinnant's `days_from_civil` and
//! `civil_from_days` algorithms (<https://howardhinnant.github.io/date_algorithms.html>): a year is
//! shifted to start in March so that the leap day falls at its end, and days are counted in 400-year
//! eras of 146,097 days. Leap seconds do not exist in Unix time, so a day is always 86,400,000 ms.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Milliseconds in a rate-limit window.
pub(crate) const MINUTE_MS: i64 = 60_000;

/// How long a budget's allowance lasts before it resets: a UTC calendar day or month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// From 00:00:00Z to the next midnight.
    Day,
    /// From the first of the month, 00:00:00Z, to the first of the next.
    Month,
}

impl Period {
    /// The start of the window containing `now_ms`.
    pub fn window_start(self, now_ms: i64) -> i64 {
        let days = now_ms.div_euclid(DAY_MS);
        match self {
            Period::Day => days.saturating_mul(DAY_MS),
            Period::Month => {
                let (y, m, _) = civil_from_days(days);
                days_from_civil(y, m, 1).saturating_mul(DAY_MS)
            }
        }
    }

    /// The end of the window that starts at `start` (the start of the next one).
    pub fn window_end(self, start: i64) -> i64 {
        match self {
            Period::Day => start.saturating_add(DAY_MS),
            Period::Month => {
                let (y, m, _) = civil_from_days(start.div_euclid(DAY_MS));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1).saturating_mul(DAY_MS)
            }
        }
    }

    /// The start of the window before the one that starts at `start`.
    pub fn previous_start(self, start: i64) -> i64 {
        self.window_start(start.saturating_sub(1))
    }

    /// `today` or `this month`, for messages.
    pub(crate) fn this(self) -> &'static str {
        match self {
            Period::Day => "today",
            Period::Month => "this month",
        }
    }
}

/// Days since 1970-01-01 of the date `y-m-d` (month 1–12, day 1–31).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((m + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date `(year, month 1–12, day 1–31)` that is `days` days after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are in range by construction; the fallbacks are never taken.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// `ms` as RFC 3339 in UTC with second precision, e.g. `2026-11-30T00:00:00Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
