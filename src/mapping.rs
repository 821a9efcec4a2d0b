//! The mapping: which value of the target's JSON document becomes which metric.
//!
//! Owns the mapping model ([`Mapping`], [`Metric`]) and the built-in default (the Python
//! tutorial exporter's four metrics, shipped as `scripts/mappings/tutorial/mapping.json`); its
//! file format and validation are `parse.rs`'s, the transforms of single values `transform.rs`'s,
//! what a mapping reads of a document (a trie of its JSON Pointers) `plan.rs`'s, and [`apply`],
//! which reads a document once and turns it into families, `apply.rs`'s. Only this module knows
//! the shape of the target's JSON. It knows nothing about HTTP, files on disk or how families
//! are rendered.

use std::fmt;
use std::sync::Arc;

mod apply;
mod parse;
mod plan;
mod transform;

pub use apply::{apply, apply_into, Applied, ApplyError, Skipped};
pub use parse::{parse, parse_value};
pub use transform::{Factor, Parse};

/// The built-in mapping: the tutorial exporter's metrics, names, HELP texts and states.
pub const BUILTIN: &str = include_str!("../scripts/mappings/tutorial/mapping.json");

/// Prefixes of the metrics the exporter itself serves; mapped metrics may not use them.
pub const RESERVED_PREFIXES: [&str; 2] = ["status_exporter_", "process_"];

/// The deepest a JSON Pointer can usefully go (`each`, then `path` or `count`, then `where`
/// together): the JSON parser refuses documents nested deeper than 128 levels.
pub const MAX_DEPTH: usize = 128;

/// A loaded mapping. Cloning it is cheap: it is shared, never changed.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub metrics: Arc<[Metric]>,
    /// What the metrics read, compiled once when the mapping is loaded.
    plan: Arc<plan::Plan>,
}

/// Two mappings are the same when their metrics are: the plan follows from them.
impl PartialEq for Mapping {
    fn eq(&self, other: &Mapping) -> bool {
        self.metrics == other.metrics
    }
}

impl Default for Mapping {
    /// No metrics.
    fn default() -> Mapping {
        Mapping::new(Vec::new())
    }
}

impl Mapping {
    fn new(metrics: Vec<Metric>) -> Mapping {
        let plan = Arc::new(plan::Plan::new(&metrics));
        Mapping {
            metrics: metrics.into(),
            plan,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    /// Where the value comes from, relative to the element when `each` is set.
    pub read: Read,
    /// JSON Pointer to an array or object: one sample per element.
    pub each: Option<Pointer>,
    /// Label name and where its value comes from, sorted by label name.
    pub labels: Vec<(String, Source)>,
    /// `where`: the elements of `count` (or else of `each`) taken, all conditions holding.
    pub filter: Vec<(Pointer, Condition)>,
    /// How a value becomes a number.
    pub convert: Convert,
    /// What a missing or null value does.
    pub missing: Missing,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetricKind {
    Gauge,
    Counter,
    /// One sample per state under label `label`, 1 for the current state.
    Enum {
        label: String,
        states: Vec<String>,
    },
    Info,
}

/// Where a metric's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// `path`: the value there.
    Path(Pointer),
    /// `count`: the number of elements of the array or object there (that match `where`).
    Count(Pointer),
    /// `exists`: 1 when the pointer leads to a value other than null, else 0.
    Exists(Pointer),
    /// An info metric: always 1.
    One,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `@key`: the object key or array index of the current `each` element.
    Key,
    /// A JSON Pointer relative to the current element.
    Pointer(Pointer),
}

/// A JSON Pointer, as written and split into its reference tokens (unescaped).
#[derive(Clone, Debug, PartialEq)]
pub struct Pointer {
    pub text: String,
    pub tokens: Vec<String>,
}

impl Pointer {
    /// Splits a pointer that `parse` has checked.
    fn new(text: &str) -> Pointer {
        let tokens = text
            .split('/')
            .skip(1)
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect();
        Pointer {
            text: text.to_string(),
            tokens,
        }
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A condition of `where` on the text of a value (a string, a number as written, `true`,
/// `false`); a missing, null, array or object value matches no text.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `"down"` or `["down", "failed"]`: equal to one of these.
    OneOf(Vec<String>),
    /// `{"matches": "^db-"}`: the regular expression matches somewhere in the text.
    Matches(Pattern),
    /// `{"not": ...}`: the condition does not hold.
    Not(Box<Condition>),
}

impl Condition {
    pub fn holds(&self, text: Option<&str>) -> bool {
        match self {
            Condition::OneOf(values) => text.is_some_and(|t| values.iter().any(|v| v == t)),
            Condition::Matches(pattern) => text.is_some_and(|t| pattern.0.is_match(t)),
            Condition::Not(condition) => !condition.holds(text),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::OneOf(values) if values.len() == 1 => write!(f, "is {:?}", values[0]),
            Condition::OneOf(values) => write!(f, "is one of {values:?}"),
            Condition::Matches(pattern) => write!(f, "matches {:?}", pattern.0.as_str()),
            Condition::Not(condition) => write!(f, "not ({condition})"),
        }
    }
}

/// A compiled regular expression (regex-lite), compared by its text.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex_lite::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// How a value becomes a number: first `value_map` (strings and booleans, the number given
/// as it is), then for strings `regex` (its capture) and `parse` with `units`; `percent` and
/// `scale` apply to numbers too.
#[derive(Clone, Debug, PartialEq)]
pub struct Convert {
    /// Strings (and `"true"`/`"false"` for booleans) mapped to numbers.
    pub value_map: Vec<(String, f64)>,
    /// A string's part that holds the number: capture group 1.
    pub regex: Option<Pattern>,
    pub parse: Parse,
    /// Units a number may be followed by, longest first, with their factors.
    pub units: Vec<(String, Factor)>,
    pub scale: Option<Factor>,
}

impl Convert {
    fn is_plain(&self) -> bool {
        self.value_map.is_empty()
            && self.regex.is_none()
            && self.parse == Parse::Number
            && self.units.is_empty()
            && self.scale.is_none()
    }
}

/// What a missing or null value does (`missing`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Missing {
    /// Skipped, counted in `status_exporter_mapping_errors_total` (the default).
    Error,
    /// Skipped silently: the metric is optional.
    Skip,
    /// This value instead (missing labels and `each` containers are skipped silently).
    Default(f64),
}

/// `--check-config`'s line for a metric: its name, kind, where it reads, and how.
impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            MetricKind::Gauge => "gauge".to_string(),
            MetricKind::Counter => "counter".to_string(),
            MetricKind::Enum { states, .. } => format!("enum of {}", states.len()),
            MetricKind::Info => "info".to_string(),
        };
        write!(f, "{} ({kind})", self.name)?;
        match &self.read {
            Read::Path(p) => write!(f, " from {:?}", p.text)?,
            Read::Count(p) => write!(f, " counting {:?}", p.text)?,
            Read::Exists(p) => write!(f, " whether {:?} exists", p.text)?,
            Read::One => {}
        }
        if let Some(each) = &self.each {
            write!(f, " for each of {each}")?;
        }
        for (i, (pointer, condition)) in self.filter.iter().enumerate() {
            let word = if i == 0 { "where" } else { "and" };
            write!(f, " {word} {:?} {condition}", pointer.text)?;
        }
        let convert = &self.convert;
        if !convert.is_plain() {
            f.write_str(";")?;
        }
        if !convert.value_map.is_empty() {
            write!(f, " value_map of {}", convert.value_map.len())?;
        }
        if let Some(regex) = &convert.regex {
            write!(f, " regex {:?}", regex.0.as_str())?;
        }
        if convert.parse != Parse::Number {
            write!(f, " parse {}", convert.parse.name())?;
        }
        if !convert.units.is_empty() {
            f.write_str(" units")?;
            for (unit, factor) in &convert.units {
                write!(f, " {unit:?}×{factor}")?;
            }
        }
        if let Some(scale) = convert.scale {
            write!(f, " scale ×{scale}")?;
        }
        match self.missing {
            Missing::Error => Ok(()),
            Missing::Skip => f.write_str("; missing: skip"),
            Missing::Default(value) => write!(f, "; missing: {}", Factor(value)),
        }
    }
}

/// The built-in mapping.
pub fn builtin() -> Mapping {
    parse(BUILTIN).expect("the built-in mapping is valid: a unit test parses it")
}

#[cfg(test)]
mod tests;
