//! Property tests across the library: any JSON document through any valid mapping renders
//! valid expositions in both formats and never panics, and the strict format checkers of
//! `tests/harness/formats.rs` accept and refuse what they should. The checkers are held to the
//! real parsers in `tests/external/formats.rs`.

use std::collections::HashSet;

use serde_json::Value;
use status_exporter::exposition::{self, Format};

use crate::harness::formats::{
    check_openmetrics, check_text, BAD_OPENMETRICS, BAD_TEXT, GOOD_OPENMETRICS, GOOD_TEXT,
};
use crate::harness::random::run_case;

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

/// Any JSON document through any valid mapping, transforms included: no panic, and both formats
/// pass the checkers. 3,000 cases; the generator is checked to reach every kind of metric with
/// samples, `each` over arrays and objects, `@key` labels, value maps and every transform.
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
        for family in case.families.iter().filter(|f| !f.is_empty()) {
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
            for field in [
                "regex", "parse", "units", "scale", "missing", "count", "exists", "where",
            ] {
                if metric.get(field).is_some() {
                    reached.insert(field);
                }
            }
        }
    }
    let mut reached: Vec<&str> = reached.into_iter().collect();
    reached.sort();
    assert_eq!(
        reached,
        [
            "@key",
            "count",
            "counter",
            "each array",
            "each object",
            "enum label",
            "exists",
            "gauge",
            "info",
            "missing",
            "parse",
            "regex",
            "scale",
            "stateset",
            "units",
            "value_map",
            "where"
        ]
    );
    assert!(refused < CASES / 4, "{refused} of {CASES} mappings refused");
}
