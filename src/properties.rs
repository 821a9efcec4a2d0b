//! Property tests across modules (built for tests only): random JSON documents through random
//! valid mappings, and the strict checkers of the two text formats they are held to.
//!
//! - [`Rng`]: splitmix64, a tiny deterministic generator. A failure names its case, so it can
//!   be replayed; no crate is needed. The byte fuzz of `http.rs` uses it too.
//! - [`check_text`] and [`check_openmetrics`]: what must hold of any exposition the exporter
//!   serves, in text format 0.0.4 and OpenMetrics 1.0.0. They are validated against the real
//!   parsers: `promtool check metrics` (Prometheus' Go parser, text format) and the OpenMetrics
//!   parser of the official Python client (Debian's `python3-prometheus-client`), on
//!   hand-written documents and on a sample of the random outputs.
//! - The property: any document through any valid mapping never panics, and both formats pass
//!   the checkers.
//!
//! Knows the mapping file format and the exposition formats; nothing about HTTP or the poller.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Map, Value};

use crate::exposition::{self, Format};
use crate::mapping;

/// splitmix64 (Steele, Lea, Flood 2014): 64 bits of state, good enough for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with this probability, in percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// The checkers.

/// Checks an exposition in text format 0.0.4, strictly: every family has one HELP and one TYPE
/// (`gauge` or `counter`) before its samples and appears once, samples belong to the family
/// above them, names and labels are valid, label values and HELP texts use only the escapes
/// the format knows, values are numbers (`NaN`, `+Inf`, `-Inf` included), no timestamps, no
/// duplicate series, no empty lines, and the last line ends with a line feed. Stricter than
/// Prometheus where our renderer never needs the freedom (comments, untyped samples).
pub fn check_text(exposition: &str) -> Result<(), String> {
    check(exposition, Format::Text)
}

/// Checks an exposition in OpenMetrics 1.0.0 as [`check_text`] does, and also: `# EOF` ends it,
/// HELP texts may escape `"`, types are `gauge`, `counter`, `stateset` or `info`; counter
/// samples are `<family>_total` and neither NaN nor negative, info samples `<family>_info`
/// with value 1, stateset samples carry a label named as the family and are 0 or 1; no two
/// families claim the same sample name (a counter `x` claims `x`, `x_total` and `x_created`).
pub fn check_openmetrics(exposition: &str) -> Result<(), String> {
    check(exposition, Format::OpenMetrics)
}

/// The family whose lines are being read.
struct Block {
    name: String,
    kind: Option<String>,
    help: bool,
    samples: usize,
}

fn check(exposition: &str, format: Format) -> Result<(), String> {
    let om = format == Format::OpenMetrics;
    let body = if om {
        exposition
            .strip_suffix("# EOF\n")
            .ok_or("does not end with \"# EOF\\n\"")?
    } else {
        exposition
    };
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("the last line does not end with a line feed".into());
    }
    let mut families: HashSet<String> = HashSet::new();
    let mut claimed: HashSet<String> = HashSet::new();
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    let mut block: Option<Block> = None;
    for (index, line) in body.split_terminator('\n').enumerate() {
        let fail = |why: &str| format!("line {}: {why}: {line:?}", index + 1);
        if line.is_empty() {
            return Err(fail("an empty line"));
        }
        if let Some(comment) = line.strip_prefix('#') {
            let (keyword, rest) = comment
                .strip_prefix(' ')
                .and_then(|c| c.split_once(' '))
                .ok_or_else(|| fail("a comment other than HELP or TYPE"))?;
            let (name, text) = rest
                .split_once(' ')
                .ok_or_else(|| fail("no text after the name"))?;
            check_name(name, true).map_err(|e| fail(&e))?;
            if block.as_ref().map_or(true, |b| b.name != name) {
                if let Some(done) = block.take() {
                    claim(&done, om, &mut claimed).map_err(|e| fail(&e))?;
                }
                if !families.insert(name.to_string()) {
                    return Err(fail("a second block of lines for the same family"));
                }
                block = Some(Block {
                    name: name.to_string(),
                    kind: None,
                    help: false,
                    samples: 0,
                });
            }
            let family = block.as_mut().expect("set just above");
            if family.samples > 0 {
                return Err(fail("HELP or TYPE after samples"));
            }
            match keyword {
                "HELP" if family.help => return Err(fail("a second HELP")),
                "HELP" => {
                    family.help = true;
                    check_escapes(text, om).map_err(|e| fail(&e))?;
                }
                "TYPE" if family.kind.is_some() => return Err(fail("a second TYPE")),
                "TYPE" => {
                    let known: &[&str] = if om {
                        &["gauge", "counter", "stateset", "info"]
                    } else {
                        &["gauge", "counter"]
                    };
                    if !known.contains(&text) {
                        return Err(fail("a type we do not emit"));
                    }
                    family.kind = Some(text.to_string());
                }
                _ => return Err(fail("a comment other than HELP or TYPE")),
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(|e| fail(&e))?;
        let family = block
            .as_mut()
            .ok_or_else(|| fail("a sample before any TYPE"))?;
        let kind = family
            .kind
            .as_deref()
            .ok_or_else(|| fail("a sample of a family without TYPE"))?;
        let suffix = match (om, kind) {
            (true, "counter") => "_total",
            (true, "info") => "_info",
            _ => "",
        };
        if name.strip_suffix(suffix) != Some(family.name.as_str()) {
            return Err(fail(&format!(
                "not a sample of the family {:?} above it",
                family.name
            )));
        }
        if om {
            match kind {
                "counter" if value.is_nan() || value < 0.0 => {
                    return Err(fail("a counter that is NaN or negative"))
                }
                "info" if value != 1.0 => return Err(fail("an info sample that is not 1")),
                "stateset" if !labels.iter().any(|(l, _)| *l == family.name) => {
                    return Err(fail(
                        "a stateset sample without a label named as its family",
                    ))
                }
                "stateset" if value != 0.0 && value != 1.0 => {
                    return Err(fail("a stateset sample that is not 0 or 1"))
                }
                _ => {}
            }
        }
        let mut key = labels;
        key.sort();
        if !series.insert((name.to_string(), key)) {
            return Err(fail("a duplicate series"));
        }
        family.samples += 1;
    }
    if let Some(done) = block {
        claim(&done, om, &mut claimed)?;
    }
    Ok(())
}

/// OpenMetrics: the sample names a finished family owns; an error if another family has one.
fn claim(block: &Block, om: bool, claimed: &mut HashSet<String>) -> Result<(), String> {
    if !om {
        return Ok(());
    }
    let suffixes: &[&str] = match block.kind.as_deref() {
        Some("counter") => &["", "_total", "_created"],
        Some("info") => &["", "_info"],
        _ => &[""],
    };
    for suffix in suffixes {
        let name = format!("{}{suffix}", block.name);
        if !claimed.insert(name.clone()) {
            return Err(format!("two families claim the name {name:?}"));
        }
    }
    Ok(())
}

/// Metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`; label names: `[a-zA-Z_][a-zA-Z0-9_]*`, not `__*`.
fn check_name(name: &str, metric: bool) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (metric && c == ':')
                || (i > 0 && c.is_ascii_digit())
        });
    if !valid {
        return Err(format!("{name:?} is not a valid name"));
    }
    if !metric && name.starts_with("__") {
        return Err(format!("{name:?} is a reserved label name"));
    }
    Ok(())
}

/// HELP texts: `\\` and `\n` (and `\"` in OpenMetrics) are the only escapes.
fn check_escapes(text: &str, quotes: bool) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if quotes => {}
                other => return Err(format!("an invalid escape \\{other:?}")),
            }
        }
    }
    Ok(())
}

/// A sample line's name, labels (unescaped) and value.
type SampleLine<'a> = (&'a str, Vec<(String, String)>, f64);

/// A sample line: name, labels (unescaped), value. No timestamp.
fn parse_sample(line: &str) -> Result<SampleLine<'_>, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_name(name, true)?;
    let mut rest = &line[name_end..];
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            let (label, after) = inner.split_once("=\"").ok_or("a label without =\"")?;
            check_name(label, false)?;
            if labels.iter().any(|(l, _)| l == label) {
                return Err(format!("the label {label:?} twice"));
            }
            let (value, after) = label_value(after)?;
            labels.push((label.to_string(), value));
            if let Some(after) = after.strip_prefix(',') {
                inner = after;
            } else if let Some(after) = after.strip_prefix('}') {
                rest = after;
                break;
            } else {
                return Err("a label value followed by neither , nor }".into());
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    Ok((name, labels, parse_value(value)?))
}

/// The text of a label value up to its closing quote, unescaped, and what follows the quote.
fn label_value(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("an invalid escape in a label value: {other:?}")),
            },
            c => value.push(c),
        }
    }
    Err("a label value without its closing quote".into())
}

/// A value as our renderer writes them: `NaN`, `+Inf`, `-Inf`, or a decimal number with an
/// optional exponent. Both formats also accept other spellings; we hold ourselves to these.
fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => return Ok(f64::NAN),
        "+Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.map_or(true, |e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !mantissa_ok || !exponent_ok {
        return Err(format!("{s:?} is not a number"));
    }
    s.parse().map_err(|_| format!("{s:?} is not a number"))
}

// ---------------------------------------------------------------------------------------------
// Random documents and mappings.

/// Strings that have broken exporters: escaping, numbers in disguise, exposition syntax.
const PIECES: &[&str] = &[
    "",
    "a",
    "healthy",
    "unhealthy",
    "UP",
    "green",
    "q\"1",
    "back\\slash",
    "new\nline",
    "\\n",
    "tab\t",
    "cr\r",
    "\0",
    "\u{7f}",
    "\u{1b}[31m",
    "grüße",
    "✓",
    "😀",
    "\u{2028}",
    "\u{85}",
    "\u{feff}",
    "\u{ffff}",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "+Inf",
    "12.5",
    " 7 ",
    "1e400",
    "-3",
    "0x10",
    "true",
    "false",
    "null",
    "@key",
    "~0~1/",
    "a/b",
    "__name__",
    "le",
    "{\"a\":1}",
    "# EOF",
    "# HELP x y",
    "} 1\nx 2",
    "a=\"b\"",
    "\\\"",
];

/// Object keys: plain, empty, with JSON Pointer syntax, numeric, and serde_json's own number key.
const KEYS: &[&str] = &[
    "a", "b", "name", "value", "status", "", "a/b", "~", "~1", "0", "1", "x y", "ü", "q\"",
    "messages", "count", "health",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "4",
    "0.5",
    "-3.25",
    "104.914734",
    "1e400",
    "-1e400",
    "1e-400",
    "1E+3",
    "2e-7",
    "123456789012345678901234567890",
    "-9007199254740993",
    "1.7976931348623157e308",
    "5e-324",
    "0.000001",
    "100000000000000000",
    "0.0",
    "-0.0e5",
];

/// Any text: pieces above and random characters.
fn text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(4) {
        if rng.chance(70) {
            s.push_str(rng.pick(PIECES));
        } else if let Some(c) = char::from_u32(rng.next() as u32 % 0x11_0000) {
            s.push(c);
        }
    }
    s
}

/// `s` as a JSON string literal, written in one of the ways JSON allows (raw or `\u` escapes,
/// surrogate pairs for astral characters).
fn json_string(rng: &mut Rng, s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' if rng.chance(50) => out.push_str("\\n"),
            c if (c as u32) < 0x20 || rng.chance(10) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            '/' if rng.chance(50) => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn space(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(&["", "", " ", "\n", "\t", "\r\n  "]));
}

/// A random JSON value as text: nested objects (with duplicate keys at times) and arrays,
/// strings of every kind, numbers out of a 64-bit float's range, booleans and null.
fn json_value(rng: &mut Rng, depth: usize, out: &mut String) {
    let choice = if depth >= 4 {
        rng.below(4)
    } else {
        rng.below(8)
    };
    match choice {
        0 => out.push_str(rng.pick(&["null", "true", "false"])),
        1 => {
            if rng.chance(60) {
                out.push_str(rng.pick(NUMBERS));
            } else if rng.chance(50) {
                out.push_str(&(rng.next() as i64 >> rng.below(64)).to_string());
            } else {
                let float = f64::from_bits(rng.next());
                out.push_str(&if float.is_finite() {
                    format!("{float:e}")
                } else {
                    "2.5".to_string()
                });
            }
        }
        2 | 3 => {
            let s = text(rng);
            json_string(rng, &s, out);
        }
        4 | 5 => {
            out.push('[');
            for i in 0..rng.below(5) {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                json_value(rng, depth + 1, out);
                space(rng, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.below(5) {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                let key = if rng.chance(85) {
                    rng.pick(KEYS).to_string()
                } else {
                    text(rng)
                };
                json_string(rng, &key, out);
                space(rng, out);
                out.push(':');
                space(rng, out);
                json_value(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

fn json_document(rng: &mut Rng) -> String {
    let mut out = String::new();
    space(rng, &mut out);
    json_value(rng, 0, &mut out);
    space(rng, &mut out);
    out
}

/// Every JSON Pointer into `value` (at most 200), the root `""` first.
fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, at: String, out: &mut Vec<String>) {
        if out.len() >= 200 {
            return;
        }
        out.push(at.clone());
        let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{at}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    walk(item, format!("{at}/{}", escape(key)), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

/// A pointer into `value`, or now and then one to nowhere.
fn pointer_into(rng: &mut Rng, value: &Value) -> String {
    if rng.chance(15) {
        return rng
            .pick(&["", "/missing", "/0", "/a/b", "/~0", "/~1"])
            .to_string();
    }
    let all = pointers(value);
    all[rng.below(all.len())].clone()
}

const LABELS: &[&str] = &[
    "l", "name", "le", "quantile", "job", "x1", "_y", "state", "a_b",
];
const TAILS: &[&str] = &[
    "x", "value", "jobs", "up", "created", "bucket", "count", "a:b",
];

/// A random mapping for `doc` as mapping-file text: gauges, counters, enums and info metrics,
/// each whole-document or over an array or object (`each`), with labels from pointers and
/// `@key`, value maps, enum state labels. Names start with `prefix`; now and then two metrics
/// share a name stem, which the mapping may refuse as a clash.
fn mapping_text(rng: &mut Rng, doc: &Value, prefix: &str) -> String {
    let mut metrics = Vec::new();
    let containers: Vec<String> = pointers(doc)
        .into_iter()
        .filter(|p| matches!(doc.pointer(p), Some(Value::Array(_) | Value::Object(_))))
        .collect();
    for index in 0..1 + rng.below(5) {
        let kind = rng.pick(&["gauge", "counter", "enum", "info"]);
        let mut tail = rng.pick(TAILS).to_string();
        if kind == "enum" {
            tail = tail.replace(':', "_"); // the default state label is the name
        }
        let stem = if rng.chance(25) {
            let shared = rng.pick(&["shared", "shared_created"]);
            format!("{prefix}{shared}")
        } else {
            format!("{prefix}m{index}_{tail}")
        };
        let name = match kind {
            "counter" => format!("{stem}_total"),
            "info" => format!("{stem}_info"),
            _ => stem,
        };
        let mut metric = Map::new();
        metric.insert("name".into(), json!(name));
        metric.insert("help".into(), json!(text(rng)));
        metric.insert("type".into(), json!(kind));
        // Where values and labels are read: the document, or each element of a container.
        let each = if rng.chance(50) && !containers.is_empty() {
            Some(containers[rng.below(containers.len())].clone())
        } else if rng.chance(5) {
            Some("/missing".to_string())
        } else {
            None
        };
        let element = match each.as_deref().and_then(|p| doc.pointer(p)) {
            Some(Value::Array(items)) if !items.is_empty() => items[rng.below(items.len())].clone(),
            Some(Value::Object(map)) if !map.is_empty() => map
                .values()
                .nth(rng.below(map.len()))
                .cloned()
                .unwrap_or(Value::Null),
            Some(_) if each.is_some() => Value::Null,
            _ => doc.clone(),
        };
        if let Some(each) = &each {
            metric.insert("each".into(), json!(each));
        }
        let state_label = match kind {
            "enum" if rng.chance(50) => Some(rng.pick(LABELS).to_string()),
            _ => None,
        };
        let mut labels = Map::new();
        let wanted = if kind == "info" {
            1 + rng.below(3)
        } else {
            rng.below(3)
        };
        for _ in 0..wanted {
            let label = rng.pick(LABELS).to_string();
            let enum_label = state_label.clone().unwrap_or_else(|| name.clone());
            if kind == "enum" && label == enum_label {
                continue;
            }
            let source = if each.is_some() && rng.chance(40) {
                "@key".to_string()
            } else {
                pointer_into(rng, &element)
            };
            labels.insert(label, json!(source));
        }
        if kind == "info" && labels.is_empty() {
            labels.insert("l".into(), json!(pointer_into(rng, &element)));
        }
        if !labels.is_empty() {
            metric.insert("labels".into(), Value::Object(labels));
        }
        if kind != "info" {
            metric.insert("path".into(), json!(pointer_into(rng, &element)));
        }
        match kind {
            "enum" => {
                let mut states: Vec<String> = Vec::new();
                for _ in 0..1 + rng.below(4) {
                    let state = if rng.chance(50) {
                        element_string(rng, &element).unwrap_or_else(|| text(rng))
                    } else {
                        text(rng)
                    };
                    if !states.contains(&state) {
                        states.push(state);
                    }
                }
                metric.insert("states".into(), json!(states));
                if let Some(label) = state_label {
                    metric.insert("label".into(), json!(label));
                }
            }
            "gauge" | "counter" if rng.chance(30) => {
                let mut map = Map::new();
                for _ in 0..1 + rng.below(3) {
                    let key = element_string(rng, &element).unwrap_or_else(|| text(rng));
                    let number = rng.pick(&[0.0, 1.0, -1.0, 2.5, 1e300, -0.0]);
                    map.insert(key, json!(number));
                }
                metric.insert("value_map".into(), Value::Object(map));
            }
            _ => {}
        }
        metrics.push(Value::Object(metric));
    }
    json!({ "metrics": metrics }).to_string()
}

/// One of the strings in `value`, if it has any.
fn element_string(rng: &mut Rng, value: &Value) -> Option<String> {
    let strings: Vec<String> = pointers(value)
        .iter()
        .filter_map(|p| value.pointer(p)?.as_str().map(str::to_string))
        .collect();
    (!strings.is_empty()).then(|| strings[rng.below(strings.len())].clone())
}

/// What one random case gave.
struct Case {
    document: String,
    mapping: String,
    /// None when the mapping was refused (a name clash).
    rendered: Option<(String, String)>,
    families: Vec<exposition::Family>,
}

/// Runs case `seed`: a document, a mapping for it, both formats rendered from the document
/// as the poller parses it (pruned), which must apply exactly as the whole document does.
fn run_case(seed: u64, prefix: &str) -> Case {
    let mut rng = Rng::new(seed);
    let document = json_document(&mut rng);
    let full: Value = serde_json::from_str(&document).unwrap_or_else(|e| {
        panic!("case {seed}: the generator wrote invalid JSON ({e}): {document}")
    });
    let mapping_text = mapping_text(&mut rng, &full, prefix);
    let mapping = match mapping::parse(&mapping_text) {
        Ok(mapping) => mapping,
        Err(e) => {
            assert!(
                e.contains("clashes with") || e.contains("already used"),
                "case {seed}: a valid mapping was refused: {e}\n{mapping_text}"
            );
            return Case {
                document,
                mapping: mapping_text,
                rendered: None,
                families: Vec::new(),
            };
        }
    };
    let pruned = mapping::parse_document(&mapping, document.as_bytes())
        .unwrap_or_else(|e| panic!("case {seed}: {e}\n{document}"));
    let applied = mapping::apply(&mapping, &pruned);
    let mut text = String::new();
    exposition::render(&applied.families, Format::Text, &mut text);
    // Compared as text: NaN values make the families themselves unequal to themselves.
    let mut from_full = String::new();
    let from_full_applied = mapping::apply(&mapping, &full);
    exposition::render(&from_full_applied.families, Format::Text, &mut from_full);
    assert_eq!(
        (from_full, &from_full_applied.errors),
        (text.clone(), &applied.errors),
        "case {seed}: the pruned document {pruned} maps differently\n{document}\n{mapping_text}"
    );
    let mut openmetrics = String::new();
    exposition::render(&applied.families, Format::OpenMetrics, &mut openmetrics);
    openmetrics.push_str(exposition::EOF);
    Case {
        document,
        mapping: mapping_text,
        rendered: Some((text, openmetrics)),
        families: applied.families,
    }
}

/// Runs `promtool check metrics` on `exposition`: Err with its output on a parse error.
/// Lint remarks (exit status 3, e.g. "no help text") are not errors of the format.
fn promtool(exposition: &str) -> Result<(), String> {
    let output = run_tool(
        Command::new("promtool").args(["check", "metrics"]),
        exposition.as_bytes(),
        "promtool (apt-get install prometheus; scripts/test.sh does this)",
    );
    match output.status.code() {
        Some(0 | 3) => Ok(()),
        _ => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// The OpenMetrics parser of the official Python client on each document: one verdict each.
fn python_openmetrics(documents: &[String]) -> Vec<Result<(), String>> {
    // Each document comes as its length in bytes, a line feed, then the document.
    const SCRIPT: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
data = sys.stdin.buffer.read()
while data:
    length, _, data = data.partition(b"\n")
    doc, data = data[:int(length)].decode("utf-8"), data[int(length):]
    try:
        list(text_string_to_metric_families(doc))
        print("ok")
    except Exception as e:
        print("error: " + repr(e).replace("\n", " "))
"#;
    let output = run_tool(
        Command::new("/usr/bin/python3").args(["-c", SCRIPT]),
        documents
            .iter()
            .map(|d| format!("{}\n{d}", d.len()))
            .collect::<String>()
            .as_bytes(),
        "python3 with prometheus_client (apt-get install python3-prometheus-client; scripts/test.sh does this)",
    );
    assert!(
        output.status.success(),
        "the OpenMetrics parser failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts: Vec<Result<(), String>> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            if l == "ok" {
                Ok(())
            } else {
                Err(l.to_string())
            }
        })
        .collect();
    assert_eq!(verdicts.len(), documents.len(), "one verdict per document");
    verdicts
}

fn run_tool(command: &mut Command, input: &[u8], install: &str) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {install}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for the tool");
    let _ = writer.join();
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents both checkers must accept, and documents they must refuse, with whether the
    /// real parser refuses it too (true), or accepts it and our checker is the stricter (false).
    const GOOD_TEXT: &[&str] = &[
        "",
        "# HELP a x\n# TYPE a gauge\na 1\n",
        "# HELP a \n# TYPE a gauge\na{l=\"\"} NaN\na{l=\"\\\\ \\\" \\n\"} -Inf\n",
        "# HELP a_total \"quotes\" stay\n# TYPE a_total counter\na_total 1e17\n",
        "# HELP a x\\ny\\\\\n# TYPE a gauge\na{a=\"1\",b=\"\r\t\u{0}\u{2028}\"} -1.5e-7\n",
        "# TYPE a gauge\n# HELP a x\na 1\n# HELP a:b y\n# TYPE a:b gauge\na:b 2\n",
    ];
    const BAD_TEXT: &[(&str, bool)] = &[
        ("# HELP a x\\\"y\n# TYPE a gauge\na 1\n", true), // \" in a 0.0.4 HELP
        ("# HELP a x\n# TYPE a gauge\na{l=\"\\q\"} 1\n", true),
        ("# HELP a x\n# TYPE a gauge\na{l=\"x\",l=\"y\"} 1\n", true),
        ("# HELP a x\n# TYPE a gauge\na{l=\"x\"} abc\n", true),
        ("# HELP a x\n# TYPE a gauge\na\n", true),
        ("# HELP a x\n# TYPE a gauge\na{l=\"x\" 1\n", true),
        ("# HELP a x\n# TYPE a gauge\na{l=x} 1\n", true),
        ("# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n", true),
        ("# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n", true),
        ("# HELP a x\n# TYPE a gauge\n1a 1\n", true),
        ("# HELP a x\n# TYPE a gauge\na{1l=\"x\"} 1\n", true),
        ("# HELP a x\n# TYPE a gauge\na 1\n# TYPE a gauge\n", true),
        ("# HELP a x\n# TYPE a gauge\na 1", false), // no final line feed
        ("# HELP a x\n# TYPE a gauge\na 1\na 1\n", false),
        (
            "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na 2\n",
            false,
        ),
        ("a 1\n", false),
        ("# HELP a x\n# TYPE a gauge\na 1 1700000000000\n", false),
        ("# HELP a x\n# TYPE a gauge\na{} 1\n", false),
        ("# HELP a x\n# TYPE a gauge\na{l=\"x\",} 1\n", false),
        ("# HELP a x\n# TYPE a untyped\na 1\n", false),
        ("# HELP a x\n# TYPE a gauge\na{__l=\"x\"} 1\n", false),
        ("# HELP a x\n# TYPE a gauge\n\na 1\n", false),
        ("# a comment\n# HELP a x\n# TYPE a gauge\na 1\n", false),
        ("# HELP a x\n# TYPE a gauge\na inf\n", false),
    ];
    const GOOD_OPENMETRICS: &[&str] = &[
        "# EOF\n",
        "# HELP a x\n# TYPE a gauge\na 1\n# EOF\n",
        "# HELP a x \\\" \\\\ \\n\n# TYPE a counter\na_total 0\na_total{l=\"\"} +Inf\n# EOF\n",
        "# HELP a x\n# TYPE a stateset\na{a=\"s\\n1\"} 1\na{a=\"s2\"} 0\n# EOF\n",
        "# HELP a x\n# TYPE a info\na_info{v=\"\\\"\"} 1\n# HELP b x\n# TYPE b gauge\nb NaN\n# EOF\n",
        "# HELP a x\n# TYPE a counter\na_total -0\n# EOF\n",
    ];
    const BAD_OPENMETRICS: &[(&str, bool)] = &[
        ("# HELP a x\n# TYPE a gauge\na 1\n", true), // no # EOF
        ("# HELP a x\n# TYPE a gauge\na 1\n# EOF\n# HELP b x\n# EOF\n", true),
        ("# HELP a x\n# TYPE a gauge\n\na 1\n# EOF\n", true),
        ("# HELP a x\n# TYPE a counter\na_total -1\n# EOF\n", true),
        ("# HELP a x\n# TYPE a counter\na_total NaN\n# EOF\n", true),
        ("# HELP a x\n# TYPE a counter\na 1\n# EOF\n", true),
        ("# HELP a x\n# TYPE a stateset\na{b=\"x\"} 1\n# EOF\n", true),
        ("# HELP a x\n# TYPE a stateset\na{a=\"x\"} 2\n# EOF\n", true),
        ("# HELP a x\n# TYPE a info\na_info 2\n# EOF\n", true),
        ("# HELP a x\n# TYPE a counter\na_total 1\n# HELP a_created x\n# TYPE a_created gauge\na_created 1\n# EOF\n", true),
        ("# HELP a x\n# TYPE a gauge\na 1\n# HELP a_info x\n# TYPE a info\n# EOF\n", true),
        ("# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n# EOF\n", true),
        ("# HELP a x\n# TYPE a gauge\na 1\n# HELP a y\n# EOF\n", true),
        ("# HELP a x\n# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\na 2\n# EOF\n", true),
        ("# HELP a x\n# TYPE a gauge\na{l=\"x\"y\"} 1\n# EOF\n", true),
        ("# HELP a x\n# TYPE a gauge\na 1\na 1\n# EOF\n", false),
        ("# HELP a x\n# TYPE a gauge\na 1\n# EOF", false),
        ("# HELP a x\n# TYPE a unknown\na 1\n# EOF\n", false),
        ("a 1\n# EOF\n", false),
    ];

    #[test]
    fn checkers_accept_valid_expositions() {
        for &doc in GOOD_TEXT {
            assert_eq!(check_text(doc), Ok(()), "{doc:?}");
        }
        for &doc in GOOD_OPENMETRICS {
            assert_eq!(check_openmetrics(doc), Ok(()), "{doc:?}");
        }
        // What the renderer writes for every kind of family, in both formats.
        let mut families = Vec::new();
        for (name, kind) in [
            ("g", exposition::Kind::Gauge),
            ("c_total", exposition::Kind::Counter),
            ("s", exposition::Kind::StateSet),
            ("i_info", exposition::Kind::Info),
        ] {
            let mut family = exposition::Family::new(name, "help \\ \" \n", kind);
            family.push(&[("l", "\"\\\n"), ("s", "x")], 1.0);
            family.push(&[("l", "b"), ("s", "y")], 0.0);
            families.push(family);
        }
        let mut text = String::new();
        exposition::render(&families, Format::Text, &mut text);
        assert_eq!(check_text(&text), Ok(()), "{text}");
        let mut om = String::new();
        exposition::render(&families[..2], Format::OpenMetrics, &mut om);
        om.push_str(exposition::EOF);
        assert_eq!(check_openmetrics(&om), Ok(()), "{om}");
    }

    #[test]
    fn checkers_refuse_invalid_expositions() {
        for &(doc, _) in BAD_TEXT {
            assert!(check_text(doc).is_err(), "accepted {doc:?}");
        }
        for &(doc, _) in BAD_OPENMETRICS {
            assert!(check_openmetrics(doc).is_err(), "accepted {doc:?}");
        }
    }

    /// The checkers agree with the real parsers: on the hand-written documents above, and on
    /// a sample of random outputs (names made unique per case, so that all of them can be
    /// checked as one document by each tool).
    #[test]
    fn checkers_agree_with_promtool_and_the_python_client() {
        for &doc in GOOD_TEXT {
            assert_eq!(promtool(doc), Ok(()), "{doc:?}");
        }
        for &(doc, refused) in BAD_TEXT {
            if refused {
                assert!(promtool(doc).is_err(), "promtool accepted {doc:?}");
            }
        }
        let mut documents: Vec<String> = GOOD_OPENMETRICS.iter().map(|d| d.to_string()).collect();
        documents.extend(BAD_OPENMETRICS.iter().map(|(d, _)| d.to_string()));
        let mut all_text = String::new();
        let mut all_openmetrics = String::new();
        for seed in 0..300 {
            let case = run_case(1_000_000 + seed, &format!("c{seed}_"));
            if let Some((text, openmetrics)) = case.rendered {
                all_text.push_str(&text);
                all_openmetrics.push_str(openmetrics.strip_suffix(exposition::EOF).unwrap());
            }
        }
        all_openmetrics.push_str(exposition::EOF);
        assert_eq!(check_text(&all_text), Ok(()));
        assert_eq!(check_openmetrics(&all_openmetrics), Ok(()));
        assert_eq!(promtool(&all_text), Ok(()));
        documents.push(all_openmetrics);
        let verdicts = python_openmetrics(&documents);
        for (doc, verdict) in GOOD_OPENMETRICS.iter().zip(&verdicts) {
            assert_eq!(verdict, &Ok(()), "{doc:?}");
        }
        for ((doc, refused), verdict) in BAD_OPENMETRICS
            .iter()
            .zip(&verdicts[GOOD_OPENMETRICS.len()..])
        {
            if *refused {
                assert!(verdict.is_err(), "the Python client accepted {doc:?}");
            }
        }
        assert_eq!(verdicts.last(), Some(&Ok(())), "the random sample");
    }

    /// Any JSON document through any valid mapping: no panic, and both formats pass the
    /// checkers. 3,000 cases; the generator is checked to reach every kind of metric with
    /// samples, `each` over arrays and objects, `@key` labels and value maps.
    #[test]
    fn any_document_through_any_valid_mapping_renders_valid_expositions() {
        let mut refused = 0;
        let mut reached: HashSet<&str> = HashSet::new();
        const CASES: u64 = 3000;
        for seed in 0..CASES {
            let case = run_case(seed, "");
            let Some((text, openmetrics)) = &case.rendered else {
                refused += 1;
                continue;
            };
            let context = || {
                format!(
                    "case {seed}\ndocument: {}\nmapping: {}",
                    case.document, case.mapping
                )
            };
            if let Err(e) = check_text(text) {
                panic!("text format: {e}\n{text}\n{}", context());
            }
            if let Err(e) = check_openmetrics(openmetrics) {
                panic!("OpenMetrics: {e}\n{openmetrics}\n{}", context());
            }
            for family in case.families.iter().filter(|f| !f.samples.is_empty()) {
                reached.insert(match family.kind {
                    exposition::Kind::Gauge => "gauge",
                    exposition::Kind::Counter => "counter",
                    exposition::Kind::StateSet => "stateset",
                    exposition::Kind::Info => "info",
                });
            }
            let mapping: Value = serde_json::from_str(&case.mapping).unwrap();
            let doc: Value = serde_json::from_str(&case.document).unwrap();
            for metric in mapping["metrics"].as_array().unwrap() {
                if let Some(each) = metric["each"].as_str() {
                    match doc.pointer(each) {
                        Some(Value::Array(a)) if !a.is_empty() => reached.insert("each array"),
                        Some(Value::Object(o)) if !o.is_empty() => reached.insert("each object"),
                        _ => false,
                    };
                }
                if metric["labels"]
                    .as_object()
                    .is_some_and(|l| l.values().any(|v| v == "@key"))
                {
                    reached.insert("@key");
                }
                if metric.get("value_map").is_some() {
                    reached.insert("value_map");
                }
                if metric.get("label").is_some() {
                    reached.insert("enum label");
                }
            }
        }
        let mut reached: Vec<&str> = reached.into_iter().collect();
        reached.sort();
        assert_eq!(
            reached,
            [
                "@key",
                "counter",
                "each array",
                "each object",
                "enum label",
                "gauge",
                "info",
                "stateset",
                "value_map"
            ]
        );
        assert!(refused < CASES / 4, "{refused} of {CASES} mappings refused");
    }
}
