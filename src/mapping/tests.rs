use super::*;
use crate::exposition::{render, Format};

/// Applies a mapping (file text) to a document and compares the 0.0.4 text and the first
/// error of each metric that skipped samples.
fn check(mapping: &str, doc: &str, expected: &str, expected_errors: &[&str]) {
    let mapping = parse(mapping).unwrap_or_else(|e| panic!("mapping: {e}"));
    let full: Value = serde_json::from_str(doc).expect("test document is JSON");
    let applied = apply(&mapping, &full);
    // The pruned document that polls use answers every pointer as the full one does.
    let pruned = parse_document(&mapping, doc.as_bytes()).expect("test document is JSON");
    assert_eq!(apply(&mapping, &pruned), applied, "pruned {pruned}");
    let mut out = String::new();
    render(&applied.families, Format::Text, &mut out);
    assert_eq!(out, expected);
    let errors: Vec<String> = applied
        .errors
        .iter()
        .filter_map(|s| s.first.clone().map(|first| format!("{} {first}", s.count)))
        .collect();
    assert_eq!(errors, expected_errors);
}

fn check_invalid(mapping: &str, expected: &str) {
    match parse(mapping) {
        Ok(m) => panic!("expected an error, parsed {m:?}"),
        Err(e) => assert_eq!(e, expected),
    }
}

#[test]
fn builtin_is_the_tutorial() {
    // The golden output is the shipped example's (tests/it checks it through the binary).
    check(
        BUILTIN,
        include_str!("../../scripts/mappings/tutorial/document.json"),
        include_str!("../../scripts/mappings/tutorial/expected.prom"),
        &[],
    );
}

#[test]
fn values_of_every_json_type() {
    let mapping = r#"{"metrics": [
            {"name": "a", "help": "h", "path": "/a"},
            {"name": "b", "help": "h", "path": "/b"},
            {"name": "c", "help": "h", "path": "/c"},
            {"name": "d", "help": "h", "path": "/d"},
            {"name": "e", "help": "h", "path": "/e"},
            {"name": "f", "help": "h", "path": "/f"},
            {"name": "g", "help": "h", "path": "/g"},
            {"name": "h", "help": "h", "path": "/h"},
            {"name": "i", "help": "h", "path": "/i"}
        ]}"#;
    let doc = r#"{"a": true, "b": false, "c": " 12.5 ", "d": null, "e": {"x": 1},
                      "f": "twelve", "g": 1e400, "h": -12345678901234567890, "i": [1]}"#;
    check(
        mapping,
        doc,
        "# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b gauge\nb 0\n\
             # HELP c h\n# TYPE c gauge\nc 12.5\n# HELP g h\n# TYPE g gauge\ng +Inf\n\
             # HELP h h\n# TYPE h gauge\nh -1.2345678901234567e19\n",
        &[
            "1 /d: null, not a number",
            "1 /e: an object, not a number",
            r#"1 /f: "twelve", not a number (add it to value_map)"#,
            "1 /i: an array, not a number",
        ],
    );
}

#[test]
fn missing_values_skip_the_sample() {
    check(BUILTIN, r#"{"current_requests": 1}"#,
            "# HELP app_requests_current Current requests\n# TYPE app_requests_current gauge\napp_requests_current 1\n",
            &["1 /pending_requests: missing, not a number", "1 /total_uptime: missing, not a number", "1 /health: missing, not a state"]);
    check(
        BUILTIN,
        "[1, 2]",
        "",
        &[
            "1 /current_requests: missing, not a number",
            "1 /pending_requests: missing, not a number",
            "1 /total_uptime: missing, not a number",
            "1 /health: missing, not a state",
        ],
    );
}

#[test]
fn enums() {
    let mapping = r#"{"metrics": [{"name": "app_health", "help": "Health", "type": "enum", "path": "/health", "states": ["healthy", "unhealthy"]},
            {"name": "on", "help": "Switch", "type": "enum", "label": "state", "path": "/on", "states": ["true", "false"]}]}"#;
    check(
        mapping,
        r#"{"health": "degraded", "on": false}"#,
        r#"# HELP app_health Health
# TYPE app_health gauge
app_health{app_health="healthy"} 0
app_health{app_health="unhealthy"} 0
# HELP on Switch
# TYPE on gauge
on{state="true"} 0
on{state="false"} 1
"#,
        &[r#"1 /health: "degraded" is not one of the states (healthy, unhealthy); all are 0"#],
    );
}

#[test]
fn counters_are_never_negative_or_nan() {
    let mapping = r#"{"metrics": [
            {"name": "a_total", "help": "h", "type": "counter", "path": "/a"},
            {"name": "b_total", "help": "h", "type": "counter", "path": "/b"},
            {"name": "c_total", "help": "h", "type": "counter", "path": "/c", "value_map": {"red": -1}},
            {"name": "d_total", "help": "h", "type": "counter", "path": "/d"},
            {"name": "e", "help": "h", "path": "/a"}
        ]}"#;
    check(
            mapping,
            r#"{"a": -5, "b": "NaN", "c": "red", "d": 1e400}"#,
            "# HELP d_total h\n# TYPE d_total counter\nd_total +Inf\n# HELP e h\n# TYPE e gauge\ne -5\n",
            &[
                "1 /a: -5 gives -5: a counter is never negative or NaN",
                r#"1 /b: "NaN" gives NaN: a counter is never negative or NaN"#,
                r#"1 /c: "red" gives -1: a counter is never negative or NaN"#,
            ],
        );
}

#[test]
fn value_map() {
    let mapping = r#"{"metrics": [{"name": "cluster_status_code", "help": "green=0 yellow=1 red=2", "path": "/status", "value_map": {"green": 0, "yellow": 1, "red": 2}},
            {"name": "up_flag", "help": "h", "path": "/up", "value_map": {"true": 5}}]}"#;
    check(mapping, r#"{"status": "yellow", "up": true}"#,
            "# HELP cluster_status_code green=0 yellow=1 red=2\n# TYPE cluster_status_code gauge\ncluster_status_code 1\n# HELP up_flag h\n# TYPE up_flag gauge\nup_flag 5\n", &[]);
    check(
        mapping,
        r#"{"status": "purple", "up": false}"#,
        "# HELP up_flag h\n# TYPE up_flag gauge\nup_flag 0\n",
        &[r#"1 /status: "purple", not a number (add it to value_map)"#],
    );
}

#[test]
fn each_over_arrays_and_objects() {
    let mapping = r#"{"metrics": [
            {"name": "index_docs", "help": "Documents per index", "each": "/indices", "labels": {"index": "@key"}, "path": "/docs/count"},
            {"name": "queue_depth", "help": "Messages waiting", "each": "/queues", "labels": {"queue": "/name", "vhost": "/vhost"}, "path": "/messages"},
            {"name": "queue_position", "help": "Index", "each": "/queues", "labels": {"i": "@key"}, "path": "/messages"},
            {"name": "nothing", "help": "Empty", "each": "/empty", "path": ""}
        ]}"#;
    let doc = r#"{
            "indices": {"logs": {"docs": {"count": 10}}, "a/b~c": {"docs": {"count": 3}}, "bad": {"docs": {}}},
            "queues": [{"name": "q1", "vhost": "/", "messages": 5}, {"name": "q\"2\n", "vhost": "v\\", "messages": "7"},
                       {"name": "q1", "vhost": "/", "messages": 9}, {"vhost": "x", "messages": 1}],
            "empty": []
        }"#;
    check(
        mapping,
        doc,
        r#"# HELP index_docs Documents per index
# TYPE index_docs gauge
index_docs{index="a/b~c"} 3
index_docs{index="logs"} 10
# HELP queue_depth Messages waiting
# TYPE queue_depth gauge
queue_depth{queue="q1",vhost="/"} 5
queue_depth{queue="q\"2\n",vhost="v\\"} 7
# HELP queue_position Index
# TYPE queue_position gauge
queue_position{i="0"} 5
queue_position{i="1"} 7
queue_position{i="2"} 9
queue_position{i="3"} 1
"#,
        &[
            "1 /indices/bad/docs/count: missing, not a number",
            "2 /queues/2: the same labels as an earlier element; the first is kept",
        ],
    );
    let missing_label = r#"{"metrics": [{"name": "q", "help": "h", "each": "/queues", "labels": {"queue": "/name"}, "path": "/messages"}]}"#;
    check(
        missing_label,
        r#"{"queues": [{"messages": 1}]}"#,
        "",
        &[r#"1 /queues/0/name: label "queue": missing, not a string or number"#],
    );
    check(
        missing_label,
        r#"{"queues": 5}"#,
        "",
        &["1 /queues: 5, not an array or object"],
    );
}

#[test]
fn nested_each_with_enum_and_info() {
    let mapping = r#"{"metrics": [
            {"name": "component_status", "help": "h", "type": "enum", "label": "status", "each": "/components", "labels": {"component": "@key"}, "path": "/status", "states": ["UP", "DOWN"]},
            {"name": "app_build_info", "help": "Build of the application", "type": "info", "labels": {"version": "/version", "commit": "/build/commit"}},
            {"name": "jobs_processed_total", "help": "Jobs processed", "type": "counter", "path": "/stats/jobs processed"},
            {"name": "slash_key", "help": "h", "path": "/a~1b/~0c"}
        ]}"#;
    let doc = r#"{"components": {"db": {"status": "UP"}, "disk": {"status": "DOWN"}},
            "version": "1.2.3", "build": {"commit": "abc"}, "stats": {"jobs processed": 42}, "a/b": {"~c": 1}}"#;
    check(
        mapping,
        doc,
        r#"# HELP component_status h
# TYPE component_status gauge
component_status{component="db",status="UP"} 1
component_status{component="db",status="DOWN"} 0
component_status{component="disk",status="UP"} 0
component_status{component="disk",status="DOWN"} 1
# HELP app_build_info Build of the application
# TYPE app_build_info gauge
app_build_info{commit="abc",version="1.2.3"} 1
# HELP jobs_processed_total Jobs processed
# TYPE jobs_processed_total counter
jobs_processed_total 42
# HELP slash_key h
# TYPE slash_key gauge
slash_key 1
"#,
        &[],
    );
}

#[test]
fn documents_keep_only_what_the_mapping_reads() {
    fn check(mapping: &str, doc: &str, expected: &str) {
        let mapping = parse(mapping).unwrap();
        let pruned = parse_document(&mapping, doc.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(
            pruned.map(|v| v.to_string()),
            Ok(expected.to_string()),
            "{doc}"
        );
    }
    let each = r#"{"metrics": [{"name": "q", "help": "h", "each": "/qs", "labels": {"n": "/name"}, "path": "/m/count"},
            {"name": "first", "help": "h", "path": "/list/1"}, {"name": "b", "help": "h", "path": "/a~1b"},
            {"name": "q0_extra", "help": "h", "path": "/qs/0/extra"}]}"#;
    check(
        each,
        r#"{"big": [1, {"x": "y"}, [null]], "qs": [{"name": "a", "m": {"count": 1, "other": 2}, "junk": [1,2], "extra": 3}],
                "list": [10, 11, 12], "a/b": {"kept": 1e400}}"#,
        r#"{"a/b":{"kept":1e+400},"list":[null,11,null],"qs":[{"extra":3,"m":{"count":1},"name":"a"}]}"#,
    );
    check(
        each,
        r#"{"qs": {"k": {"name": "x", "m": 5}}, "list": 7}"#,
        r#"{"list":7,"qs":{"k":{"m":5,"name":"x"}}}"#,
    );
    check(each, r#"{"qs": 5.50}"#, r#"{"qs":5.50}"#);
    let mapping = parse(each).unwrap();
    for bad in [
        r#"{"big": [1, 2,], "qs": []}"#,
        r#"{"qs": []} x"#,
        "",
        r#"{"big": {"a" 1}}"#,
    ] {
        assert!(
            parse_document(&mapping, bad.as_bytes()).is_err(),
            "{bad:?} is not JSON"
        );
    }
    // Deep nesting never overflows the stack: skipped, or refused past serde_json's limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let pruned = parse_document(&mapping, deep.as_bytes()).map(|v| v.to_string());
    assert_eq!(pruned.ok().as_deref(), Some("[null]"));
    let deep = format!(
        r#"{{"list": [0, {}{}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(
        parse_document(&mapping, deep.as_bytes()).is_err(),
        "recursion limit"
    );
}

#[test]
fn validation() {
    let one = |fields: &str| format!(r#"{{"metrics": [{{{fields}}}]}}"#);
    check_invalid(
        "[]",
        r#"the top level must be an object: {"metrics": [...]}"#,
    );
    check_invalid(
        "{",
        "not valid JSON: EOF while parsing an object at line 1 column 1",
    );
    check_invalid(
        r#"{"metrics": [], "x": 1}"#,
        r#"unknown top-level field "x" (the only field is "metrics")"#,
    );
    check_invalid(
        r#"{"metrics": []}"#,
        r#""metrics" is empty: add at least one metric"#,
    );
    check_invalid(&one(r#""help": "h""#), r#"metrics[0]: "name" is missing"#);
    check_invalid(
        &one(r#""name": "a", "help": "h", "tpye": "gauge", "path": "/a""#),
        r#"metrics[0] "a": unknown field "tpye" (fields are: name, help, type, path, each, labels, label, states, value_map)"#,
    );
    check_invalid(
        &one(r#""name": "1a", "help": "h", "path": "/a""#),
        r#"metrics[0] "1a": is not a valid metric name: use letters, digits, _ and :, not starting with a digit"#,
    );
    check_invalid(
        &one(r#""name": "a-b", "help": "h", "path": "/a""#),
        r#"metrics[0] "a-b": is not a valid metric name: use letters, digits, _ and :, not starting with a digit"#,
    );
    check_invalid(
        &one(r#""name": "process_x", "help": "h", "path": "/a""#),
        r#"metrics[0] "process_x": names starting with process_ are the exporter's own: choose another prefix"#,
    );
    check_invalid(
        &one(r#""name": "status_exporter_up", "help": "h", "path": "/a""#),
        r#"metrics[0] "status_exporter_up": names starting with status_exporter_ are the exporter's own: choose another prefix"#,
    );
    check_invalid(
        &one(r#""name": "a", "path": "/a""#),
        r#"metrics[0] "a": "help" is missing: add a one-line description"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h""#),
        r#"metrics[0] "a": "path" is missing: the JSON Pointer to the value, e.g. "/current_requests""#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "path": "a.b""#),
        r#"metrics[0] "a": "path": "a.b" is not a JSON Pointer: start it with / (e.g. "/a.b"), or use "" for the whole element"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "path": "/a~2""#),
        r#"metrics[0] "a": "path": "/a~2" has a ~ that is not ~0 (for ~) or ~1 (for /)"#,
    );
    check_invalid(
        &one(r#""name": "jobs", "help": "h", "type": "counter", "path": "/a""#),
        r#"metrics[0] "jobs": a counter's name must end in _total: call it "jobs_total""#,
    );
    check_invalid(
        &one(r#""name": "jobs_total", "help": "h", "path": "/a""#),
        r#"metrics[0] "jobs_total": names ending in _total are for counters: add "type": "counter" or rename"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "type": "enum", "path": "/a""#),
        r#"metrics[0] "a": an enum needs "states": ["healthy", "unhealthy"]"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "type": "enum", "path": "/a", "states": []"#),
        r#"metrics[0] "a": an enum needs "states": ["healthy", "unhealthy"]"#,
    );
    check_invalid(
        &one(r#""name": "a:b", "help": "h", "type": "enum", "path": "/a", "states": ["x"]"#),
        r#"metrics[0] "a:b": label "a:b" is not a valid label name (letters, digits and _, not starting with a digit); set "label" to a valid label name"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "path": "/a", "states": ["x"]"#),
        r#"metrics[0] "a": "states" is only for "type": "enum""#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "type": "histogram", "path": "/a""#),
        r#"metrics[0] "a": "type" "histogram" is unknown (use gauge, counter, enum or info)"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "path": "/a", "labels": {"__x": "/x"}"#),
        r#"metrics[0] "a": "labels": "__x" starts with __, which Prometheus reserves"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "path": "/a", "labels": {"x-y": "/x"}"#),
        r#"metrics[0] "a": "labels": "x-y" is not a valid label name (letters, digits and _, not starting with a digit)"#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "path": "/a", "labels": {"k": "@key"}"#),
        r#"metrics[0] "a": "labels": "k" uses @key, which needs "each""#,
    );
    check_invalid(
        &one(r#""name": "a_info", "help": "h", "type": "info""#),
        r#"metrics[0] "a_info": an info metric needs "labels""#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "type": "info", "labels": {"v": "/v"}"#),
        r#"metrics[0] "a": an info metric's name must end in _info: call it "a_info""#,
    );
    check_invalid(
        &one(r#""name": "a", "help": "h", "path": "/a", "value_map": {"x": "1"}"#),
        r#"metrics[0] "a": "value_map": "x" must map to a number"#,
    );
    check_invalid(
        r#"{"metrics": [{"name": "a", "help": "h", "path": "/a"}, {"name": "a", "help": "h", "path": "/b"}]}"#,
        r#"metrics[1] "a": the name is already used by another metric"#,
    );
    check_invalid(
        r#"{"metrics": [{"name": "jobs", "help": "h", "path": "/a"}, {"name": "jobs_total", "help": "h", "type": "counter", "path": "/b"}]}"#,
        r#"metrics[1] "jobs_total": clashes with "jobs": in OpenMetrics both are the family "jobs"; rename one"#,
    );
    check_invalid(
        r#"{"metrics": [{"name": "jobs_created", "help": "h", "path": "/a"}, {"name": "jobs_total", "help": "h", "type": "counter", "path": "/b"}]}"#,
        r#"metrics[1] "jobs_total": clashes with "jobs_created": in OpenMetrics the counter "jobs_total" also uses the name "jobs_created"; rename one"#,
    );
    check_invalid(
        r#"{"metrics": [{"name": "jobs_total", "help": "h", "type": "counter", "path": "/b"}, {"name": "jobs_created_info", "help": "h", "type": "info", "labels": {"a": "/a"}}]}"#,
        r#"metrics[1] "jobs_created_info": clashes with "jobs_total": in OpenMetrics the counter "jobs_total" also uses the name "jobs_created"; rename one"#,
    );
}
