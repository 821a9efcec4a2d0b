use serde_json::Value;

use super::*;
use crate::exposition::{render, Format};

/// Applies a mapping (file text) to a document and compares the 0.0.4 text and the first
/// error of each metric that skipped samples. Each metric, read alone, gives the same.
fn check(mapping_text: &str, doc: &str, expected: &str, expected_errors: &[&str]) {
    let mapping = parse(mapping_text).unwrap_or_else(|e| panic!("mapping: {e}"));
    let applied =
        apply(&mapping, doc.as_bytes(), usize::MAX).unwrap_or_else(|e| panic!("{e}: {doc}"));
    let file: Value = serde_json::from_str(mapping_text).unwrap();
    for (i, metric) in file["metrics"].as_array().unwrap().iter().enumerate() {
        let alone = parse(&serde_json::json!({ "metrics": [metric] }).to_string()).unwrap();
        let got = apply(&alone, doc.as_bytes(), usize::MAX).unwrap();
        assert_eq!(got.families[0], applied.families[i], "{metric} alone");
        assert_eq!(got.errors[0], applied.errors[i], "{metric} alone");
    }
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
index_docs{index="logs"} 10
index_docs{index="a/b~c"} 3
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

/// One gauge (or other metric) per line of `fields`, named m0, m1, ...
fn metrics(fields: &[&str]) -> String {
    let metrics: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!(r#"{{"name": "m{i}", "help": "h", {f}}}"#))
        .collect();
    format!(r#"{{"metrics": [{}]}}"#, metrics.join(","))
}

/// The sample lines of a rendering, without HELP and TYPE.
fn samples(mapping: &str, doc: &str) -> (Vec<String>, Vec<String>) {
    let mapping = parse(mapping).unwrap_or_else(|e| panic!("mapping: {e}"));
    let applied = apply(&mapping, doc.as_bytes(), usize::MAX).unwrap();
    let mut out = String::new();
    render(&applied.families, Format::Text, &mut out);
    let lines = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let errors = applied
        .errors
        .iter()
        .filter_map(|s| s.first.clone().map(|first| format!("{} {first}", s.count)))
        .collect();
    (lines, errors)
}

fn check_samples(fields: &[&str], doc: &str, expected: &[&str], expected_errors: &[&str]) {
    let mapping = metrics(fields);
    let (lines, errors) = samples(&mapping, doc);
    assert_eq!(lines, expected, "{mapping}\n{doc}");
    assert_eq!(errors, expected_errors, "{mapping}\n{doc}");
    // Each metric read alone gives the same (the plan shares pointers between metrics).
    check(
        &mapping,
        doc,
        &{
            let mut out = String::new();
            let mapping = parse(&mapping).unwrap();
            render(
                &apply(&mapping, doc.as_bytes(), usize::MAX)
                    .unwrap()
                    .families,
                Format::Text,
                &mut out,
            );
            out
        },
        expected_errors,
    );
}

#[test]
fn numbers_inside_strings() {
    check_samples(
        &[
            r#""path": "/rate", "units": {"Mbps": 125000, "kbps": 125}"#,
            r#""path": "/slow", "units": {"Mbps": 125000, "kbps": 125}"#,
            r#""path": "/queries", "parse": "thousands""#,
            r#""path": "/blocked", "parse": "percent""#,
            r#""path": "/share", "parse": "percent""#,
            r#""path": "/temp", "regex": "^T=([-0-9.]+)C$""#,
            r#""path": "/used", "regex": "used ([0-9,]+) of", "parse": "thousands", "scale": 1024"#,
            r#""path": "/plain", "units": {"": 1, "%": 0.01}"#,
        ],
        r#"{"rate": "95.21 Mbps", "slow": "512kbps", "queries": "1,234,567", "blocked": "12.3%",
            "share": 12.5, "temp": "T=-3.5C", "used": "used 1,024 of 4,096 KiB", "plain": "7"}"#,
        &[
            "m0 11901250",
            "m1 64000",
            "m2 1234567",
            "m3 0.123",
            "m4 0.125",
            "m5 -3.5",
            "m6 1048576",
            "m7 7",
        ],
        &[],
    );
    check_samples(
        &[
            r#""path": "/rate", "units": {"Mbps": 125000, "kbps": 125}"#,
            r#""path": "/queries", "parse": "thousands""#,
            r#""path": "/temp", "regex": "^T=([-0-9.]+)C$""#,
            r#""path": "/temp", "regex": "^T=(.*)$""#,
            r#""path": "/when", "parse": "timestamp""#,
            r#""path": "/uptime", "parse": "duration""#,
            r#""path": "/status", "value_map": {"up": 1}, "parse": "thousands""#,
        ],
        r#"{"rate": "95.21 Gbps", "queries": "1,23", "temp": "T=warm", "when": "yesterday",
            "uptime": "forever", "status": "down"}"#,
        &[],
        &[
            r#"1 /rate: "95.21 Gbps", not a number with one of the units ["Mbps", "kbps"]"#,
            r#"1 /queries: "1,23", not a number with thousands separators (1,234,567)"#,
            r#"1 /temp: "T=warm" does not match regex "^T=([-0-9.]+)C$""#,
            r#"1 /temp: "T=warm" (captured "warm"), not a number"#,
            r#"1 /when: "yesterday", not an RFC 3339 timestamp (2024-05-01T12:00:00Z)"#,
            r#"1 /uptime: "forever", not a duration (1h2m3.5s or 01:02:03)"#,
            r#"1 /status: "down", not a number with thousands separators (1,234,567)"#,
        ],
    );
}

#[test]
fn scaling_times_and_durations() {
    check_samples(
        &[
            r#""path": "/latency_ms", "scale": 0.001"#,
            r#""path": "/memory_kib", "scale": 1024"#,
            r#""path": "/since", "parse": "timestamp""#,
            r#""path": "/since_ms", "scale": 0.001"#,
            r#""path": "/uptime", "parse": "duration""#,
            r#""path": "/runtime", "parse": "duration""#,
            r#""path": "/wait", "parse": "duration", "scale": 1000"#,
            r#""path": "/seconds", "parse": "duration""#,
            r#""path": "/flag", "scale": 10"#,
            r#""path": "/status", "value_map": {"ok": 1}, "scale": 1000"#,
        ],
        r#"{"latency_ms": 1234.5, "memory_kib": "512", "since": "2024-05-01T14:00:00.5+02:00",
            "since_ms": 1714564800500, "uptime": "1h2m3.5s", "runtime": "1 day, 2:03:04",
            "wait": "250ms", "seconds": 42, "flag": true, "status": "ok"}"#,
        &[
            "m0 1.2345",
            "m1 524288",
            "m2 1714564800.5",
            "m3 1714564800.5",
            "m4 3723.5",
            "m5 93784",
            "m6 250",
            "m7 42",
            "m8 10",
            "m9 1",
        ],
        &[],
    );
}

#[test]
fn missing_and_null() {
    let fields = [
        r#""path": "/a""#,
        r#""path": "/a", "missing": "skip""#,
        r#""path": "/a", "missing": 0"#,
        r#""path": "/a", "missing": -1, "scale": 1000"#,
        r#""type": "enum", "path": "/a", "states": ["x"], "missing": "skip""#,
        r#""each": "/list", "labels": {"n": "/name"}, "path": "/v", "missing": "skip""#,
        r#""each": "/list", "labels": {"n": "/name"}, "path": "/v", "missing": 5"#,
    ];
    for doc in [
        r#"{"list": [{"v": 1}, {"name": "b"}]}"#,
        r#"{"a": null, "list": [{"v": 1}, {"name": "b"}]}"#,
    ] {
        let found = if doc.contains("null") {
            "null"
        } else {
            "missing"
        };
        check_samples(
            &fields,
            doc,
            &["m2 0", "m3 -1", "m6{n=\"b\"} 5"],
            &[&format!("1 /a: {found}, not a number")],
        );
    }
    // An absent `each` container: silent when the metric may be missing.
    check_samples(
        &[
            r#""each": "/list", "path": "", "missing": "skip""#,
            r#""each": "/list", "path": """#,
        ],
        "{}",
        &[],
        &["1 /list: missing, not an array or object"],
    );
}

#[test]
fn counting_and_existing() {
    let doc = r#"{"nodes": [{"name": "a", "state": "up"}, {"name": "b", "state": "down"},
                   {"name": "c", "state": "down", "cpu": 3}, {"name": "d"}],
                  "services": {"web": {"ok": true}, "db": {"ok": false}, "cache": {"ok": "true"}},
                  "clusters": [{"id": 7, "nodes": [{"state": "down"}, {"state": "up"}]}, {"id": 8, "nodes": []}],
                  "error": null, "version": "1.2", "empty": {}}"#;
    check_samples(
        &[
            r#""count": "/nodes""#,
            r#""count": "/nodes", "where": {"/state": "down"}"#,
            r#""count": "/nodes", "where": {"/state": {"not": "up"}}"#,
            r#""count": "/nodes", "where": {"/state": ["up", "down"], "/cpu": 3}"#,
            r#""count": "/services""#,
            r#""count": "/services", "where": {"/ok": true}"#,
            r#""count": "/empty""#,
            r#""count": "/missing", "missing": 0"#,
            r#""each": "/clusters", "labels": {"cluster": "/id"}, "count": "/nodes", "where": {"/state": "down"}"#,
            r#""exists": "/version""#,
            r#""exists": "/error""#,
            r#""exists": "/nodes/9""#,
            r#""each": "/nodes", "labels": {"node": "/name"}, "exists": "/cpu""#,
        ],
        doc,
        &[
            "m0 4",
            "m1 2",
            "m2 3",
            "m3 1",
            "m4 3",
            "m5 2",
            "m6 0",
            "m7 0",
            "m8{cluster=\"7\"} 1",
            "m8{cluster=\"8\"} 0",
            "m9 1",
            "m10 0",
            "m11 0",
            "m12{node=\"a\"} 0",
            "m12{node=\"b\"} 0",
            "m12{node=\"c\"} 1",
            "m12{node=\"d\"} 0",
        ],
        &[],
    );
    check_samples(
        &[r#""count": "/version""#, r#""count": "/gone""#],
        doc,
        &[],
        &[
            r#"1 /version: "1.2", not an array or object"#,
            "1 /gone: missing, not an array or object",
        ],
    );
}

#[test]
fn filters_on_each() {
    check_samples(
        &[
            r#""each": "/disks", "where": {"/type": "ssd"}, "labels": {"disk": "@key"}, "path": "/free""#,
            r#""each": "/disks", "where": {"/name": {"matches": "^sd[ab]$"}}, "labels": {"disk": "@key"}, "path": "/free""#,
            r#""each": "/disks", "where": {"/type": {"not": ["ssd", "nvme"]}}, "labels": {"disk": "@key"}, "path": "/free""#,
            r#""each": "/disks", "where": {"/mounted": false, "/free": 0}, "labels": {"disk": "@key"}, "path": "/free""#,
        ],
        r#"{"disks": [{"name": "sda", "type": "ssd", "free": 5, "mounted": true},
                      {"name": "sdb", "type": "hdd", "free": 0, "mounted": false},
                      {"name": "sdc", "type": "ssd", "free": 9},
                      {"name": "nvme0", "type": "nvme", "free": 1}]}"#,
        &[
            "m0{disk=\"0\"} 5",
            "m0{disk=\"2\"} 9",
            "m1{disk=\"0\"} 5",
            "m1{disk=\"1\"} 0",
            "m2{disk=\"1\"} 0",
            "m3{disk=\"1\"} 0",
        ],
        &[],
    );
}

#[test]
fn labels_keep_numbers_and_booleans_as_written() {
    check_samples(
        &[r#""each": "/v", "labels": {"as_written": "/x"}, "path": "/n""#],
        r#"{"v": [{"x": 1655371, "n": 1}, {"x": 1.655371e6, "n": 2}, {"x": true, "n": 3},
                  {"x": 0.10, "n": 4}, {"x": -0, "n": 5}, {"x": 123456789012345678901234567890, "n": 6}]}"#,
        &[
            "m0{as_written=\"1655371\"} 1",
            "m0{as_written=\"1.655371e6\"} 2",
            "m0{as_written=\"true\"} 3",
            "m0{as_written=\"0.10\"} 4",
            "m0{as_written=\"-0\"} 5",
            "m0{as_written=\"123456789012345678901234567890\"} 6",
        ],
        &[],
    );
    // Values are written as the exposition writes them, whatever the document's spelling.
    check_samples(
        &[r#""each": "/v", "labels": {"i": "@key"}, "path": """#],
        r#"{"v": [1.50, 1E3, -0.0, 0.000001, 12345678901234567, 7, -2.25, "3.0"]}"#,
        &[
            "m0{i=\"0\"} 1.5",
            "m0{i=\"1\"} 1000",
            "m0{i=\"2\"} -0",
            "m0{i=\"3\"} 1e-6",
            "m0{i=\"4\"} 12345678901234568",
            "m0{i=\"5\"} 7",
            "m0{i=\"6\"} -2.25",
            "m0{i=\"7\"} 3",
        ],
        &[],
    );
}

#[test]
fn a_bad_value_skips_only_its_sample() {
    // A lone surrogate in a string that is read, in one that is looked into, and in a key.
    let doc = r#"{"a": "\udc80", "b": 1, "c": "\ud800", "list": [{"n": "x", "v": 1}, "\udc80", {"n": "\udc80", "v": 2}],
                  "keys": {"\udc80": 1, "ok": 2}, "$serde_json::private::Number": "3"}"#;
    check_samples(
        &[
            r#""path": "/a""#,
            r#""path": "/b""#,
            r#""path": "/c/d""#,
            r#""each": "/list", "labels": {"n": "/n"}, "path": "/v""#,
            r#""each": "/keys", "labels": {"k": "@key"}, "path": """#,
            r#""path": "/$serde_json::private::Number""#,
            r#""each": "", "labels": {"k": "@key"}, "count": "", "missing": "skip""#,
        ],
        doc,
        &[
            "m1 1",
            "m3{n=\"x\"} 1",
            "m4{k=\"ok\"} 2",
            "m5 3",
            "m6{k=\"list\"} 3",
            "m6{k=\"keys\"} 2",
        ],
        &[
            "1 /a: a string that is not valid Unicode, not a number",
            "1 /c/d: missing, not a number",
            r#"2 /list/1/n: label "n": missing, not a string or number"#,
            r#"1 /keys/���: label "k": the key is not valid Unicode"#,
            "4 /a: a string that is not valid Unicode, not an array or object",
        ],
    );
}

#[test]
fn keys_written_twice_and_deep_documents() {
    // The first of two equal keys is read, as a pointer sees it and as an element.
    check_samples(
        &[
            r#""path": "/a/x""#,
            r#""path": "/a/y""#,
            r#""each": "/o", "labels": {"k": "@key"}, "path": """#,
        ],
        r#"{"a": {"x": 1}, "a": {"x": 2, "y": 3}, "o": {"k": 1, "j": 2, "k": 3}}"#,
        &["m0 1", "m2{k=\"k\"} 1", "m2{k=\"j\"} 2"],
        &[
            "1 /a/y: missing, not a number",
            "1 /o/k: the same labels as an earlier element; the first is kept",
        ],
    );
    // Deep nesting where nothing is read costs no stack; as deep as a pointer may read works.
    let deep = format!(
        r#"{{"skip": {}{}, "n": 1}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    check_samples(&[r#""path": "/n""#], &deep, &["m0 1"], &[]);
    let path = "/a".repeat(MAX_DEPTH);
    let doc = format!(
        "{}5{}",
        r#"{"a": "#.repeat(MAX_DEPTH),
        "}".repeat(MAX_DEPTH)
    );
    check_samples(&[&format!(r#""path": "{path}""#)], &doc, &["m0 5"], &[]);
}

#[test]
fn documents_that_are_not_json_or_too_many_series() {
    let mapping = parse(&metrics(&[
        r#""each": "/v", "labels": {"i": "@key"}, "path": """#,
    ]))
    .unwrap();
    for bad in [
        r#"{"v": [1, 2,]}"#,
        r#"{"v": []} x"#,
        "",
        r#"{"v" 1}"#,
        "\"\\udc80",
    ] {
        assert!(
            matches!(
                apply(&mapping, bad.as_bytes(), 10),
                Err(ApplyError::InvalidJson(_))
            ),
            "{bad:?} is not JSON"
        );
    }
    let doc = br#"{"v": [1, 2, 3]}"#;
    assert_eq!(apply(&mapping, doc, 3).map(|a| a.families[0].len()), Ok(3));
    assert_eq!(apply(&mapping, doc, 2), Err(ApplyError::TooManySeries(2)));
    let enums = parse(&metrics(&[
        r#""type": "enum", "path": "/s", "states": ["a", "b", "c"]"#,
    ]))
    .unwrap();
    assert_eq!(
        apply(&enums, br#"{"s": "a"}"#, 2),
        Err(ApplyError::TooManySeries(2))
    );
    // Bytes that are not UTF-8 read as U+FFFD.
    let labels =
        metrics(&[r#""type": "info", "labels": {"l": "/s"}"#]).replace("\"m0\"", "\"m0_info\"");
    let labels = parse(&labels).unwrap();
    let mut out = String::new();
    render(
        &apply(&labels, b"{\"s\": \"a\xffb\"}", 10).unwrap().families,
        Format::Text,
        &mut out,
    );
    assert!(out.ends_with("m0_info{l=\"a\u{fffd}b\"} 1\n"), "{out}");
}

#[test]
fn check_config_describes_each_metric() {
    let mapping = parse(&metrics(&[
        r#""path": "/a""#,
        r#""type": "counter", "path": "/b", "regex": "([0-9.]+) s", "parse": "thousands", "scale": 0.001"#,
        r#""each": "/n", "count": "/d", "where": {"/s": "down", "/x": {"not": {"matches": "^a"}}}, "missing": 0"#,
        r#""exists": "/e""#,
        r#""type": "enum", "path": "/f", "states": ["x"], "missing": "skip""#,
        r#""path": "/g", "units": {"Mbps": 125000, "": 1}, "value_map": {"n/a": 0}"#,
    ]).replace("\"m1\"", "\"m1_total\""))
    .unwrap();
    let lines: Vec<String> = mapping.metrics.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        lines,
        [
            r#"m0 (gauge) from "/a""#,
            r#"m1_total (counter) from "/b"; regex "([0-9.]+) s" parse thousands scale ×0.001"#,
            r#"m2 (gauge) counting "/d" for each of /n where "/s" is "down" and "/x" not (matches "^a"); missing: 0"#,
            r#"m3 (gauge) whether "/e" exists"#,
            r#"m4 (enum of 1) from "/f"; missing: skip"#,
            r#"m5 (gauge) from "/g"; value_map of 1 units "Mbps"×125000 ""×1"#,
        ]
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
        r#"unknown top-level field "x" (the fields are "metrics", "modules" and "probe")"#,
    );
    check_invalid(
        r#"{"metrics": []}"#,
        r#""metrics" is empty: add at least one metric"#,
    );
    check_invalid(&one(r#""help": "h""#), r#"metrics[0]: "name" is missing"#);
    check_invalid(
        &one(r#""name": "a", "help": "h", "tpye": "gauge", "path": "/a""#),
        r#"metrics[0] "a": unknown field "tpye" (fields are: name, help, type, path, count, exists, each, where, labels, label, states, value_map, regex, parse, units, scale, missing)"#,
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

#[test]
fn validation_of_transforms_and_limits() {
    let check = |fields: &str, expected: &str| {
        check_invalid(
            &format!(r#"{{"metrics": [{{"name": "m", "help": "h", {fields}}}]}}"#),
            &format!("metrics[0] \"m\": {expected}"),
        )
    };
    check(
        r#""path": "/a", "regex": "([0-9]+""#,
        r#""regex": "([0-9]+" is not a valid regular expression (found open group without closing ')'): fix the pattern"#,
    );
    check(
        r#""path": "/a", "regex": "[0-9]+ Mbps""#,
        r#""regex": "[0-9]+ Mbps" has no capture group: put the number in parentheses, e.g. "([0-9.]+) Mbps""#,
    );
    check(
        r#""path": "/a", "regex": "([0-9]+) (Mbps)""#,
        r#""regex": "([0-9]+) (Mbps)" has 2 capture groups, and the number must be the only one: make the others (?:...)"#,
    );
    check(
        r#""path": "/a", "parse": "hex""#,
        r#""parse": "hex" is unknown (use number, thousands, percent, timestamp, duration)"#,
    );
    check(
        r#""path": "/a", "parse": "duration", "units": {"s": 1}"#,
        r#""units" read a number and a unit; they do not go with "parse": "duration""#,
    );
    check(
        r#""path": "/a", "units": {"Mbps": 0}"#,
        r#""units": "Mbps" must map to a number other than 0, the factor to base units"#,
    );
    check(
        r#""path": "/a", "units": []"#,
        r#""units" must be an object of units and factors: {"Mbps": 125000, "kbps": 125}"#,
    );
    check(
        r#""path": "/a", "scale": 0"#,
        r#""scale" must be a number other than 0: the factor to base units, e.g. 0.001 for milliseconds"#,
    );
    check(
        r#""path": "/a", "missing": "ignore""#,
        r#""missing" is "error" (the default: counted), "skip" (silently) or a number to use instead"#,
    );
    check(
        r#""path": "/a", "where": {"/s": "x"}"#,
        r#""where" picks elements of "each" or "count": add one of them"#,
    );
    check(
        r#""count": "/a", "where": {"/s": {"like": "x"}}"#,
        r#""where./s": a condition is a value, a list of values, {"matches": "regex"} or {"not": condition}"#,
    );
    check(
        r#""count": "/a", "where": {"/s": {"matches": "("}}"#,
        r#""where./s": "matches": "(" is not a valid regular expression (found open group without closing ')'): fix the pattern"#,
    );
    check(
        r#""path": "/a", "count": "/b""#,
        r#""path" and "count" exclude each other: a metric reads one value"#,
    );
    check(
        r#""type": "enum", "count": "/a", "states": ["x"]"#,
        r#""count" and "exists" give numbers: use them with a gauge or counter"#,
    );
    check(
        r#""type": "enum", "path": "/a", "states": ["x"], "regex": "(x)""#,
        r#""regex" turns a value read by "path" into a number: it is not for enums"#,
    );
    check(
        r#""count": "/a", "scale": 2"#,
        r#""scale" turns a value read by "path" into a number: it is not for "count""#,
    );
    check(
        r#""type": "enum", "path": "/a", "states": ["x"], "missing": 0"#,
        r#""missing" for an enum or info metric is "skip" or "error""#,
    );
    check(
        r#""exists": "/a", "missing": "skip""#,
        r#""missing" is not for "exists", which gives 0 for a missing value"#,
    );
    check(
        &format!(r#""path": "{}""#, "/a".repeat(MAX_DEPTH + 1)),
        r#""path": the pointer reads 129 levels deep, and no document nests deeper than 128: shorten it"#,
    );
    check(
        &format!(
            r#""each": "{}", "path": "/b/c""#,
            "/a".repeat(MAX_DEPTH - 1)
        ),
        r#""path": the pointer reads 129 levels deep, and no document nests deeper than 128: shorten it"#,
    );
    check_invalid(
        r#"{"metrics": [{"name": "_total", "help": "h", "type": "counter", "path": "/a"}]}"#,
        r#"metrics[0] "_total": a counter's name needs a stem before _total, e.g. "jobs_total""#,
    );
    check_invalid(
        r#"{"metrics": [{"name": "_info", "help": "h", "type": "info", "labels": {"a": "/a"}}]}"#,
        r#"metrics[0] "_info": an info metric's name needs a stem before _info, e.g. "app_build_info""#,
    );
}

/// Compiling a plan is linear in the mapping: many metrics under one object cost what as many
/// spread over a two-level tree cost. (Each new child was inserted in its place in a sorted
/// list, moving those after it: 100,000 metrics under `/v` took 7 s of a `--check-config` that
/// now takes 1.2 s.) Keys in descending order, the worst case for that insertion; the fastest
/// of three builds of each, compared, so that a loaded machine slows both alike.
#[test]
fn a_plan_with_many_children_of_one_node_compiles_in_linear_time() {
    const METRICS: usize = 30_000;
    let mapping = |path: &dyn Fn(usize) -> String| {
        let metrics: Vec<String> = (0..METRICS)
            .map(|i| {
                let path = path(METRICS - 1 - i);
                format!(r#"{{"name": "m{i}", "help": "h", "path": "{path}"}}"#)
            })
            .collect();
        parse(&format!(r#"{{"metrics": [{}]}}"#, metrics.join(","))).unwrap()
    };
    let wide = mapping(&|i| format!("/v/m{i:05}"));
    let tree = mapping(&|i| format!("/d{:03}/m{:03}", i / 200, i % 200));
    let fastest = |mapping: &Mapping| {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                let plan = plan::Plan::new(&mapping.metrics);
                assert!(plan.nodes.len() > METRICS);
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let (wide, tree) = (fastest(&wide), fastest(&tree));
    assert!(wide < tree * 5, "one wide node {wide:?}, a tree {tree:?}");
}

/// A repeated label set is found whatever the values hold: random values from characters that
/// are escaped or take part in the line's syntax (`"`, `\`, newline, `,`, `=`, `}`), one or two
/// labels, plain and enum metrics, thousands of elements (the table grows several times). The
/// first element of each set is kept, as a set of label values says.
#[test]
fn repeated_label_sets_are_found_whatever_their_values() {
    let mut rng = crate::rng::Rng::new(1614);
    let pieces = ["a", "ab", "\"", "\\", "\n", ",", "=", "}", "q=\"1\"", ""];
    for round in 0..20 {
        let two = round % 2 == 1;
        let value = |rng: &mut crate::rng::Rng| -> String {
            (0..rng.below(4)).map(|_| rng.pick(&pieces)).collect()
        };
        let elements: Vec<(String, String)> = (0..1 + rng.below(3000))
            .map(|_| {
                (
                    value(&mut rng),
                    if two { value(&mut rng) } else { String::new() },
                )
            })
            .collect();
        let doc = serde_json::json!({
            "e": elements.iter().enumerate()
                .map(|(i, (a, b))| serde_json::json!({"a": a, "b": b, "v": i, "s": if i % 2 == 0 { "up" } else { "down" }}))
                .collect::<Vec<_>>()
        });
        let labels = if two {
            serde_json::json!({"x": "/a", "y": "/b"})
        } else {
            serde_json::json!({"x": "/a"})
        };
        let mapping = parse(
            &serde_json::json!({"metrics": [
                {"name": "plain", "help": "h", "each": "/e", "labels": labels, "path": "/v"},
                {"name": "states", "help": "h", "type": "enum", "each": "/e", "labels": labels,
                 "path": "/s", "states": ["up", "down"]}
            ]})
            .to_string(),
        )
        .unwrap();
        let applied = apply(&mapping, doc.to_string().as_bytes(), usize::MAX).unwrap();
        let mut seen = std::collections::HashSet::new();
        let kept: Vec<usize> = (0..elements.len())
            .filter(|&i| seen.insert(&elements[i]))
            .collect();
        let mut expected = String::new();
        for i in &kept {
            let mut written = crate::exposition::Labels::default();
            written.push("x", &elements[*i].0);
            if two {
                written.push("y", &elements[*i].1);
            }
            expected += &format!(
                "plain{{{}}} {i}\n",
                String::from_utf8_lossy(written.as_bytes())
            );
        }
        assert_eq!(
            String::from_utf8_lossy(applied.families[0].lines()),
            expected,
            "round {round}"
        );
        assert_eq!(applied.families[1].len(), 2 * kept.len(), "round {round}");
        let repeated = (elements.len() - kept.len()) as u64;
        assert_eq!(applied.errors[0].count, repeated, "round {round}");
        assert_eq!(applied.errors[1].count, repeated, "round {round}");
    }
}
