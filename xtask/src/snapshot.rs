//! The advisory snapshot's age, read from the `date:` line of its SNAPSHOT.txt.
//!
//! cargo-deny judges staleness by the git commit time of its database, which for a copy committed
//! moments ago is always "fresh". So the date the snapshot was taken is read from the file instead.

use anyhow::{Context, Result, bail};

/// Past this age the audit warns.
pub(crate) const WARN_DAYS: i64 = 90;
/// Past this age the audit fails.
pub(crate) const MAX_DAYS: i64 = 180;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// How old a snapshot is relative to today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh { age_days: i64 },
    Aging { age_days: i64 },
    Stale { age_days: i64 },
    Future { days_ahead: i64 },
}

/// Reads the `date: YYYY-MM-DD` line.
pub(crate) fn date(snapshot_txt: &str) -> Result<Date> {
    let line = snapshot_txt
        .lines()
        .find_map(|l| l.strip_prefix("date:"))
        .context("no `date:` line")?
        .trim();
    let mut parts = line.splitn(3, '-');
    let mut next = |what: &str| -> Result<&str> {
        parts
            .next()
            .with_context(|| format!("`date: {line}` has no {what}"))
    };
    let (y, m, d) = (next("year")?, next("month")?, next("day")?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        bail!("`date: {line}` is not YYYY-MM-DD");
    }
    let date = Date {
        year: y.parse().with_context(|| format!("bad year in `{line}`"))?,
        month: m
            .parse()
            .with_context(|| format!("bad month in `{line}`"))?,
        day: d.parse().with_context(|| format!("bad day in `{line}`"))?,
    };
    if !(1..=12).contains(&date.month) || date.day < 1 || date.day > days_in_month(date) {
        bail!("`date: {line}` is not a calendar date");
    }
    Ok(date)
}

fn days_in_month(d: Date) -> u32 {
    let leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
    match d.month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `d` (proleptic Gregorian; H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(d: Date) -> i64 {
    let y = if d.month <= 2 { d.year - 1 } else { d.year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(d.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whole days since the Unix epoch for a timestamp in seconds.
pub(crate) fn days_since_epoch(secs: u64) -> i64 {
    i64::try_from(secs / 86_400).unwrap_or(i64::MAX)
}

/// Classifies a snapshot taken on `date` as seen on day `today` (days since the epoch, UTC).
pub(crate) fn freshness(date: Date, today: i64) -> Freshness {
    let age_days = today - days_from_civil(date);
    match age_days {
        a if a < -1 => Freshness::Future { days_ahead: -a },
        a if a > MAX_DAYS => Freshness::Stale { age_days: a },
        a if a > WARN_DAYS => Freshness::Aging { age_days: a },
        a => Freshness::Fresh { age_days: a.max(0) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        date(&format!("date: {s}\n")).unwrap()
    }

    #[test]
    fn epoch_arithmetic() {
        assert_eq!(days_from_civil(d("1970-01-01")), 0);
        assert_eq!(days_from_civil(d("2000-03-01")), 11_017);
        assert_eq!(days_from_civil(d("2026-08-21")), 20_686);
        assert_eq!(days_since_epoch(20_686 * 86_400 + 86_399), 20_686);
    }

    #[test]
    fn thresholds() {
        let snap = d("2026-08-21");
        let day0 = days_from_civil(snap);
        assert_eq!(freshness(snap, day0), Freshness::Fresh { age_days: 0 });
        assert_eq!(
            freshness(snap, day0 + 90),
            Freshness::Fresh { age_days: 90 }
        );
        assert_eq!(
            freshness(snap, day0 + 91),
            Freshness::Aging { age_days: 91 }
        );
        assert_eq!(
            freshness(snap, day0 + 180),
            Freshness::Aging { age_days: 180 }
        );
        assert_eq!(
            freshness(snap, day0 + 181),
            Freshness::Stale { age_days: 181 }
        );
        assert_eq!(freshness(snap, day0 - 1), Freshness::Fresh { age_days: 0 });
        assert_eq!(
            freshness(snap, day0 - 5),
            Freshness::Future { days_ahead: 5 }
        );
        // 2026-11-28 is 99 days after the shipped snapshot: a warning, not a failure.
        assert_eq!(
            freshness(snap, days_from_civil(d("2026-11-28"))),
            Freshness::Aging { age_days: 99 }
        );
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in [
            "",
            "commit: abc\n",
            "date: 2026-8-21\n",
            "date: 2026-02-30\n",
            "date: 2026-13-01\n",
            "date: yesterday\n",
            "date: 2026-08-21T00:00\n",
        ] {
            assert!(date(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            date("x\ndate: 2024-02-29\n").unwrap().to_string(),
            "2024-02-29"
        );
    }
}
