//! The one checker of both exposition formats the exporter serves, stricter than Prometheus:
//! [`check_text`] (text format 0.0.4) and [`check_openmetrics`] (OpenMetrics 1.0.0), and the
//! hand-written documents that pin what each accepts and refuses. `tests/it/properties.rs`
//! holds every random output to them, `tests/it/mapping.rs` every example's scrape, and
//! `tests/external/formats.rs` checks that they agree with the real parsers: `promtool check
//! metrics` (Prometheus' Go parser) and the OpenMetrics parser of the official Python client.

use std::collections::HashSet;

/// Checks an exposition in text format 0.0.4, strictly: every family has one HELP and one TYPE
/// (`gauge` or `counter`) before its samples and appears once, samples belong to the family
/// above them, names and labels are valid, label values and HELP texts use only the escapes
/// the format knows, values are numbers (`NaN`, `+Inf`, `-Inf` included), no timestamps, no
/// duplicate series, no empty lines, and the last line ends with a line feed. Stricter than
/// Prometheus where our renderer never needs the freedom (comments, untyped samples).
pub fn check_text(exposition: &str) -> Result<(), String> {
    check(exposition, false)
}

/// Checks an exposition in OpenMetrics 1.0.0 as [`check_text`] does, and also: `# EOF` ends it,
/// HELP texts may escape `"`, types are `gauge`, `counter`, `stateset` or `info`; counter
/// samples are `<family>_total` and neither NaN nor negative, info samples `<family>_info`
/// with value 1, stateset samples carry a label named as the family and are 0 or 1; no two
/// families claim the same sample name (a counter `x` claims `x`, `x_total` and `x_created`).
pub fn check_openmetrics(exposition: &str) -> Result<(), String> {
    check(exposition, true)
}

/// The family whose lines are being read.
struct Block {
    name: String,
    kind: Option<String>,
    help: bool,
    samples: usize,
}

fn check(exposition: &str, om: bool) -> Result<(), String> {
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
            if block.as_ref().is_none_or(|b| b.name != name) {
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
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !mantissa_ok || !exponent_ok {
        return Err(format!("{s:?} is not a number"));
    }
    s.parse().map_err(|_| format!("{s:?} is not a number"))
}

/// Documents both checkers must accept, and documents they must refuse, with whether the
/// real parser refuses it too (true), or accepts it and our checker is the stricter (false).
pub const GOOD_TEXT: &[&str] = &[
    "",
    "# HELP a x\n# TYPE a gauge\na 1\n",
    "# HELP a \n# TYPE a gauge\na{l=\"\"} NaN\na{l=\"\\\\ \\\" \\n\"} -Inf\n",
    "# HELP a_total \"quotes\" stay\n# TYPE a_total counter\na_total 1e17\n",
    "# HELP a x\\ny\\\\\n# TYPE a gauge\na{a=\"1\",b=\"\r\t\u{0}\u{2028}\"} -1.5e-7\n",
    "# TYPE a gauge\n# HELP a x\na 1\n# HELP a:b y\n# TYPE a:b gauge\na:b 2\n",
];
pub const BAD_TEXT: &[(&str, bool)] = &[
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
pub const GOOD_OPENMETRICS: &[&str] = &[
    "# EOF\n",
    "# HELP a x\n# TYPE a gauge\na 1\n# EOF\n",
    "# HELP a x \\\" \\\\ \\n\n# TYPE a counter\na_total 0\na_total{l=\"\"} +Inf\n# EOF\n",
    "# HELP a x\n# TYPE a stateset\na{a=\"s\\n1\"} 1\na{a=\"s2\"} 0\n# EOF\n",
    "# HELP a x\n# TYPE a info\na_info{v=\"\\\"\"} 1\n# HELP b x\n# TYPE b gauge\nb NaN\n# EOF\n",
    "# HELP a x\n# TYPE a counter\na_total -0\n# EOF\n",
];
pub const BAD_OPENMETRICS: &[(&str, bool)] = &[
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
