//! Dates of the proleptic Gregorian calendar as days since 1970-01-01 and
//! back (Howard Hinnant's `days_from_civil` and `civil_from_days`), for
//! timestamps read from and written into JSON without chrono's general
//! conversions.

/// Days from 1970-01-01 to `year`-`month`-`day` (a valid date).
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year, month and day `days` after 1970-01-01.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate};

    use super::*;

    #[test]
    fn days_and_dates_agree_with_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut date = NaiveDate::from_ymd_opt(-1, 12, 25).unwrap();
        let last = NaiveDate::from_ymd_opt(10_001, 1, 10).unwrap();
        while date <= last {
            let days = (date - epoch).num_days();
            let civil = (i64::from(date.year()), date.month(), date.day());
            assert_eq!(days_from_civil(civil.0, civil.1, civil.2), days, "{date}");
            assert_eq!(civil_from_days(days), civil, "{date}");
            date = date.succ_opt().unwrap();
        }
    }
}
