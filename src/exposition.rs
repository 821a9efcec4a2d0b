//! The two text formats Prometheus reads: the classic text format 0.0.4 and OpenMetrics 1.0.0.
//!
//! Owns the data model of what is exposed ([`Family`], [`Sample`], [`Kind`]), escaping, float
//! formatting and the byte layout of both formats. It knows nothing about our metric names, the
//! target's JSON or HTTP: callers hand it families and get bytes back. Rendering does no I/O and
//! keeps the order it is given, so the output is deterministic.

use std::borrow::Cow;

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

/// A metric family: its samples are kept as the lines they render to, which read the same in
/// both formats (only the HELP and TYPE lines differ), so each sample is formatted once.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    /// The sample lines, `name{labels} value\n` each: UTF-8, as only whole strings go in.
    lines: Vec<u8>,
    samples: usize,
    /// Every sample has a label named after the family (what OpenMetrics asks of a stateset).
    labelled_by_family: bool,
}

/// Label pairs as a sample line holds them (`a="1",b="x\"y"`), values escaped: written once,
/// copied into each line that carries them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels(Vec<u8>);

impl Labels {
    /// One pair.
    pub fn one(name: &str, value: &str) -> Labels {
        let mut labels = Labels::default();
        labels.push(name, value);
        labels
    }

    /// Appends the pair `name="value"`; the value is escaped (`\\`, `\"` and newline).
    pub fn push(&mut self, name: &str, value: &str) {
        let out = &mut self.0;
        if !out.is_empty() {
            out.push(b',');
        }
        append(out, name.as_bytes());
        out.push(b'=');
        out.push(b'"');
        append(out, escape(value, true).as_bytes());
        out.push(b'"');
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs as written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether a pair is named `name`. Exact: in a written value `"` is always escaped, so
    /// `="` only follows a label name.
    fn has(&self, name: &str) -> bool {
        let labels = &self.0[..];
        let name = name.as_bytes();
        (0..labels.len()).any(|at| {
            (at == 0 || labels[at - 1] == b',')
                && labels[at..].starts_with(name)
                && labels[at + name.len()..].starts_with(b"=\"")
        })
    }
}

impl Family {
    pub fn new(name: &str, help: &str, kind: Kind) -> Family {
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            lines: Vec::new(),
            samples: 0,
            labelled_by_family: true,
        }
    }

    /// A family with one unlabelled sample.
    pub fn single(name: &str, help: &str, kind: Kind, value: f64) -> Family {
        let mut family = Family::new(name, help, kind);
        family.push(&[], value);
        family
    }

    /// Adds a sample with these label pairs, in this order.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut written = Labels::default();
        for (name, value) in labels {
            written.push(name, value);
        }
        self.push_labelled(&written, None, value);
    }

    /// Adds a sample with the pairs `labels`, then those of `last` when given.
    pub fn push_labelled(&mut self, labels: &Labels, last: Option<&Labels>, value: f64) {
        self.head(labels, last);
        write_value_bytes(value, &mut self.lines);
        self.lines.push(b'\n');
    }

    /// Starts a sample line: `name{labels,last} `.
    fn head(&mut self, labels: &Labels, last: Option<&Labels>) {
        if self.kind == Kind::StateSet {
            self.labelled_by_family &=
                last.is_some_and(|l| l.has(&self.name)) || labels.has(&self.name);
        }
        let out = &mut self.lines;
        append(out, self.name.as_bytes());
        if !labels.is_empty() || last.is_some() {
            out.push(b'{');
            append(out, labels.as_bytes());
            if let Some(last) = last {
                if !labels.is_empty() {
                    out.push(b',');
                }
                append(out, last.as_bytes());
            }
            out.push(b'}');
        }
        out.push(b' ');
        self.samples += 1;
    }

    /// Removes every sample, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.samples = 0;
        self.labelled_by_family = true;
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// The sample lines so far, as rendered: the mapping reads them back to find a repeated
    /// label set.
    pub fn lines(&self) -> &[u8] {
        &self.lines
    }

    /// The lines as text.
    fn text(&self) -> Cow<'_, str> {
        // Only whole strings are appended, so this is never lossy.
        match std::str::from_utf8(&self.lines) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(&self.lines),
        }
    }

    /// The bytes the family adds to an exposition in `format`.
    fn rendered_len(&self, format: Format) -> usize {
        if self.samples == 0 {
            return 0;
        }
        let (name, _, type_name) = self.names(format);
        let help = escape(&self.help, format == Format::OpenMetrics).len();
        2 * name.len() + help + type_name.len() + "# HELP  \n# TYPE  \n".len() + self.lines.len()
    }

    /// The family name, sample name suffix and type of the family in `format`.
    fn names(&self, format: Format) -> (&str, &'static str, &'static str) {
        match (format, self.kind) {
            (Format::Text, Kind::Counter) => (self.name.as_str(), "", "counter"),
            (Format::Text, _) => (self.name.as_str(), "", "gauge"),
            (Format::OpenMetrics, Kind::Gauge) => (self.name.as_str(), "", "gauge"),
            (Format::OpenMetrics, Kind::StateSet) if self.labelled_by_family => {
                (self.name.as_str(), "", "stateset")
            }
            (Format::OpenMetrics, Kind::StateSet) => (self.name.as_str(), "", "gauge"),
            (Format::OpenMetrics, Kind::Counter) => split_suffix(&self.name, "_total", "counter"),
            (Format::OpenMetrics, Kind::Info) => split_suffix(&self.name, "_info", "info"),
        }
    }
}

/// Appends `bytes` to `out` eight at a time: the pieces of a sample line are short, and a copy
/// of a fixed size is a few instructions, where a call to the C library's `memcpy` (musl's in
/// the static builds) costs more than the copy itself.
fn append(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word: [u8; 8] = word.try_into().unwrap_or([0; 8]);
        out.extend(word);
    }
    for &byte in words.remainder() {
        out.push(byte);
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

/// The bytes [`render`] appends for `families` in `format`: to size the output once.
pub fn rendered_len(families: &[Family], format: Format) -> usize {
    families.iter().map(|f| f.rendered_len(format)).sum()
}

/// Appends `families` in `format` to `out`. Families without samples are left out.
pub fn render(families: &[Family], format: Format, out: &mut String) {
    out.reserve(rendered_len(families, format));
    for family in families.iter().filter(|f| !f.is_empty()) {
        let (family_name, _, type_name) = family.names(format);
        let help = escape(&family.help, format == Format::OpenMetrics);
        for (word, text) in [("# HELP ", &*help), ("# TYPE ", type_name)] {
            out.push_str(word);
            out.push_str(family_name);
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        }
        out.push_str(&family.text());
    }
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
    let needs = |b: u8| b == b'\\' || b == b'\n' || (quotes && b == b'"');
    if !s.bytes().any(needs) {
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
    let mut bytes = Vec::new();
    write_value_bytes(value, &mut bytes);
    out.push_str(&String::from_utf8_lossy(&bytes));
}

fn write_value_bytes(value: f64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if value.abs() < 1e15 && is_whole(value) && (value != 0.0 || value.is_sign_positive()) {
        // Whole numbers, the most common, without the float formatter.
        if value < 0.0 {
            out.push(b'-');
        }
        write_digits(value.abs() as u64, 1, out);
    } else if let Some((whole, fraction, places)) = short_decimal(value) {
        // A few decimal places (`1.5`, `0.25`, `99.95`), also without it.
        if value < 0.0 {
            out.push(b'-');
        }
        write_digits(whole, 1, out);
        out.push(b'.');
        write_digits(fraction, places, out);
    } else if value != 0.0 && !(1e-5..1e17).contains(&value.abs()) {
        // Very large or very small: the positional form would run to hundreds of digits.
        let _ = write!(out, "{value:e}");
    } else {
        let _ = write!(out, "{value}");
    }
}

/// `value` (not whole) as a decimal of at most four places, whole part `whole` and fraction
/// digits `fraction` (`places` of them, the last not 0), when one reads back as `value`: it is
/// then the shortest decimal that does, which the float formatter would write. (It has at most
/// 15 significant digits, and no two decimals of at most 15 significant digits read as the same
/// `f64`: such a decimal is the only one that short, so none shorter reads as `value`.)
fn short_decimal(value: f64) -> Option<(u64, u64, usize)> {
    let mut scale = 1.0;
    for places in 1..=4 {
        scale *= 10.0;
        let scaled = value.abs() * scale;
        // `scaled / scale` is the f64 nearest the decimal, as reading the decimal gives.
        if scaled < 1e15 && is_whole(scaled) && scaled / scale == value.abs() {
            let (scaled, scale) = (scaled as u64, scale as u64);
            let (mut fraction, mut places) = (scaled % scale, places);
            while fraction % 10 == 0 && places > 1 {
                fraction /= 10;
                places -= 1;
            }
            return (fraction != 0).then_some((scaled / scale, fraction, places));
        }
    }
    None
}

/// Whether `x` (under 10^15 in magnitude) is a whole number. (`fract` is a call to the C
/// library's `trunc`, this one instruction each way.)
fn is_whole(x: f64) -> bool {
    x == (x as i64) as f64
}

/// Writes `n` in decimal, with leading zeros to at least `width` digits.
fn write_digits(mut n: u64, width: usize, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n > 0 || digits.len() - at < width {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    append(out, &digits[at..]);
}

#[cfg(test)]
mod tests;
