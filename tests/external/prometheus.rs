//! The exporter as the real Prometheus server sees it (Debian's `prometheus` package: 2.42 on
//! Debian 12): end-to-end scrapes in both exposition formats, `promtool` lint of the text
//! format of every example mapping, the OpenMetrics format through Prometheus's own parser,
//! the alerting rules of `scripts/alerts.yml`, and `scripts/demo-stack.sh`.
//!
//! The Prometheus server, its API and [`wait_until`] are in `harness/prometheus.rs`; here, as
//! there, every wait gives up after a limit, and a missing `prometheus` or `promtool` fails the
//! tests (`harness::tool`), it never skips them.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::harness::prometheus::{wait_until, Api, Prometheus};
use crate::harness::{
    self, examples, free_ports, repo, run, serve_example, temp_dir, tool, Exporter, Reply,
    Response, Target, TUTORIAL_DOC, TUTORIAL_TEXT,
};

const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The tutorial document after a change: every value differs from [`TUTORIAL_DOC`].
const CHANGED_DOC: &str = r#"{"current_requests": 17, "pending_requests": 3, "total_uptime": 2000.25, "health": "unhealthy"}"#;

/// The metrics [`CHANGED_DOC`] gives.
const CHANGED_TEXT: &str = r#"app_requests_current 17
app_requests_pending 3
app_uptime 2000.25
app_health{app_health="healthy"} 0
app_health{app_health="unhealthy"} 1
"#;

// ---------------------------------------------------------------------------------------------
// End to end: the exporter in front of a test target, scraped by Prometheus.

#[test]
fn prometheus_scrapes_openmetrics_by_default() {
    life_of_a_target("openmetrics", &[]);
}

#[test]
fn prometheus_scrapes_text_with_no_openmetrics() {
    life_of_a_target("text", &["--no-openmetrics"]);
}

/// A large scrape is answered in gzip, in two members (the snapshot compressed once per poll,
/// then the process metrics), and Prometheus's reader takes every sample of both.
#[test]
fn prometheus_reads_the_two_gzip_members_of_a_large_scrape() {
    let items: Vec<String> = (0..2000)
        .map(|i| format!(r#"{{"name": "item{i}", "value": {i}}}"#))
        .collect();
    let target = Target::start(Reply::Json(format!(
        r#"{{"items": [{}]}}"#,
        items.join(",")
    )));
    let recorder = Target::start(Reply::Status(200, TEXT_TYPE, "recorded 1\n".into()));
    let dir = temp_dir("prometheus-gzip");
    let mapping = dir.join("mapping.json");
    fs::write(
        &mapping,
        r#"{"metrics": [{"name": "item_value", "help": "Item value", "each": "/items",
                         "labels": {"item": "/name"}, "path": "/value"}]}"#,
    )
    .unwrap();
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &target.url("/status")),
            ("CONFIG_FILE", mapping.to_str().unwrap()),
            ("POLLING_INTERVAL_SECONDS", "0.5"),
            ("TARGET_TIMEOUT_SECONDS", "5"),
        ],
    );
    let prometheus = Prometheus::start(
        "prometheus-gzip",
        &[
            ("status-exporter", exporter.addr),
            ("recorder", recorder.addr),
        ],
    );
    let context = || {
        format!(
            "exporter stderr:\n{}\n{}",
            exporter.stderr().join("\n"),
            prometheus.context()
        )
    };
    // What Prometheus asks with, and what the exporter answers to it.
    let headers = wait_until(
        "Prometheus's first scrape of the recorder",
        || {
            let seen = recorder.seen();
            let first = seen.first().ok_or("no scrape yet")?;
            Ok(first.headers.clone())
        },
        context,
    );
    assert_eq!(headers["accept-encoding"], "gzip");
    let (status, answer, body) = harness::get_bytes(
        exporter.addr,
        "/metrics",
        &[("Accept", &headers["accept"]), ("Accept-Encoding", "gzip")],
    );
    assert_eq!((status, answer["content-encoding"].as_str()), (200, "gzip"));
    let text = String::from_utf8(harness::gunzip(&body)).unwrap();
    assert!(
        text.contains("# TYPE process_cpu_seconds counter"),
        "{text}"
    );
    // Every sample of both members is stored.
    wait_until(
        "every item and the process metrics in Prometheus",
        || {
            let items = prometheus.value("count(item_value)");
            let cpu = prometheus.value("process_cpu_seconds_total");
            (items == Some(2000.0) && cpu.is_some())
                .then_some(())
                .ok_or(format!(
                    "count(item_value) {items:?}, process_cpu_seconds_total {cpu:?}"
                ))
        },
        context,
    );
    assert_eq!(
        prometheus.value(r#"item_value{item="item1999"}"#),
        Some(1999.0)
    );
    prometheus.assert_scrapes_clean("status-exporter");
}

/// The whole life of a target as Prometheus records it: values, a change, an outage (the app
/// series go stale, `status_exporter_up` falls to 0) and the recovery. `flags` choose the
/// format the exporter answers Prometheus in.
fn life_of_a_target(name: &str, flags: &[&str]) {
    let openmetrics = !flags.contains(&"--no-openmetrics");
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    // A second scrape target that only records what Prometheus asks for.
    let recorder = Target::start(Reply::Status(200, TEXT_TYPE, "recorded 1\n".into()));
    let url = target.url("/status");
    let mut args = vec!["--target-url", url.as_str()];
    args.extend_from_slice(flags);
    // Polls are fast enough to follow 1 s scrapes, with a timeout a loaded machine cannot miss.
    let exporter = Exporter::start(
        &args,
        &[
            ("POLLING_INTERVAL_SECONDS", "0.5"),
            ("TARGET_TIMEOUT_SECONDS", "5"),
        ],
    );
    let prometheus = Prometheus::start(
        &format!("prometheus-{name}"),
        &[
            ("status-exporter", exporter.addr),
            ("recorder", recorder.addr),
        ],
    );
    let context = || {
        format!(
            "exporter stderr:\n{}\n{}",
            exporter.stderr().join("\n"),
            prometheus.context()
        )
    };

    // Prometheus asks for OpenMetrics first; the exporter answers that header in the format
    // its flags allow.
    let accept = wait_until(
        "Prometheus's first scrape of the recorder",
        || {
            let seen = recorder.seen();
            let first = seen.first().ok_or("no scrape yet")?;
            Ok(first.headers.get("accept").cloned().unwrap_or_default())
        },
        context,
    );
    assert!(
        accept.starts_with("application/openmetrics-text;version=1.0.0"),
        "Prometheus's Accept: {accept}"
    );
    let answer = harness::get(exporter.addr, "GET", "/metrics", &[("Accept", &accept)]);
    let content_type = if openmetrics {
        OPENMETRICS_TYPE
    } else {
        TEXT_TYPE
    };
    assert_eq!(answer.headers["content-type"], content_type);
    assert_eq!(answer.body.ends_with("# EOF\n"), openmetrics);

    // The tutorial document's values, every one of them, and nothing else.
    prometheus.wait_for_app(TUTORIAL_TEXT, &context);
    assert_eq!(prometheus.value(r#"up{job="status-exporter"}"#), Some(1.0));
    assert_eq!(
        prometheus.value(r#"app_health{app_health="healthy"}"#),
        Some(1.0)
    );
    assert_eq!(
        prometheus.value(r#"app_health{app_health="unhealthy"}"#),
        Some(0.0)
    );
    prometheus.assert_scrapes_clean("status-exporter");
    // Every sample the exporter serves is ingested: none is dropped by the parser.
    wait_until(
        "scrape_samples_scraped to count every sample served",
        || {
            let served = samples(&harness::get(
                exporter.addr,
                "GET",
                "/metrics",
                &[("Accept", &accept)],
            ))
            .len() as f64;
            let scraped = prometheus.value(r#"scrape_samples_scraped{job="status-exporter"}"#);
            (scraped == Some(served))
                .then_some(())
                .ok_or(format!("served {served}, scraped {scraped:?}"))
        },
        context,
    );

    // What Prometheus recorded about each family shows which format it parsed.
    let types = prometheus.metadata("status-exporter");
    let expected_types: &[(&str, &str)] = if openmetrics {
        &[
            ("app_requests_current", "gauge"),
            ("app_health", "stateset"),
            ("status_exporter_polls", "counter"),
            ("status_exporter_build", "info"),
            ("process_cpu_seconds", "counter"),
        ]
    } else {
        &[
            ("app_requests_current", "gauge"),
            ("app_health", "gauge"),
            ("status_exporter_polls_total", "counter"),
            ("status_exporter_build_info", "gauge"),
            ("process_cpu_seconds_total", "counter"),
        ]
    };
    for (family, kind) in expected_types {
        assert_eq!(
            types.get(*family).map(String::as_str),
            Some(*kind),
            "type of {family} in {types:?}"
        );
    }
    // The counter and the info metric arrive under their sample names in both formats.
    let build = prometheus.query("status_exporter_build_info");
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(build[0].0["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build[0].1, 1.0);
    let polls = prometheus
        .value("status_exporter_polls_total")
        .expect("status_exporter_polls_total");
    assert!(polls >= 1.0, "{polls}");
    wait_until(
        "status_exporter_polls_total to grow",
        || {
            let now = prometheus.value("status_exporter_polls_total");
            (now > Some(polls)).then_some(()).ok_or(format!("{now:?}"))
        },
        context,
    );

    // A changed document: the new values, and the enum in its other state, which the rule
    // AppUnhealthy sees at once (pending: its `for` is 1m).
    target.set(Reply::Json(CHANGED_DOC.into()));
    prometheus.wait_for_app(CHANGED_TEXT, &context);
    prometheus.wait_for_alert("AppUnhealthy", &context);

    // The target fails: the exporter stays up, says so, and the app series go stale.
    target.set(Reply::Status(500, "text/plain", "down\n".into()));
    wait_until(
        "status_exporter_up 0 and no app series",
        || {
            let up = prometheus.value("status_exporter_up");
            let app = prometheus.app();
            let current = prometheus.query("app_requests_current");
            (up == Some(0.0) && app.is_empty() && current.is_empty())
                .then_some(())
                .ok_or(format!(
                    "status_exporter_up {up:?}, app series {app:?}, app_requests_current {current:?}"
                ))
        },
        context,
    );
    assert_eq!(prometheus.value(r#"up{job="status-exporter"}"#), Some(1.0));
    prometheus.assert_scrapes_clean("status-exporter");
    prometheus.wait_for_alert("StatusExporterAppUnreachable", &context);
    assert!(
        prometheus.value(r#"status_exporter_poll_failures_total{reason="http_status"}"#)
            > Some(0.0)
    );

    // The target is back: so are the values.
    target.set(Reply::Json(TUTORIAL_DOC.into()));
    prometheus.wait_for_app(TUTORIAL_TEXT, &context);
    assert_eq!(prometheus.value("status_exporter_up"), Some(1.0));
    prometheus.assert_scrapes_clean("status-exporter");
}

// ---------------------------------------------------------------------------------------------
// promtool on the text format, Prometheus's parser on OpenMetrics.

/// What `promtool check metrics` (2.42) says about the examples, all names that the example
/// takes from the software's own fields; every other example, and the exporter's own metrics,
/// pass the lint clean:
/// - Elasticsearch reports `task_max_waiting_in_queue_millis` and the exporter does not rescale
///   values, so the name says milliseconds rather than claim seconds;
/// - PHP-FPM's `request duration` is in microseconds, likewise;
/// - Tasmota's `TotalStartTime` is when its energy counter started: `counter` is part of
///   what the value means, not a metric type.
const LINTS: &[(&str, &str)] = &[
    (
        "elasticsearch",
        "elasticsearch_cluster_health_task_max_waiting_in_queue_milliseconds use base unit \"seconds\" instead of \"milliseconds\"\n",
    ),
    (
        "php-fpm",
        "phpfpm_process_request_duration_microseconds use base unit \"seconds\" instead of \"microseconds\"\n",
    ),
    (
        "tasmota",
        "tasmota_energy_counter_info metric name should not include type 'counter'\n",
    ),
];

#[test]
fn promtool_lints_the_text_format_of_every_example() {
    let promtool = tool("promtool", "prometheus");
    for dir in examples() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let lint = LINTS.iter().find(|(n, _)| *n == name).map_or("", |l| l.1);
        let expected = fs::read_to_string(dir.join("expected.prom")).unwrap();
        check_metrics(&promtool, &format!("{name}/expected.prom"), &expected, lint);
        // A real scrape adds the exporter's own status_exporter_* and process_* metrics.
        let (_target, exporter) = serve_example(&dir);
        let body = exporter.wait_for_line("status_exporter_up 1");
        check_metrics(&promtool, &format!("a scrape of {name}"), &body, lint);
    }
}

/// promtool 2.42 checks only the text format. Prometheus's own OpenMetrics parser (the one a
/// scrape uses) is in `promtool tsdb create-blocks-from openmetrics`, which needs a timestamp
/// on every sample: the test adds one and has every sample of every example read back.
#[test]
fn openmetrics_of_every_example_passes_prometheus_parser() {
    let promtool = tool("promtool", "prometheus");
    let dir = temp_dir("openmetrics-parser");
    // The check itself rejects what Prometheus rejects.
    let body = harness::scrape_example_as_prometheus(&examples()[0]).body;
    let truncated = body.strip_suffix("# EOF\n").expect("ends with # EOF");
    assert_eq!(
        parse_openmetrics(&promtool, &dir, truncated),
        Err("data does not end with # EOF".into())
    );
    let untyped = body.replacen(" gauge\n", " untyped\n", 1);
    assert_eq!(
        parse_openmetrics(&promtool, &dir, &untyped),
        Err("invalid metric type \"untyped\"".into())
    );

    for example in examples() {
        let response = harness::scrape_example_as_prometheus(&example);
        assert_eq!(response.headers["content-type"], OPENMETRICS_TYPE);
        assert_eq!(
            parse_openmetrics(&promtool, &dir, &response.body),
            Ok(samples(&response).len()),
            "{}:\n{}",
            example.display(),
            response.body
        );
    }
}

/// Runs `promtool check metrics` on `body` and compares its findings with `lint`.
fn check_metrics(promtool: &Path, what: &str, body: &str, lint: &str) {
    let output = run_with_input(Command::new(promtool).args(["check", "metrics"]), body);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(said, lint, "promtool check metrics on {what}:\n{body}");
    // 3: lint findings only; 1 would be a parse error.
    let code = if lint.is_empty() { 0 } else { 3 };
    assert_eq!(output.status.code(), Some(code), "{what}: {said}");
}

/// Reads an OpenMetrics exposition with Prometheus's parser: the number of samples read, or
/// the parser's error.
fn parse_openmetrics(promtool: &Path, dir: &Path, body: &str) -> Result<usize, String> {
    let mut stamped = String::new();
    for line in body.lines() {
        stamped += line;
        if !line.starts_with('#') {
            stamped += " 1700000000";
        }
        stamped += "\n";
    }
    let input = dir.join("input.om");
    let blocks = dir.join("blocks");
    let _ = fs::remove_dir_all(&blocks);
    fs::write(&input, stamped).unwrap();
    let output = run(Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&blocks));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let error = stderr.trim().rsplit(": ").next().unwrap_or("").to_string();
        return Err(error);
    }
    // A table: BLOCK ULID, MIN TIME, MAX TIME, DURATION, NUM SAMPLES, ...
    let row = stdout.lines().nth(1).unwrap_or("");
    row.split_whitespace()
        .nth(4)
        .and_then(|n| n.parse().ok())
        .ok_or(format!("no sample count in {stdout:?} {stderr:?}"))
}

/// The sample lines of a scrape.
fn samples(response: &Response) -> Vec<&str> {
    response
        .body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Alerting rules.

#[test]
fn alerting_rules_are_valid_and_fire_when_they_should() {
    let promtool = tool("promtool", "prometheus");
    let rules = repo().join("scripts/alerts.yml");
    let tests = repo().join("scripts/alerts_test.yml");
    let check = run(Command::new(&promtool).args(["check", "rules"]).arg(&rules));
    let said = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "promtool check rules: {said}");
    let names: Vec<String> = fs::read_to_string(&rules)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: ").map(str::to_string))
        .collect();
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", names.len())),
        "{said}"
    );
    let unit = run(Command::new(&promtool).args(["test", "rules"]).arg(&tests));
    assert!(
        unit.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&unit.stdout),
        String::from_utf8_lossy(&unit.stderr)
    );
    // Each rule has a test in which it fires.
    let test_text = fs::read_to_string(&tests).unwrap();
    for name in &names {
        let firing = test_text
            .split("alertname: ")
            .skip(1)
            .any(|t| t.starts_with(&format!("{name}\n")) && t.contains("exp_labels"));
        assert!(firing, "{name} has no test in which it fires");
    }
}

// ---------------------------------------------------------------------------------------------
// scripts/demo-stack.sh

/// The script starts the exporter and Prometheus, Prometheus gets the demo's metrics, and
/// Ctrl-C (SIGINT to the script's process group, as a terminal sends it) stops both and
/// removes the temporary data.
#[test]
fn demo_stack_runs_until_ctrl_c() {
    tool("prometheus", "prometheus");
    let tmp = temp_dir("demo-stack");
    let mut attempt = 0;
    let (mut stack, prometheus) = loop {
        attempt += 1;
        let [exporter_port, prometheus_port] = free_ports();
        let mut stack = DemoStack::start(
            &tmp,
            &[
                ("EXPORTER_PORT", &exporter_port.to_string()),
                ("PROMETHEUS_PORT", &prometheus_port.to_string()),
            ],
        );
        let api = Api(SocketAddr::from((Ipv4Addr::LOCALHOST, prometheus_port)));
        let printed = stack.printed();
        let ready = wait_until(
            "Prometheus to have the demo's app_requests_current, or the script to stop",
            || {
                if let Some(status) = stack.child.try_wait().unwrap() {
                    return Ok(Err(status));
                }
                let up = api
                    .query(r#"up{job="status-exporter"}"#)
                    .unwrap_or_default();
                let current = api.query("app_requests_current").unwrap_or_default();
                match (up.first(), current.first()) {
                    (Some((_, up)), Some(_)) if *up == 1.0 => Ok(Ok(())),
                    _ => Err(format!("up {up:?}, app_requests_current {current:?}")),
                }
            },
            printed,
        );
        match ready {
            Ok(()) => break (stack, api),
            Err(_) if attempt < 3 && stack.output().contains("in use") => continue,
            Err(status) => panic!("the script stopped with {status}:\n{}", stack.output()),
        }
    };
    // Every link printed answers 200 on the Prometheus it started (Debian's 2.42 has only the
    // classic pages, under /classic/), or on the exporter.
    let out = stack.output();
    let links: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_once("http://127.0.0.1:").map(|(_, rest)| rest))
        .collect();
    assert_eq!(links.len(), 4, "{out}");
    assert!(
        links
            .iter()
            .any(|l| l.contains("graph?g0.expr=app_requests_current&g0.tab=0")),
        "{out}"
    );
    for link in links {
        let (port, path) = link.split_once('/').expect("PORT/PATH");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port.parse::<u16>().unwrap()));
        let status = harness::get(addr, "GET", &format!("/{path}"), &[]).status;
        assert_eq!(status, 200, "http://127.0.0.1:{link}\n{out}");
    }
    // Alerting rules are loaded; AppUnhealthy waits longer than the demo's unhealthy minute,
    // and the script says so.
    let rules = prometheus.get("/api/v1/rules").unwrap();
    let app_unhealthy = rules["groups"][0]["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["name"] == "AppUnhealthy"))
        .unwrap_or_else(|| panic!("no AppUnhealthy in {rules}"));
    assert_eq!(app_unhealthy["duration"], 120, "{app_unhealthy}");
    assert!(out.contains("every minute whose number ends in 9"), "{out}");

    let children = descendants(stack.child.id());
    let commands: Vec<String> = children.iter().map(|&pid| command_line(pid)).collect();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("status-exporter --demo"))
            && commands
                .iter()
                .any(|c| c.contains("prometheus --config.file")),
        "{commands:?}"
    );
    // bash's kill: the process group of the script, as a terminal's Ctrl-C.
    let status = Command::new("bash")
        .args(["-c", "kill -INT -- -$0", &stack.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let printed = stack.printed();
    let status = wait_until(
        "the script to stop after Ctrl-C",
        || stack.child.try_wait().unwrap().ok_or("running".to_string()),
        printed,
    );
    assert!(status.success(), "{status}:\n{}", stack.output());
    let left: Vec<u32> = children
        .iter()
        .copied()
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    assert!(left.is_empty(), "still running: {left:?} of {commands:?}");
    let files: Vec<_> = fs::read_dir(&tmp).unwrap().collect();
    assert!(files.is_empty(), "left behind: {files:?}");
}

#[test]
fn demo_stack_without_prometheus_says_how_to_install_it() {
    let tmp = temp_dir("demo-stack-no-prometheus");
    let mut stack = DemoStack::start(&tmp, &[("PROMETHEUS", "/nonexistent/prometheus")]);
    let printed = stack.printed();
    let status = wait_until(
        "the script to give up",
        || stack.child.try_wait().unwrap().ok_or("running".to_string()),
        printed,
    );
    assert_eq!(status.code(), Some(1), "{}", stack.output());
    let out = stack.output();
    assert!(
        out.contains("Prometheus is not installed at /nonexistent/prometheus.")
            && out.contains("sudo apt-get install prometheus"),
        "{out}"
    );
    assert!(!out.contains("listening on"), "nothing is started: {out}");
}

/// scripts/demo-stack.sh running with the test's exporter binary, in its own process group.
struct DemoStack {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl DemoStack {
    fn start(tmp: &Path, env: &[(&str, &str)]) -> DemoStack {
        let mut command = Command::new(tool("env", "coreutils"));
        // SIGINT at its default, whatever this test inherited, so the script can trap it.
        command
            .arg("--default-signal=INT")
            .arg("bash")
            .arg(repo().join("scripts/demo-stack.sh"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMPDIR", tmp)
            .env("STATUS_EXPORTER", harness::binary())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().expect("start scripts/demo-stack.sh");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for mut pipe in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let output = Arc::clone(&output);
            thread::spawn(move || {
                let mut buffer = [0; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
        }
        DemoStack { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// What the script printed so far, readable while `child` is borrowed.
    fn printed(&self) -> impl Fn() -> String {
        let output = Arc::clone(&self.output);
        move || output.lock().unwrap().clone()
    }
}

impl Drop for DemoStack {
    /// If a test failed half-way: ends what the script started, then the script.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            for pid in descendants(self.child.id()) {
                let _ = Command::new("bash")
                    .args(["-c", "kill -KILL $0", &pid.to_string()])
                    .status();
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The processes below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((child, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    found.remove(0);
    found
}

fn command_line(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

fn run_with_input(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}
