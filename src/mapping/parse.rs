//! The mapping file's format and its validation: [`parse`] turns the file's text into a
//! [`Mapping`], or an error that names the metric (index and name), the field and the fix.
//! Everything the exporter could not run is refused here, so that `--check-config`, start-up
//! and reloads agree: invalid names, clashes in OpenMetrics, pointers deeper than a document
//! can be, regular expressions that do not compile or capture nothing.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::transform::{Factor, Parse};
use super::{
    Condition, Convert, Mapping, Metric, MetricKind, Missing, Pattern, Pointer, Read, Source,
    MAX_DEPTH, RESERVED_PREFIXES,
};

/// The fields of a metric, as the error about an unknown one lists them.
const FIELDS: &str = "name, help, type, path, count, exists, each, where, labels, label, \
                      states, value_map, regex, parse, units, scale, missing";

/// Parses and validates a mapping file's text. The error names the metric (index and name),
/// the field and the fix; the caller adds the file name.
pub fn parse(text: &str) -> Result<Mapping, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    parse_value(&root)
}

/// [`parse`] of the file's JSON value (a module's inline mapping is one).
pub fn parse_value(root: &Value) -> Result<Mapping, String> {
    let Value::Object(root) = root else {
        return Err(r#"the top level must be an object: {"metrics": [...]}"#.to_string());
    };
    // `modules` and `probe` are the format of `/probe` (`probe/module.rs`), checked there.
    if let Some(key) = root
        .keys()
        .find(|k| !matches!(k.as_str(), "metrics" | "modules" | "probe"))
    {
        return Err(format!(
            "unknown top-level field {key:?} (the fields are \"metrics\", \"modules\" and \"probe\")"
        ));
    }
    let modules = root.contains_key("modules");
    let items = match root.get("metrics") {
        Some(Value::Array(items)) => &items[..],
        None if modules => &[],
        _ => return Err(r#""metrics" must be an array of metric objects"#.to_string()),
    };
    if items.is_empty() && !modules {
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
    Ok(Mapping::new(metrics))
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
    let each = string("each")?
        .map(|p| check_pointer("each", p, 0))
        .transpose()?;
    let depth = each.as_ref().map_or(0, |p| p.tokens.len());
    let mut reads = Vec::new();
    for field in ["path", "count", "exists"] {
        if let Some(pointer) = string(field)? {
            reads.push((field, check_pointer(field, pointer, depth)?));
        }
    }
    if let [(first, _), (second, _), ..] = reads[..] {
        return Err(format!(
            "{first:?} and {second:?} exclude each other: a metric reads one value"
        ));
    }
    let (read, count_depth) = match reads.pop() {
        Some(("count", p)) => {
            let depth = depth + p.tokens.len();
            (Read::Count(p), Some(depth))
        }
        Some(("exists", p)) => (Read::Exists(p), None),
        Some((_, p)) => (Read::Path(p), None),
        None => (Read::One, None),
    };
    let labels = parse_labels(obj.get("labels"), each.is_some(), depth)?;
    let filter = match obj.get("where") {
        None => Vec::new(),
        Some(value) => {
            let Some(depth) = count_depth.or(each.is_some().then_some(depth)) else {
                return Err(
                    "\"where\" picks elements of \"each\" or \"count\": add one of them".into(),
                );
            };
            parse_where(value, depth)?
        }
    };
    let convert = parse_convert(obj)?;
    let missing = parse_missing(obj.get("missing"))?;
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
            if counter && name == "_total" {
                return Err(
                    "a counter's name needs a stem before _total, e.g. \"jobs_total\"".into(),
                );
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
            if !convert.value_map.is_empty() {
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
            if name == "_info" {
                return Err(
                    "an info metric's name needs a stem before _info, e.g. \"app_build_info\""
                        .into(),
                );
            }
            if read != Read::One || !convert.value_map.is_empty() {
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
    if kind != MetricKind::Info && read == Read::One {
        return Err(
            "\"path\" is missing: the JSON Pointer to the value, e.g. \"/current_requests\"".into(),
        );
    }
    let numeric = matches!(kind, MetricKind::Gauge | MetricKind::Counter);
    if let Read::Count(_) | Read::Exists(_) = read {
        if !numeric {
            return Err(
                "\"count\" and \"exists\" give numbers: use them with a gauge or counter".into(),
            );
        }
    }
    let reads_path = numeric && matches!(read, Read::Path(_));
    if !reads_path && !convert.is_plain() {
        let field = transform_field(obj);
        return Err(format!(
            "{field:?} turns a value read by \"path\" into a number: it is not for {}",
            match (&kind, &read) {
                (MetricKind::Enum { .. }, _) => "enums",
                (MetricKind::Info, _) => "info metrics",
                (_, Read::Count(_)) => "\"count\"",
                _ => "\"exists\"",
            }
        ));
    }
    match (missing, &read, &kind) {
        (Missing::Default(_), _, MetricKind::Enum { .. } | MetricKind::Info) => {
            return Err("\"missing\" for an enum or info metric is \"skip\" or \"error\"".into())
        }
        (Missing::Default(value), _, MetricKind::Counter) if value < 0.0 => {
            return Err("\"missing\" for a counter must not be negative".into())
        }
        (Missing::Skip | Missing::Default(_), Read::Exists(_), _) => {
            return Err(
                "\"missing\" is not for \"exists\", which gives 0 for a missing value".into(),
            )
        }
        _ => {}
    }
    if let (MetricKind::Counter, Some(scale)) = (&kind, convert.scale) {
        if scale.0 < 0.0 {
            return Err("\"scale\" for a counter must be positive".into());
        }
    }
    Ok(Metric {
        name: name.to_string(),
        help,
        kind,
        read,
        each,
        labels,
        filter,
        convert,
        missing,
    })
}

/// The first transform field a metric names, for the message that refuses it.
fn transform_field(obj: &Map<String, Value>) -> &'static str {
    ["value_map", "regex", "parse", "units", "scale"]
        .into_iter()
        .find(|f| obj.contains_key(*f))
        .unwrap_or("value_map")
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

/// Checks a JSON Pointer read `depth` levels below the document's top.
fn check_pointer(field: &str, pointer: &str, depth: usize) -> Result<Pointer, String> {
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
    let pointer = Pointer::new(pointer);
    if depth + pointer.tokens.len() > MAX_DEPTH {
        let levels = depth + pointer.tokens.len();
        return Err(format!(
            "{field:?}: the pointer reads {levels} levels deep, and no document nests deeper than {MAX_DEPTH}: shorten it"
        ));
    }
    Ok(pointer)
}

fn parse_labels(
    value: Option<&Value>,
    has_each: bool,
    depth: usize,
) -> Result<Vec<(String, Source)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Object(obj) = value else {
        return Err(r#""labels" must be an object: {"label_name": "/pointer" or "@key"}"#.into());
    };
    // serde_json's map keeps its keys in order, so the labels come sorted by name.
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
            Value::String(s) => {
                Source::Pointer(check_pointer(&format!("labels.{label}"), s, depth)?)
            }
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

fn parse_where(value: &Value, depth: usize) -> Result<Vec<(Pointer, Condition)>, String> {
    let hint = r#"{"/state": "down"}, {"/state": ["down", "failed"]}, {"/name": {"matches": "^db-"}} or {"/state": {"not": "up"}}"#;
    let Value::Object(obj) = value else {
        return Err(format!("\"where\" must be an object such as {hint}"));
    };
    if obj.is_empty() {
        return Err(format!(
            "\"where\" is empty: add a condition such as {hint}"
        ));
    }
    let mut filter = Vec::with_capacity(obj.len());
    for (pointer, condition) in obj {
        let field = format!("where.{pointer}");
        let pointer = check_pointer(&field, pointer, depth)?;
        let condition = parse_condition(condition).map_err(|e| format!("{field:?}: {e}"))?;
        filter.push((pointer, condition));
    }
    Ok(filter)
}

fn parse_condition(value: &Value) -> Result<Condition, String> {
    let text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| text(item).ok_or("the list must hold strings, numbers or booleans"))
            .collect::<Result<_, _>>()
            .map(Condition::OneOf)
            .map_err(str::to_string),
        Value::Object(obj) if obj.len() == 1 => {
            let (word, inner) = obj.iter().next().expect("one entry");
            match (word.as_str(), inner) {
                ("matches", Value::String(regex)) => {
                    Ok(Condition::Matches(compile(regex, "matches", None)?))
                }
                ("not", inner) => Ok(Condition::Not(Box::new(parse_condition(inner)?))),
                _ => Err(r#"a condition is a value, a list of values, {"matches": "regex"} or {"not": condition}"#.into()),
            }
        }
        other => text(other).map(|t| Condition::OneOf(vec![t])).ok_or_else(|| {
            r#"a condition is a value, a list of values, {"matches": "regex"} or {"not": condition}"#.into()
        }),
    }
}

/// Compiles a regular expression; `groups` is the number of capture groups it must have.
fn compile(regex: &str, field: &str, groups: Option<usize>) -> Result<Pattern, String> {
    let compiled = regex_lite::Regex::new(regex).map_err(|e| {
        let error = e.to_string();
        let first = error.lines().next().unwrap_or("");
        format!("{field:?}: {regex:?} is not a valid regular expression ({first}): fix the pattern")
    })?;
    // captures_len counts the whole match as group 0.
    let found = compiled.captures_len() - 1;
    match groups {
        Some(1) if found == 0 => Err(format!(
            "{field:?}: {regex:?} has no capture group: put the number in parentheses, e.g. \"([0-9.]+) Mbps\""
        )),
        Some(wanted) if found != wanted => Err(format!(
            "{field:?}: {regex:?} has {found} capture groups, and the number must be the only one: make the others (?:...)"
        )),
        _ => Ok(Pattern(compiled)),
    }
}

fn parse_convert(obj: &Map<String, Value>) -> Result<Convert, String> {
    let value_map = match obj.get("value_map") {
        None => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, number)| match number.as_f64() {
                Some(n) => Ok((key.clone(), n)),
                None => Err(format!("\"value_map\": {key:?} must map to a number")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(r#""value_map" must be an object: {"green": 0, "red": 2}"#.into());
        }
    };
    let regex = match obj.get("regex") {
        None => None,
        Some(Value::String(regex)) => Some(compile(regex, "regex", Some(1))?),
        Some(_) => return Err(r#""regex" must be a string, e.g. "([0-9.]+) Mbps""#.into()),
    };
    let parse = match obj.get("parse") {
        None => Parse::Number,
        Some(Value::String(name)) => Parse::from_name(name)
            .ok_or_else(|| format!("\"parse\": {name:?} is unknown (use {})", Parse::NAMES))?,
        Some(_) => {
            return Err(
                "\"parse\" must be one of number, thousands, percent, timestamp, duration".into(),
            )
        }
    };
    let units = match obj.get("units") {
        None => Vec::new(),
        Some(Value::Object(map)) if !map.is_empty() => {
            if !matches!(parse, Parse::Number | Parse::Thousands) {
                return Err(format!(
                    "\"units\" read a number and a unit; they do not go with \"parse\": {:?}",
                    parse.name()
                ));
            }
            // Longest first: "Mbps" is tried before "bps".
            let mut units: Vec<(String, Factor)> = Vec::with_capacity(map.len());
            for (unit, factor) in map {
                let factor = factor_of(factor).ok_or_else(|| format!("\"units\": {unit:?} must map to a number other than 0, the factor to base units"))?;
                let at = units.partition_point(|(u, _)| u.len() >= unit.len());
                units.insert(at, (unit.clone(), factor));
            }
            units
        }
        Some(_) => {
            return Err(
                r#""units" must be an object of units and factors: {"Mbps": 125000, "kbps": 125}"#
                    .into(),
            )
        }
    };
    let scale = match obj.get("scale") {
        None => None,
        Some(value) => Some(factor_of(value).ok_or(
            "\"scale\" must be a number other than 0: the factor to base units, e.g. 0.001 for milliseconds",
        )?),
    };
    Ok(Convert {
        value_map,
        regex,
        parse,
        units,
        scale,
    })
}

fn factor_of(value: &Value) -> Option<Factor> {
    value
        .as_f64()
        .filter(|f| f.is_finite() && *f != 0.0)
        .map(Factor)
}

fn parse_missing(value: Option<&Value>) -> Result<Missing, String> {
    match value {
        None => Ok(Missing::Error),
        Some(Value::String(s)) if s == "error" => Ok(Missing::Error),
        Some(Value::String(s)) if s == "skip" => Ok(Missing::Skip),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(value) if value.is_finite() => Ok(Missing::Default(value)),
            _ => Err("\"missing\" must be a finite number".into()),
        },
        Some(_) => Err(
            r#""missing" is "error" (the default: counted), "skip" (silently) or a number to use instead"#
                .into(),
        ),
    }
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
    let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
    for item in items {
        let Value::String(state) = item else {
            return Err("\"states\" must hold strings".into());
        };
        if !seen.insert(state.clone()) {
            return Err(format!("\"states\": {state:?} is listed twice"));
        }
        states.push(state.clone());
    }
    Ok(states)
}
