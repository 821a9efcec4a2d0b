//! The two text formats Prometheus reads: the classic text format 0.0.4 and OpenMetrics 1.0.0.
//!
//! Owns the data model of what is exposed ([`Family`], [`Sample`], [`Kind`]), escaping, float
//! formatting and the byte layout of both formats. It knows nothing about our metric names, the
//! target's JSON or HTTP: callers hand it families and get bytes back. Rendering does no I/O and
//! keeps the order it is given, so the output is deterministic.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What kind of metric a family is. The name of the family always carries the suffix the
/// classic format shows (`_total` for counters, `_info` for info metrics); the OpenMetrics
/// renderer moves it from the family name to the sample names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Name ends in `_total`.
    Counter,
    /// One sample per state, exactly one of them 1 (a Python client `Enum`): a gauge in 0.0.4,
    /// a `stateset` in OpenMetrics when the state label is named after the family (as
    /// OpenMetrics requires), a gauge otherwise.
    StateSet,
    /// Name ends in `_info`, value 1, the information in the labels.
    Info,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Label pairs in output order.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &str, help: &str, kind: Kind) -> Family {
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            samples: Vec::new(),
        }
    }

    /// A family with one unlabelled sample.
    pub fn single(name: &str, help: &str, kind: Kind, value: f64) -> Family {
        let mut family = Family::new(name, help, kind);
        family.push(&[], value);
        family
    }

    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.push(Sample { labels, value });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 (text). The caller appends [`EOF`] after the last family.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The line that ends an OpenMetrics exposition.
pub const EOF: &str = "# EOF\n";

/// Appends `families` in `format` to `out`. Families without samples are left out.
pub fn render(families: &[Family], format: Format, out: &mut String) {
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        render_family(family, format, out);
    }
}

fn render_family(family: &Family, format: Format, out: &mut String) {
    let (family_name, suffix, type_name) = match (format, family.kind) {
        (Format::Text, Kind::Counter) => (family.name.as_str(), "", "counter"),
        (Format::Text, _) => (family.name.as_str(), "", "gauge"),
        (Format::OpenMetrics, Kind::Gauge) => (family.name.as_str(), "", "gauge"),
        (Format::OpenMetrics, Kind::StateSet) if labelled_by_family(family) => {
            (family.name.as_str(), "", "stateset")
        }
        (Format::OpenMetrics, Kind::StateSet) => (family.name.as_str(), "", "gauge"),
        (Format::OpenMetrics, Kind::Counter) => split_suffix(&family.name, "_total", "counter"),
        (Format::OpenMetrics, Kind::Info) => split_suffix(&family.name, "_info", "info"),
    };
    let help = match format {
        Format::Text => escape(&family.help, false),
        Format::OpenMetrics => escape(&family.help, true),
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {family_name} {help}");
    let _ = writeln!(out, "# TYPE {family_name} {type_name}");
    for sample in &family.samples {
        out.push_str(family_name);
        out.push_str(suffix);
        if !sample.labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in sample.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{name}=\"{}\"", escape(value, true));
            }
            out.push('}');
        }
        out.push(' ');
        write_value(sample.value, out);
        out.push('\n');
    }
}

/// Whether every sample has a label named after the family, which OpenMetrics requires of a
/// stateset's state label. An enum whose states are in another label stays a gauge, as in 0.0.4.
fn labelled_by_family(family: &Family) -> bool {
    family
        .samples
        .iter()
        .all(|s| s.labels.iter().any(|(name, _)| *name == family.name))
}

/// OpenMetrics names counter and info families without the suffix their samples carry.
fn split_suffix<'a>(
    name: &'a str,
    suffix: &'static str,
    type_name: &'static str,
) -> (&'a str, &'static str, &'static str) {
    match name.strip_suffix(suffix) {
        Some(base) => (base, suffix, type_name),
        None => (name, "", type_name),
    }
}

/// Escapes a HELP text or label value. Both formats escape `\` and newline; label values and
/// OpenMetrics HELP texts also escape `"` (`quotes`). Borrows when nothing needs escaping.
pub fn escape(s: &str, quotes: bool) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || c == '\n' || (quotes && c == '"');
    if !s.contains(needs) {
        return Cow::Borrowed(s);
    }
    let mut escaped = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if quotes => escaped.push_str("\\\""),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// Writes a sample value: `NaN`, `+Inf`, `-Inf`; integers without a fraction or exponent; other
/// values in the shortest form that reads back as the same `f64`.
pub fn write_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value != 0.0 && !(1e-5..1e17).contains(&value.abs()) {
        // Very large or very small: the positional form would run to hundreds of digits.
        let _ = write!(out, "{value:e}");
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests;
