//! How a value of the document becomes a number: the transforms a metric may name (`regex`,
//! `parse`, `units`, `scale`). Pure functions of text, no JSON: the caller hands in the string
//! the document holds (or the text of a number) and gets a number or nothing.

use std::borrow::Cow;
use std::fmt;

/// How a string becomes a number (`"parse"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// `" 12.5 "`: a number, spaces around it allowed (the default).
    Number,
    /// `"1,234,567.5"`: digits in groups of three separated by commas.
    Thousands,
    /// `"12.5%"` or `"12.5"`: a percentage, divided by 100 (numbers too).
    Percent,
    /// `"2024-05-01T12:00:00.5+02:00"`: an RFC 3339 / ISO 8601 time, as Unix seconds.
    Timestamp,
    /// `"1h2m3.5s"` (Go) or `"01:02:03"`, `"1 day, 2:03:04"`: seconds.
    Duration,
}

impl Parse {
    pub const NAMES: &'static str = "number, thousands, percent, timestamp, duration";

    pub fn from_name(name: &str) -> Option<Parse> {
        Some(match name {
            "number" => Parse::Number,
            "thousands" => Parse::Thousands,
            "percent" => Parse::Percent,
            "timestamp" => Parse::Timestamp,
            "duration" => Parse::Duration,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Parse::Number => "number",
            Parse::Thousands => "thousands",
            Parse::Percent => "percent",
            Parse::Timestamp => "timestamp",
            Parse::Duration => "duration",
        }
    }

    /// The number `text` stands for, if it is written as this parse expects.
    pub fn apply(self, text: &str) -> Option<f64> {
        self.read(text)
            .map(|reading| finish(reading, &[self.factor()]))
    }

    /// Reads the number in `text`, before the factor of the parse (percent) and others.
    pub fn read(self, text: &str) -> Option<Reading<'_>> {
        match self {
            Parse::Number => decimal(text.trim()),
            Parse::Thousands => thousands(text),
            Parse::Percent => {
                let text = text.trim();
                decimal(text.strip_suffix('%').unwrap_or(text).trim_end())
            }
            Parse::Timestamp => timestamp(text).map(Reading::Value),
            Parse::Duration => duration(text).map(Reading::Value),
        }
    }

    /// The factor this parse applies: 0.01 for percent.
    pub fn factor(self) -> Option<Factor> {
        (self == Parse::Percent).then_some(Factor(0.01))
    }

    /// What a string that failed is not, for the error message.
    pub fn expected(self) -> &'static str {
        match self {
            Parse::Number => "not a number",
            Parse::Thousands => "not a number with thousands separators (1,234,567)",
            Parse::Percent => "not a percentage (12.5%)",
            Parse::Timestamp => "not an RFC 3339 timestamp (2024-05-01T12:00:00Z)",
            Parse::Duration => "not a duration (1h2m3.5s or 01:02:03)",
        }
    }
}

/// A factor a number is multiplied by (`scale`, or a unit's). One that is the reciprocal of a
/// whole number divides by it instead, so that 1234 × 0.001 gives 1.234, not 1.2340000000000002.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Factor(pub f64);

impl Factor {
    /// The exponent, when the factor is a power of ten (1000, 0.001).
    fn power_of_ten(self) -> Option<i32> {
        (-22..=22).find(|&exponent| 10f64.powi(exponent) == self.0)
    }

    pub fn apply(self, value: f64) -> f64 {
        let Factor(factor) = self;
        if factor.abs() < 1.0 {
            let divisor = (1.0 / factor).round();
            if (1.0 / factor - divisor).abs() <= 1e-9 * divisor.abs() {
                return value / divisor;
            }
        }
        value * factor
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        crate::exposition::write_value(self.0, &mut out);
        f.write_str(&out)
    }
}

/// A number read from text, before the factors that apply to it.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading<'t> {
    /// Decimal text, which Rust's float syntax reads (`12.3`, `1e5`, `NaN`).
    Decimal(Cow<'t, str>),
    /// A value computed from the text (a time, a duration).
    Value(f64),
}

/// The value of `reading` times `factors`. Powers of ten move the decimal point of the text
/// before it is read, so that the value is rounded once: 12.3 % is 0.123, not
/// 0.12300000000000001 as 12.3 / 100 would be.
pub fn finish(reading: Reading, factors: &[Option<Factor>]) -> f64 {
    let mut shift = 0;
    let mut others = Vec::new();
    for factor in factors.iter().flatten() {
        match factor.power_of_ten() {
            Some(exponent) => shift += exponent,
            None => others.push(*factor),
        }
    }
    let value = match reading {
        Reading::Value(value) => value * 10f64.powi(shift),
        Reading::Decimal(text) if shift == 0 => text.parse().unwrap_or(f64::NAN),
        Reading::Decimal(text) => {
            let (mantissa, exponent) = match text.find(['e', 'E']) {
                Some(at) => (&text[..at], text[at + 1..].parse::<i32>().unwrap_or(0)),
                None => (&*text, 0),
            };
            if mantissa.bytes().any(|b| b.is_ascii_digit()) {
                let shifted = format!("{mantissa}e{}", exponent.saturating_add(shift));
                shifted.parse().unwrap_or(f64::NAN)
            } else {
                // NaN and infinities.
                text.parse::<f64>().unwrap_or(f64::NAN) * 10f64.powi(shift)
            }
        }
    };
    others
        .iter()
        .fold(value, |value, factor| factor.apply(value))
}

/// `text` as a number followed by one of `units` (longest first; `""` for none): the number,
/// read by `parse` (number or thousands), and the unit's factor.
pub fn with_units<'t>(
    text: &'t str,
    units: &[(String, Factor)],
    parse: Parse,
) -> Option<(Reading<'t>, Factor)> {
    let text = text.trim();
    units.iter().find_map(|(unit, factor)| {
        let number = text.strip_suffix(unit.as_str())?.trim_end();
        let starts_as_number = number
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b"+-.".contains(&b));
        starts_as_number
            .then(|| parse.read(number))
            .flatten()
            .map(|reading| (reading, *factor))
    })
}

/// Text that Rust's float syntax reads.
fn decimal(text: &str) -> Option<Reading<'_>> {
    text.parse::<f64>()
        .ok()
        .map(|_| Reading::Decimal(Cow::Borrowed(text)))
}

/// Digits grouped by commas in threes (`"1,234,567.5"`), or none at all (`"999"`).
fn thousands(text: &str) -> Option<Reading<'_>> {
    let text = text.trim();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let whole = unsigned.split('.').next().unwrap_or("");
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or("");
    let digits = |g: &str| g.bytes().all(|b| b.is_ascii_digit());
    let grouped = !first.is_empty()
        && first.len() <= 3
        && digits(first)
        && groups.all(|g| g.len() == 3 && digits(g));
    if whole.contains(',') && !grouped {
        return None;
    }
    if !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits = text.replace(',', "");
    digits.parse::<f64>().ok()?;
    Some(Reading::Decimal(Cow::Owned(digits)))
}

/// Reads `n` ASCII digits at the start of `s`: the number and the rest.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// Reads a fraction `.5` or `,5` at the start of `s` (ISO 8601 allows both): its value (0 when
/// there is none) and the rest.
fn fraction(s: &str) -> Option<(f64, &str)> {
    let Some(rest) = s.strip_prefix(['.', ',']) else {
        return Some((0.0, s));
    };
    let end = rest.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return None;
    }
    let value: f64 = format!("0.{}", &rest[..end]).parse().ok()?;
    Some((value, &rest[end..]))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An RFC 3339 / ISO 8601 time as Unix seconds: `2024-05-01T12:00:00Z`, with a fraction
/// (`.5` or `,5`), an offset (`+02:00`, `+0200`, `+02`), a space or `t` for the `T`, minutes
/// without seconds, or a date alone (midnight). Without a zone, UTC.
fn timestamp(text: &str) -> Option<f64> {
    let s = text.trim();
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(s.strip_prefix('-')?, 2)?;
    let (day, s) = digits(s.strip_prefix('-')?, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let mut seconds = days * 86_400;
    let mut fract = 0.0;
    let mut s = s;
    if let Some(rest) = s.strip_prefix(['T', 't', ' ']) {
        let (hour, rest) = digits(rest, 2)?;
        let (minute, rest) = digits(rest.strip_prefix(':')?, 2)?;
        let (second, rest) = match rest.strip_prefix(':') {
            Some(rest) => digits(rest, 2)?,
            None => (0, rest),
        };
        let (f, rest) = fraction(rest)?;
        // 60: a leap second.
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        seconds += i64::from(hour * 3600 + minute * 60 + second);
        fract = f;
        s = rest;
    }
    let offset = match s {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match s.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (hours, rest) = digits(&s[1..], 2)?;
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            let (minutes, rest) = if rest.is_empty() {
                (0, rest)
            } else {
                digits(rest, 2)?
            };
            if !rest.is_empty() || hours > 23 || minutes > 59 {
                return None;
            }
            sign * i64::from(hours * 3600 + minutes * 60)
        }
    };
    Some((seconds - offset) as f64 + fract)
}

/// A duration in seconds: Go's form (`1h2m3.5s`, `250ms`, `-1.5h`; units ns, us, µs, ms, s, m,
/// h, and d and w as RouterOS writes them: `2w1d3h`), or a clock (`01:02:03`, `1:02:03.5`) with days before it as `1-`, `1.` or
/// `1 day, ` / `2 days, ` (Python's timedelta).
fn duration(text: &str) -> Option<f64> {
    let s = text.trim();
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    let value = if s.contains(':') {
        clock(s)?
    } else {
        go_duration(s)?
    };
    Some(sign * value)
}

fn go_duration(s: &str) -> Option<f64> {
    if s == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let seconds: f64 = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            _ => return None,
        };
        total += if seconds < 1.0 {
            number / (1.0 / seconds).round()
        } else {
            number * seconds
        };
        rest = &rest[unit_end..];
    }
    Some(total)
}

fn clock(s: &str) -> Option<f64> {
    // Days first: "1-02:03:04", "1.02:03:04", "1 day, 2:03:04", "2 days, 2:03:04".
    let (days, s) = match s.find(['-', '.', ',']) {
        Some(at) if !s[..at].contains(':') => {
            let (days, rest) = s.split_at(at);
            let days = days
                .strip_suffix(" days")
                .or_else(|| days.strip_suffix(" day"))
                .unwrap_or(days);
            let rest = match rest.strip_prefix(',') {
                Some(rest) => rest.trim_start(),
                None if days.len() == at => &rest[1..],
                None => return None,
            };
            if days.is_empty() || !days.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (Some(days.parse::<f64>().ok()?), rest)
        }
        _ => (None, s),
    };
    let (hours, rest) = s.split_once(':')?;
    if hours.is_empty() || !hours.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: f64 = hours.parse().ok()?;
    let (minutes, rest) = digits(rest, 2)?;
    let (seconds, rest) = digits(rest.strip_prefix(':')?, 2)?;
    let (fract, rest) = fraction(rest)?;
    if !rest.is_empty() || minutes > 59 || seconds > 59 || (days.is_some() && hours > 23.0) {
        return None;
    }
    Some(
        days.unwrap_or(0.0) * 86_400.0 + hours * 3600.0 + f64::from(minutes * 60 + seconds) + fract,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(parse: Parse, text: &str, expected: Option<f64>) {
        assert_eq!(parse.apply(text), expected, "{parse:?} {text:?}");
    }

    #[test]
    fn numbers_and_thousands() {
        check(Parse::Number, " 12.5 ", Some(12.5));
        check(Parse::Number, "1,234", None);
        check(Parse::Thousands, "1,234,567", Some(1_234_567.0));
        check(Parse::Thousands, "-1,234.5", Some(-1234.5));
        check(Parse::Thousands, "999", Some(999.0));
        check(Parse::Thousands, " 12345 ", Some(12345.0));
        check(Parse::Thousands, "1,23", None);
        check(Parse::Thousands, "1234,567", None);
        check(Parse::Thousands, ",123", None);
        check(Parse::Thousands, "1,,234", None);
        check(Parse::Thousands, "abc", None);
        check(Parse::Thousands, "", None);
        check(Parse::Thousands, "NaN", None);
    }

    #[test]
    fn percentages() {
        check(Parse::Percent, "12.5%", Some(0.125));
        check(Parse::Percent, "12.3", Some(0.123));
        check(Parse::Percent, " 100 % ", Some(1.0));
        check(Parse::Percent, "%", None);
        check(Parse::Percent, "12.5%%", None);
    }

    #[test]
    fn timestamps() {
        check(Parse::Timestamp, "1970-01-01T00:00:00Z", Some(0.0));
        check(
            Parse::Timestamp,
            "2024-05-01T12:00:00Z",
            Some(1_714_564_800.0),
        );
        check(
            Parse::Timestamp,
            "2024-05-01T14:00:00+02:00",
            Some(1_714_564_800.0),
        );
        check(
            Parse::Timestamp,
            "2024-05-01t12:00:00.25z",
            Some(1_714_564_800.25),
        );
        check(
            Parse::Timestamp,
            "2024-05-01 12:00:00,5",
            Some(1_714_564_800.5),
        );
        check(
            Parse::Timestamp,
            "2024-05-01T07:30-0430",
            Some(1_714_564_800.0),
        );
        check(
            Parse::Timestamp,
            "2024-05-01T13:00:00+01",
            Some(1_714_564_800.0),
        );
        check(Parse::Timestamp, "2024-05-01", Some(1_714_521_600.0));
        check(Parse::Timestamp, "1969-12-31T23:59:59Z", Some(-1.0));
        check(
            Parse::Timestamp,
            "2000-02-29T00:00:00Z",
            Some(951_782_400.0),
        );
        check(
            Parse::Timestamp,
            "2016-12-31T23:59:60Z",
            Some(1_483_228_800.0),
        );
        check(Parse::Timestamp, "2023-02-29", None);
        check(Parse::Timestamp, "2024-13-01", None);
        check(Parse::Timestamp, "2024-05-01T24:00:00Z", None);
        check(Parse::Timestamp, "2024-05-01T12:00:00 UTC", None);
        check(Parse::Timestamp, "2024-05-01T12:00:00.Z", None);
        check(Parse::Timestamp, "2024-5-1", None);
        check(Parse::Timestamp, "yesterday", None);
        check(Parse::Timestamp, "", None);
    }

    #[test]
    fn durations() {
        check(Parse::Duration, "1h2m3.5s", Some(3723.5));
        check(Parse::Duration, "250ms", Some(0.25));
        check(Parse::Duration, "1.5h", Some(5400.0));
        check(Parse::Duration, "-1m", Some(-60.0));
        check(Parse::Duration, "2d3h", Some(183_600.0));
        check(Parse::Duration, "2w1d3h12m36s", Some(1_307_556.0));
        check(Parse::Duration, "10µs", Some(0.00001));
        check(Parse::Duration, "0", Some(0.0));
        check(Parse::Duration, "01:02:03", Some(3723.0));
        check(Parse::Duration, "100:00:00", Some(360_000.0));
        check(Parse::Duration, "1:02:03.5", Some(3723.5));
        check(Parse::Duration, "1 day, 2:03:04", Some(93_784.0));
        check(Parse::Duration, "3 days, 0:00:00", Some(259_200.0));
        check(Parse::Duration, "1-02:03:04", Some(93_784.0));
        check(Parse::Duration, "1.02:03:04", Some(93_784.0));
        check(Parse::Duration, "1 day, 25:00:00", None);
        check(Parse::Duration, "01:02", None);
        check(Parse::Duration, "01:60:00", None);
        check(Parse::Duration, "1x", None);
        check(Parse::Duration, "h", None);
        check(Parse::Duration, "", None);
        check(Parse::Duration, "5", None);
    }

    #[test]
    fn units_and_factors() {
        let units = vec![
            ("Mbps".to_string(), Factor(125_000.0)),
            ("kbps".to_string(), Factor(125.0)),
            ("bps".to_string(), Factor(0.125)),
        ];
        let value = |text: &str, units: &[(String, Factor)], parse: Parse| {
            with_units(text, units, parse).map(|(reading, factor)| finish(reading, &[Some(factor)]))
        };
        let check = |text: &str, expected: Option<f64>| {
            assert_eq!(value(text, &units, Parse::Number), expected, "{text:?}");
        };
        check("95.21 Mbps", Some(11_901_250.0));
        check("512kbps", Some(64_000.0));
        check("8 bps", Some(1.0));
        check("95.21", None);
        check("95.21 Gbps", None);
        check("Mbps", None);
        check("fast Mbps", None);
        let bare = vec![
            ("".to_string(), Factor(1.0)),
            ("%".to_string(), Factor(0.01)),
        ];
        assert_eq!(value("12.3%", &bare, Parse::Number), Some(0.123));
        assert_eq!(value("7", &bare, Parse::Number), Some(7.0));
        let grouped = vec![("MB".to_string(), Factor(1e6))];
        assert_eq!(value("1,024 MB", &grouped, Parse::Thousands), Some(1.024e9));
        fn decimal(text: &str) -> Reading<'_> {
            Reading::Decimal(Cow::Borrowed(text))
        }
        assert_eq!(finish(decimal("1234.5"), &[Some(Factor(0.001))]), 1.2345);
        assert_eq!(finish(decimal("12.3"), &[Some(Factor(0.01))]), 0.123);
        assert_eq!(finish(decimal("1.5e3"), &[Some(Factor(0.001)), None]), 1.5);
        assert_eq!(
            finish(decimal("95.21"), &[Some(Factor(125_000.0))]),
            11_901_250.0
        );
        assert_eq!(
            finish(decimal("0.3"), &[Some(Factor(0.001)), Some(Factor(1e6))]),
            300.0
        );
        assert!(finish(decimal("NaN"), &[Some(Factor(0.01))]).is_nan());
        assert_eq!(finish(decimal("inf"), &[Some(Factor(0.01))]), f64::INFINITY);
        assert_eq!(finish(Reading::Value(1500.0), &[Some(Factor(0.001))]), 1.5);
        assert_eq!(Factor(0.001).apply(1234.0), 1.234);
        assert_eq!(Factor(1000.0).apply(1.5), 1500.0);
        assert_eq!(Factor(0.3).apply(10.0), 3.0);
    }
}
