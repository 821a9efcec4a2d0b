//! Random inputs for the property tests: JSON documents full of the strings and numbers that
//! have broken exporters, and valid mappings that read them, with every transform
//! ([`run_case`] runs one case through the library's mapping and renderer). Deterministic: a
//! case is named by its seed.

use serde_json::{json, Map, Value};

use status_exporter::exposition::{self, Format};
use status_exporter::mapping;
use status_exporter::rng::Rng;

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
    "95.21 Mbps",
    "512kbps",
    "1,234,567",
    "12.5%",
    "2024-05-01T12:00:00Z",
    "2024-05-01 14:00:00.5+02:00",
    "1h2m3.5s",
    "01:02:03",
    "1 day, 2:03:04",
    "T=-3.5C",
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
            "gauge" | "counter" => {
                if rng.chance(30) {
                    let mut map = Map::new();
                    for _ in 0..1 + rng.below(3) {
                        let key = element_string(rng, &element).unwrap_or_else(|| text(rng));
                        let number = rng.pick(&[0.0, 1.0, -1.0, 2.5, 1e300, -0.0]);
                        map.insert(key, json!(number));
                    }
                    metric.insert("value_map".into(), Value::Object(map));
                }
                transforms(rng, &mut metric, kind == "counter");
            }
            _ => {}
        }
        if kind != "info" && rng.chance(20) {
            let missing = match (kind, rng.below(3)) {
                (_, 0) => json!("error"),
                (_, 1) => json!("skip"),
                ("gauge", _) => json!(rng.pick(&[0.0, -1.0, 2.5])),
                ("counter", _) => json!(rng.pick(&[0.0, 7.0])),
                _ => json!("skip"),
            };
            let exists = metric.contains_key("exists");
            if !exists || missing == "error" {
                metric.insert("missing".into(), missing);
            }
        }
        if (metric.contains_key("each") || metric.contains_key("count")) && rng.chance(25) {
            let base = match metric.get("count") {
                Some(Value::String(count)) => {
                    element.pointer(count).cloned().unwrap_or(Value::Null)
                }
                _ => element.clone(),
            };
            let inner = match &base {
                Value::Array(items) if !items.is_empty() => items[rng.below(items.len())].clone(),
                Value::Object(map) if !map.is_empty() => map
                    .values()
                    .nth(rng.below(map.len()))
                    .cloned()
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            };
            let target = if metric.contains_key("count") {
                &inner
            } else {
                &element
            };
            let mut filter = Map::new();
            for _ in 0..1 + rng.below(2) {
                let pointer = pointer_into(rng, target);
                let value = element_string(rng, target).unwrap_or_else(|| text(rng));
                let condition = match rng.below(4) {
                    0 => json!(value),
                    1 => json!([value, text(rng)]),
                    2 => json!({ "matches": rng.pick(&["^a", "[0-9]", "x|y", "^$", "(?i)up"]) }),
                    _ => json!({ "not": value }),
                };
                filter.insert(pointer, condition);
            }
            metric.insert("where".into(), Value::Object(filter));
        }
        metrics.push(Value::Object(metric));
    }
    json!({ "metrics": metrics }).to_string()
}

/// Now and then: another way to read the value (`count`, `exists`), or transforms of it
/// (`regex`, `parse`, `units`, `scale`).
fn transforms(rng: &mut Rng, metric: &mut Map<String, Value>, counter: bool) {
    match rng.below(10) {
        0 | 1 if !metric.contains_key("value_map") => {
            let path = metric.remove("path").unwrap_or(json!(""));
            let field = if rng.chance(60) { "count" } else { "exists" };
            metric.insert(field.into(), path);
            return;
        }
        2..=4 => {}
        _ => return,
    }
    let parse = rng.pick(&["number", "thousands", "percent", "timestamp", "duration"]);
    if rng.chance(60) {
        metric.insert("parse".into(), json!(parse));
    }
    if rng.chance(30) {
        let regex = rng.pick(&[
            r"([0-9.,]+)",
            r"^T=([-0-9.]+)C$",
            r"(\S+)",
            r"(?:x)?([0-9]+)",
            r"(.*)",
        ]);
        metric.insert("regex".into(), json!(regex));
    }
    if matches!(parse, "number" | "thousands") && rng.chance(30) {
        let mut units = Map::new();
        for (unit, factor) in [("Mbps", 125000.0), ("kbps", 125.0), ("", 1.0), ("%", 0.01)] {
            if rng.chance(60) {
                units.insert(unit.into(), json!(factor));
            }
        }
        if !units.is_empty() {
            metric.insert("units".into(), Value::Object(units));
        }
    }
    if rng.chance(30) {
        let scale = if counter {
            rng.pick(&[0.001, 1024.0, 0.01, 8.0])
        } else {
            rng.pick(&[0.001, 1024.0, -1.0, 1e300])
        };
        metric.insert("scale".into(), json!(scale));
    }
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
pub struct Case {
    pub document: String,
    pub mapping: String,
    /// None when the mapping was refused (a name clash).
    pub rendered: Option<(String, String)>,
    pub families: Vec<exposition::Family>,
}

/// Runs case `seed`: a document, a mapping for it, both formats rendered from it. Each metric
/// read alone must give what it gives among the others (the mapping's metrics share what they
/// read of the document).
pub fn run_case(seed: u64, prefix: &str) -> Case {
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
    let applied = mapping::apply(&mapping, document.as_bytes(), usize::MAX)
        .unwrap_or_else(|e| panic!("case {seed}: {e}\n{document}"));
    let file: Value = serde_json::from_str(&mapping_text).unwrap();
    for (i, metric) in file["metrics"].as_array().unwrap().iter().enumerate() {
        let alone = mapping::parse(&json!({ "metrics": [metric] }).to_string()).unwrap();
        let got = mapping::apply(&alone, document.as_bytes(), usize::MAX).unwrap();
        // Compared as text: NaN values make the families themselves unequal to themselves.
        let (mut alone_text, mut together) = (String::new(), String::new());
        exposition::render(&got.families, Format::Text, &mut alone_text);
        exposition::render(&applied.families[i..=i], Format::Text, &mut together);
        assert_eq!(
            (alone_text, &got.errors[0]),
            (together, &applied.errors[i]),
            "case {seed}: {metric} reads differently alone\n{document}\n{mapping_text}"
        );
    }
    let mut text = String::new();
    exposition::render(&applied.families, Format::Text, &mut text);
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
