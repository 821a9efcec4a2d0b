//! The mapping: which value of the target's JSON document becomes which metric.
//!
//! Owns the mapping model ([`Mapping`], [`Metric`]), its JSON file format with validation
//! ([`parse`]), the built-in default (the Python tutorial exporter's four metrics, shipped as
//! `scripts/mappings/tutorial/mapping.json`) and [`apply`], which turns a document into
//! families. Only this module knows the shape of the target's JSON. It knows nothing about HTTP,
//! files on disk or how families are rendered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::exposition::{Family, Kind};

/// The built-in mapping: the tutorial exporter's metrics, names, HELP texts and states.
pub const BUILTIN: &str = include_str!("../scripts/mappings/tutorial/mapping.json");

/// Prefixes of the metrics the exporter itself serves; mapped metrics may not use them.
pub const RESERVED_PREFIXES: [&str; 2] = ["status_exporter_", "process_"];

#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    pub metrics: Vec<Metric>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    /// JSON Pointer to the value, relative to the element when `each` is set. None for info.
    pub path: Option<String>,
    /// JSON Pointer to an array or object: one sample per element.
    pub each: Option<String>,
    /// Label name and where its value comes from, sorted by label name.
    pub labels: Vec<(String, Source)>,
    /// Strings (and `"true"`/`"false"` for booleans) mapped to numbers.
    pub value_map: Vec<(String, f64)>,
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

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `@key`: the object key or array index of the current `each` element.
    Key,
    /// A JSON Pointer relative to the current element.
    Pointer(String),
}

const FIELDS: &str = "name, help, type, path, each, labels, label, states, value_map";

/// Parses and validates a mapping file's text. The error names the metric (index and name),
/// the field and the fix; the caller adds the file name.
pub fn parse(text: &str) -> Result<Mapping, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(root) = root else {
        return Err(r#"the top level must be an object: {"metrics": [...]}"#.to_string());
    };
    if let Some(key) = root.keys().find(|k| *k != "metrics") {
        return Err(format!(
            "unknown top-level field {key:?} (the only field is \"metrics\")"
        ));
    }
    let Some(Value::Array(items)) = root.get("metrics") else {
        return Err(r#""metrics" must be an array of metric objects"#.to_string());
    };
    if items.is_empty() {
        return Err(r#""metrics" is empty: add at least one metric"#.to_string());
    }
    let mut metrics: Vec<Metric> = Vec::with_capacity(items.len());
    let mut names: HashSet<String> = HashSet::new();
    let mut families: HashMap<String, usize> = HashMap::new();
    let mut created_by: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let at = |name: &str| {
            if name.is_empty() {
                format!("metrics[{index}]")
            } else {
                format!("metrics[{index}] {name:?}")
            }
        };
        let metric = parse_metric(item).map_err(|(name, e)| format!("{}: {e}", at(&name)))?;
        if names.contains(metric.name.as_str()) {
            return Err(format!(
                "{}: the name is already used by another metric",
                at(&metric.name)
            ));
        }
        // Families are unique: indexes into `metrics` by OpenMetrics family name.
        if let Some(&other) = families.get(family_name(&metric)) {
            let other: &Metric = &metrics[other];
            return Err(format!(
                "{}: clashes with {:?}: in OpenMetrics both are the family {:?}; rename one",
                at(&metric.name),
                other.name,
                family_name(&metric)
            ));
        }
        // A counter's family also owns the sample name `<family>_created` in OpenMetrics, and
        // parsers refuse an exposition where another family uses it.
        let created = format!("{}_created", family_name(&metric));
        let mine = (metric.kind == MetricKind::Counter)
            .then(|| families.get(created.as_str()).copied())
            .flatten();
        let theirs = created_by.get(family_name(&metric)).copied();
        if let Some(other) = mine.or(theirs) {
            let (counter, name) = match mine {
                Some(_) => (&metric, created.as_str()),
                None => (&metrics[other], family_name(&metric)),
            };
            return Err(format!(
                "{}: clashes with {:?}: in OpenMetrics the counter {:?} also uses the name {name:?}; rename one",
                at(&metric.name),
                metrics[other].name,
                counter.name,
            ));
        }
        if metric.kind == MetricKind::Counter {
            created_by.insert(created, metrics.len());
        }
        families.insert(family_name(&metric).to_string(), metrics.len());
        names.insert(metric.name.clone());
        metrics.push(metric);
    }
    Ok(Mapping { metrics })
}

/// The built-in mapping.
pub fn builtin() -> Mapping {
    parse(BUILTIN).expect("the built-in mapping is valid: a unit test parses it")
}

/// The OpenMetrics family name: counters and info metrics lose their suffix.
fn family_name(metric: &Metric) -> &str {
    let suffix = match metric.kind {
        MetricKind::Counter => "_total",
        MetricKind::Info => "_info",
        _ => "",
    };
    metric.name.strip_suffix(suffix).unwrap_or(&metric.name)
}

/// Parses one metric object. The error carries the metric's name (if it has one) for context.
fn parse_metric(item: &Value) -> Result<Metric, (String, String)> {
    let Value::Object(obj) = item else {
        return Err((
            String::new(),
            "must be an object with at least name, help and path".into(),
        ));
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err((String::new(), "\"name\" must be a string".into())),
        None => return Err((String::new(), "\"name\" is missing".into())),
    };
    parse_fields(&name, obj).map_err(|e| (name, e))
}

fn parse_fields(name: &str, obj: &Map<String, Value>) -> Result<Metric, String> {
    if let Some(key) = obj
        .keys()
        .find(|k| !FIELDS.split(", ").any(|f| f == k.as_str()))
    {
        return Err(format!("unknown field {key:?} (fields are: {FIELDS})"));
    }
    check_metric_name(name)?;
    let help = match obj.get("help") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("\"help\" must be a string".into()),
        None => return Err("\"help\" is missing: add a one-line description".into()),
    };
    let string = |field: &str| -> Result<Option<&str>, String> {
        match obj.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("{field:?} must be a string")),
        }
    };
    let type_name = string("type")?.unwrap_or("gauge");
    let path = string("path")?
        .map(|p| check_pointer("path", p))
        .transpose()?;
    let each = string("each")?
        .map(|p| check_pointer("each", p))
        .transpose()?;
    let labels = parse_labels(obj.get("labels"), each.is_some())?;
    let value_map = parse_value_map(obj.get("value_map"))?;
    let label = string("label")?;
    let states = obj.get("states");
    if type_name != "enum" && (label.is_some() || states.is_some()) {
        let field = if label.is_some() { "label" } else { "states" };
        return Err(format!("{field:?} is only for \"type\": \"enum\""));
    }
    let kind = match type_name {
        "gauge" | "counter" => {
            let counter = type_name == "counter";
            if counter && !name.ends_with("_total") {
                return Err(format!(
                    "a counter's name must end in _total: call it \"{name}_total\""
                ));
            }
            if !counter && name.ends_with("_total") {
                return Err(
                    "names ending in _total are for counters: add \"type\": \"counter\" or rename"
                        .into(),
                );
            }
            if counter {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            }
        }
        "enum" => {
            let states = parse_states(states)?;
            let label = match label {
                Some(l) => l.to_string(),
                None => name.to_string(),
            };
            check_label_name(&label)
                .map_err(|e| format!("label {e}; set \"label\" to a valid label name"))?;
            if labels.iter().any(|(l, _)| *l == label) {
                return Err(format!("the state label {label:?} is also in \"labels\"; set \"label\" to another name"));
            }
            if !value_map.is_empty() {
                return Err("\"value_map\" is not for enums: list the values in \"states\"".into());
            }
            MetricKind::Enum { label, states }
        }
        "info" => {
            if !name.ends_with("_info") {
                return Err(format!(
                    "an info metric's name must end in _info: call it \"{name}_info\""
                ));
            }
            if path.is_some() || !value_map.is_empty() {
                return Err("an info metric has no \"path\" or \"value_map\": its value is always 1 and its information is in \"labels\"".into());
            }
            if labels.is_empty() {
                return Err("an info metric needs \"labels\"".into());
            }
            MetricKind::Info
        }
        other => {
            return Err(format!(
                "\"type\" {other:?} is unknown (use gauge, counter, enum or info)"
            ))
        }
    };
    if kind != MetricKind::Info && name.ends_with("_info") {
        return Err(
            "names ending in _info are for info metrics: add \"type\": \"info\" or rename".into(),
        );
    }
    if kind != MetricKind::Info && path.is_none() {
        return Err(
            "\"path\" is missing: the JSON Pointer to the value, e.g. \"/current_requests\"".into(),
        );
    }
    Ok(Metric {
        name: name.to_string(),
        help,
        kind,
        path,
        each,
        labels,
        value_map,
    })
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let valid = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !valid {
        return Err(
            "is not a valid metric name: use letters, digits, _ and :, not starting with a digit"
                .into(),
        );
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(format!(
            "names starting with {prefix} are the exporter's own: choose another prefix"
        ));
    }
    Ok(())
}

fn check_label_name(label: &str) -> Result<(), String> {
    let valid = label
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    if label.is_empty() || !valid {
        return Err(format!("{label:?} is not a valid label name (letters, digits and _, not starting with a digit)"));
    }
    if label.starts_with("__") {
        return Err(format!(
            "{label:?} starts with __, which Prometheus reserves"
        ));
    }
    Ok(())
}

fn check_pointer(field: &str, pointer: &str) -> Result<String, String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "{field:?}: {pointer:?} is not a JSON Pointer: start it with / (e.g. \"/{pointer}\"), or use \"\" for the whole element"
        ));
    }
    let bad_escape = pointer
        .split('~')
        .skip(1)
        .any(|rest| !rest.starts_with(['0', '1']));
    if bad_escape {
        return Err(format!(
            "{field:?}: {pointer:?} has a ~ that is not ~0 (for ~) or ~1 (for /)"
        ));
    }
    Ok(pointer.to_string())
}

fn parse_labels(value: Option<&Value>, has_each: bool) -> Result<Vec<(String, Source)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Object(obj) = value else {
        return Err(r#""labels" must be an object: {"label_name": "/pointer" or "@key"}"#.into());
    };
    let mut labels = Vec::with_capacity(obj.len());
    for (label, source) in obj {
        check_label_name(label).map_err(|e| format!("\"labels\": {e}"))?;
        let source = match source {
            Value::String(s) if s == "@key" => {
                if !has_each {
                    return Err(format!(
                        "\"labels\": {label:?} uses @key, which needs \"each\""
                    ));
                }
                Source::Key
            }
            Value::String(s) => Source::Pointer(check_pointer(&format!("labels.{label}"), s)?),
            _ => {
                return Err(format!(
                    "\"labels\": {label:?} must be a JSON Pointer string or \"@key\""
                ))
            }
        };
        labels.push((label.clone(), source));
    }
    Ok(labels)
}

fn parse_value_map(value: Option<&Value>) -> Result<Vec<(String, f64)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Object(obj) = value else {
        return Err(r#""value_map" must be an object: {"green": 0, "red": 2}"#.into());
    };
    obj.iter()
        .map(|(key, number)| match number.as_f64() {
            Some(n) => Ok((key.clone(), n)),
            None => Err(format!("\"value_map\": {key:?} must map to a number")),
        })
        .collect()
}

fn parse_states(value: Option<&Value>) -> Result<Vec<String>, String> {
    let hint = r#"an enum needs "states": ["healthy", "unhealthy"]"#;
    let Some(Value::Array(items)) = value else {
        return Err(hint.into());
    };
    if items.is_empty() {
        return Err(hint.into());
    }
    let mut states: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(state) = item else {
            return Err("\"states\" must hold strings".into());
        };
        if states.contains(state) {
            return Err(format!("\"states\": {state:?} is listed twice"));
        }
        states.push(state.clone());
    }
    Ok(states)
}

/// Parses a status document, keeping only the parts `mapping` reads.
///
/// The whole document is checked for valid JSON, but subtrees that no pointer of the mapping
/// reaches are skipped without being built, so a large document with a small mapping costs
/// little more than reading it. The result answers every pointer of the mapping exactly as the
/// full document would.
pub fn parse_document(mapping: &Mapping, json: &[u8]) -> Result<Value, serde_json::Error> {
    let needed = Needed::for_mapping(mapping);
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let doc = Pruned(&needed).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(doc)
}

/// The parts of a document a mapping reads: a tree of object keys (or array indexes).
#[derive(Clone, Debug, Default)]
struct Needed {
    /// Keep the whole subtree (a value or label is read here).
    all: bool,
    children: BTreeMap<String, Needed>,
    /// Every element: the subtree of an `each`.
    any: Option<Box<Needed>>,
}

impl Needed {
    fn for_mapping(mapping: &Mapping) -> Needed {
        let mut root = Needed::default();
        for metric in &mapping.metrics {
            let base = match &metric.each {
                Some(each) => &mut **root.at(each).any.get_or_insert_with(Box::default),
                None => &mut root,
            };
            let labels = metric.labels.iter().filter_map(|(_, source)| match source {
                Source::Pointer(p) => Some(p.as_str()),
                Source::Key => None,
            });
            for pointer in metric.path.as_deref().into_iter().chain(labels) {
                base.at(pointer).all = true;
            }
        }
        root.spread_any();
        root
    }

    /// Makes every named child also hold what `any` asks for, so that looking up a key finds
    /// everything read under it (`/components/db/details` and `each` over `/components`).
    fn spread_any(&mut self) {
        if let Some(any) = &self.any {
            for child in self.children.values_mut() {
                child.merge(any);
            }
        }
        self.children.values_mut().for_each(Needed::spread_any);
        if let Some(any) = &mut self.any {
            any.spread_any();
        }
    }

    fn merge(&mut self, other: &Needed) {
        self.all |= other.all;
        for (key, child) in &other.children {
            self.children.entry(key.clone()).or_default().merge(child);
        }
        if let Some(other) = &other.any {
            self.any.get_or_insert_with(Box::default).merge(other);
        }
    }

    /// The node of a JSON Pointer, created if needed.
    fn at(&mut self, pointer: &str) -> &mut Needed {
        pointer.split('/').skip(1).fold(self, |node, token| {
            let key = token.replace("~1", "/").replace("~0", "~");
            node.children.entry(key).or_default()
        })
    }

    fn child(&self, key: &str) -> Option<&Needed> {
        self.children.get(key).or(self.any.as_deref())
    }
}

/// serde_json (with `arbitrary_precision`) hands a number to a visitor as a one-entry map
/// under this key.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Builds the parts of a value that `Needed` asks for.
struct Pruned<'a>(&'a Needed);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.all {
            serde::Deserialize::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            // Skipped elements stay as null so that indexes do not move.
            let child = if self.0.children.is_empty() {
                self.0.any.as_deref()
            } else {
                self.0.child(&items.len().to_string())
            };
            let item = match child {
                Some(child) => seq.next_element_seed(Pruned(child))?,
                None => seq.next_element::<IgnoredAny>()?.map(|_| Value::Null),
            };
            match item {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(Key(self.0))? {
            match key {
                Kept::Number => {
                    let text: String = map.next_value()?;
                    let number = text
                        .parse::<serde_json::Number>()
                        .map_err(de::Error::custom)?;
                    return Ok(Value::Number(number));
                }
                Kept::Key(key, child) => {
                    let value = map.next_value_seed(Pruned(child))?;
                    object.insert(key, value);
                }
                Kept::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// An object key: kept (with the part of its value that is needed), or skipped.
enum Kept<'a> {
    Key(String, &'a Needed),
    Skip,
    /// The key under which serde_json passes a number.
    Number,
}

struct Key<'a>(&'a Needed);

impl<'de, 'a> DeserializeSeed<'de> for Key<'a> {
    type Value = Kept<'a>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kept<'a>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'a> Visitor<'_> for Key<'a> {
    type Value = Kept<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Kept<'a>, E> {
        if key == NUMBER_TOKEN {
            return Ok(Kept::Number);
        }
        Ok(match self.0.child(key) {
            Some(child) => Kept::Key(key.to_string(), child),
            None => Kept::Skip,
        })
    }
}

/// What applying a mapping to a document gives.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// One family per metric, in mapping order; a family may have no samples.
    pub families: Vec<Family>,
    /// Per metric (same index as the mapping): samples skipped, and why the first one was.
    pub errors: Vec<Skipped>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Skipped {
    pub count: u64,
    pub first: Option<String>,
}

impl Skipped {
    fn add(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(reason());
        }
    }
}

/// Applies `mapping` to `doc`. Never fails: a value that cannot be used skips its sample and
/// is counted in `errors`.
pub fn apply(mapping: &Mapping, doc: &Value) -> Applied {
    let mut applied = Applied::default();
    for metric in &mapping.metrics {
        let mut skipped = Skipped::default();
        applied
            .families
            .push(apply_metric(metric, doc, &mut skipped));
        applied.errors.push(skipped);
    }
    applied
}

fn apply_metric(metric: &Metric, doc: &Value, skipped: &mut Skipped) -> Family {
    let kind = match metric.kind {
        MetricKind::Gauge => Kind::Gauge,
        MetricKind::Counter => Kind::Counter,
        MetricKind::Enum { .. } => Kind::StateSet,
        MetricKind::Info => Kind::Info,
    };
    let mut family = Family::new(&metric.name, &metric.help, kind);
    let Some(each) = &metric.each else {
        add_samples(metric, doc, None, "", &mut family, skipped);
        return family;
    };
    let mut seen: HashSet<Vec<(String, String)>> = HashSet::new();
    let mut add = |key: &str, element: &Value, family: &mut Family| {
        let start = family.samples.len();
        let at = format!("{each}/{}", key.replace('~', "~0").replace('/', "~1"));
        add_samples(metric, element, Some(key), &at, family, skipped);
        if family.samples.len() > start {
            // All samples of one element share the element's labels (enums add the state).
            let labels = family.samples[start].labels[..metric.labels.len()].to_vec();
            if !seen.insert(labels) {
                family.samples.truncate(start);
                skipped.add(|| {
                    format!("{at}: the same labels as an earlier element; the first is kept")
                });
            }
        }
    };
    match doc.pointer(each) {
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                add(&index.to_string(), item, &mut family);
            }
        }
        Some(Value::Object(items)) => {
            for (key, item) in items {
                add(key, item, &mut family);
            }
        }
        found => skipped.add(|| format!("{each}: {}, not an array or object", describe(found))),
    }
    family
}

/// Adds the samples of one element (the whole document when `key` is None) to `family`.
fn add_samples(
    metric: &Metric,
    element: &Value,
    key: Option<&str>,
    at: &str,
    family: &mut Family,
    skipped: &mut Skipped,
) {
    let mut labels = Vec::with_capacity(metric.labels.len() + 1);
    for (label, source) in &metric.labels {
        let value = match source {
            Source::Key => key
                .map(str::to_string)
                .ok_or_else(|| format!("{at}: label {label:?}: @key outside \"each\"")),
            Source::Pointer(p) => label_value(element.pointer(p)).ok_or_else(|| {
                let found = describe(element.pointer(p));
                format!("{at}{p}: label {label:?}: {found}, not a string or number")
            }),
        };
        match value {
            Ok(value) => labels.push((label.clone(), value)),
            Err(reason) => return skipped.add(|| reason),
        }
    }
    let path = metric.path.as_deref().unwrap_or("");
    let found = element.pointer(path);
    match &metric.kind {
        MetricKind::Info => family
            .samples
            .push(crate::exposition::Sample { labels, value: 1.0 }),
        MetricKind::Enum { label, states } => {
            let Some(current) = label_value(found) else {
                return skipped.add(|| format!("{at}{path}: {}, not a state", describe(found)));
            };
            if !states.contains(&current) {
                let list = states.join(", ");
                skipped.add(|| {
                    format!("{at}{path}: {current:?} is not one of the states ({list}); all are 0")
                });
            }
            for state in states {
                let mut labels = labels.clone();
                labels.push((label.clone(), state.clone()));
                let value = if *state == current { 1.0 } else { 0.0 };
                family
                    .samples
                    .push(crate::exposition::Sample { labels, value });
            }
        }
        MetricKind::Gauge | MetricKind::Counter => match number(found, &metric.value_map) {
            // OpenMetrics: "A Total is a non-NaN and MUST be monotonically non-decreasing over
            // time, starting from 0"; parsers refuse the whole exposition otherwise.
            Some(value)
                if metric.kind == MetricKind::Counter && (value.is_nan() || value < 0.0) =>
            {
                skipped.add(|| {
                    format!(
                        "{at}{path}: {} gives {value}: a counter is never negative or NaN",
                        describe(found)
                    )
                })
            }
            Some(value) => family
                .samples
                .push(crate::exposition::Sample { labels, value }),
            None => skipped.add(|| {
                let hint = if matches!(found, Some(Value::String(_))) {
                    " (add it to value_map)"
                } else {
                    ""
                };
                format!("{at}{path}: {}, not a number{hint}", describe(found))
            }),
        },
    }
}

/// The number a JSON value stands for: numbers as they are (out of range: ±Inf), booleans 1/0,
/// numeric strings parsed; `value_map` first for strings and booleans.
fn number(value: Option<&Value>, value_map: &[(String, f64)]) -> Option<f64> {
    let mapped = |key: &str| value_map.iter().find(|(k, _)| k == key).map(|&(_, n)| n);
    match value? {
        // With arbitrary_precision the number keeps its text: 1e400 parses to +Inf.
        Value::Number(n) => n.to_string().parse().ok(),
        Value::Bool(b) => {
            mapped(if *b { "true" } else { "false" }).or(Some(f64::from(u8::from(*b))))
        }
        Value::String(s) => mapped(s).or_else(|| s.trim().parse().ok()),
        _ => None,
    }
}

/// The label value a JSON value gives: strings as they are, numbers and booleans as written.
fn label_value(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// How a found (or missing) value reads in an error message.
fn describe(value: Option<&Value>) -> Described<'_> {
    Described(value)
}

struct Described<'a>(Option<&'a Value>);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("missing"),
            Some(Value::Null) => f.write_str("null"),
            Some(Value::Bool(b)) => write!(f, "{b}"),
            Some(Value::Number(n)) => write!(f, "{n}"),
            Some(Value::String(s)) => write!(f, "{s:?}"),
            Some(Value::Array(_)) => f.write_str("an array"),
            Some(Value::Object(_)) => f.write_str("an object"),
        }
    }
}

#[cfg(test)]
mod tests;
