//! `/probe` at scale, the way it is meant to be run: the real Prometheus server (Debian's
//! `prometheus` package) discovers 50 targets from a `file_sd` file and spreads them over two
//! exporters with `hashmod`, using the SHIPPED configuration: `scripts/prometheus-probe.yml`
//! (only addresses, the targets file's path and the intervals substituted, each substitution
//! checked) and the module of `scripts/probe-config.json` (with the test's allowlist and a header
//! naming the exporter). Each target is a real HTTP server on loopback with values of its own,
//! and records the requests it gets, so the test sees from the outside which exporter fetched
//! what.
//!
//! `promtool check config` passes on the shipped file and on the one the test runs. Every wait
//! polls Prometheus's HTTP API and gives up after a limit derived from the scrape interval
//! ([`SCRAPE_INTERVAL`]); a missing `prometheus`, `promtool` or `md5sum` fails the test
//! (`harness::tool`), it never skips it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::prometheus::{wait_within, Prometheus, Series};
use crate::harness::{get, repo, run, temp_dir, tool, value, Exporter, Reply, Target};

/// The scrape interval (and timeout) the test gives Prometheus instead of the shipped one.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

/// How many targets Prometheus discovers.
const TARGETS: usize = 50;

/// The exporters, by the value of the `X-Exporter` header their module sends, in the order of
/// the shards of the shipped config (shard 0, shard 1).
const EXPORTERS: [&str; 2] = ["a", "b"];

/// A wait for something Prometheus shows after a few scrapes: generous, for a loaded machine.
fn patience() -> Duration {
    SCRAPE_INTERVAL * 30
}

#[test]
fn prometheus_spreads_fifty_targets_over_two_exporters_with_hashmod() {
    let promtool = tool("promtool", "prometheus");
    let shipped = repo().join("scripts/prometheus-probe.yml");
    check_config(&promtool, &shipped);

    let dir = temp_dir("probe-at-scale");
    let targets: Vec<Target> = (0..TARGETS)
        .map(|i| Target::start(Reply::Json(document(i))))
        .collect();
    let addresses: Vec<String> = targets.iter().map(|t| t.addr.to_string()).collect();
    let exporters: Vec<Exporter> = EXPORTERS
        .iter()
        .map(|name| start_exporter(&dir, name))
        .collect();

    // The shard of each target, computed as Prometheus's hashmod does, independently of it.
    let shard: Vec<usize> = addresses.iter().map(|a| hashmod(a, 2)).collect();
    let shares: Vec<BTreeSet<usize>> = (0..EXPORTERS.len())
        .map(|s| (0..TARGETS).filter(|&i| shard[i] == s).collect())
        .collect();
    assert!(
        shares.iter().all(|s| !s.is_empty()),
        "hashmod put every target into one shard: {shard:?}"
    );

    let targets_file = dir.join("targets.json");
    fs::write(
        &targets_file,
        json!([{ "targets": addresses, "labels": { "site": "test" } }]).to_string(),
    )
    .unwrap();
    let config = prometheus_config(
        &fs::read_to_string(&shipped).unwrap(),
        &targets_file,
        &exporters,
    );
    fs::write(dir.join("prometheus.yml"), &config).unwrap();
    check_config(&promtool, &dir.join("prometheus.yml"));
    let prometheus = Prometheus::with_config("probe-at-scale-prometheus", |_| config.clone());
    let logs = || {
        let logs: Vec<String> = exporters
            .iter()
            .zip(EXPORTERS)
            .map(|(e, name)| format!("exporter {name} log:\n{}", e.stderr().join("\n")))
            .collect();
        logs.join("\n")
    };
    let context = || format!("{}\n{}", prometheus.context(), logs());
    let instance = |i: usize| addresses[i].clone();

    // Every target is up, with its own values, and its probe succeeded; both exporters' own
    // /metrics are scraped too.
    let expected: BTreeMap<(String, String), f64> = (0..TARGETS)
        .flat_map(|i| {
            expected_series(i)
                .into_iter()
                .map(move |(series, v)| ((instance(i), series), v))
        })
        .collect();
    wait_within(
        patience(),
        "every target up with its own values",
        || {
            let up = by_instance(&prometheus.query(r#"up{job="tutorial"}"#));
            let success =
                by_instance(&prometheus.query(r#"status_exporter_probe_success{job="tutorial"}"#));
            let all_one =
                |m: &BTreeMap<String, f64>| m.len() == TARGETS && m.values().all(|&v| v == 1.0);
            if !all_one(&up) || !all_one(&success) {
                return Err(format!("up {up:?}\nprobe success {success:?}"));
            }
            let app = app_series(&prometheus.query(r#"{job="tutorial",__name__=~"app_.+"}"#));
            if app != expected {
                return Err(format!("app series {app:?}\nexpected {expected:?}"));
            }
            let own = prometheus.query(r#"up{job="status-exporter"}"#);
            if own.len() != EXPORTERS.len() || own.iter().any(|s| s.1 != 1.0) {
                return Err(format!("the exporters' own /metrics: {own:?}"));
            }
            Ok(())
        },
        context,
    );
    // Each target was fetched by the exporter of its shard only, at the module's path.
    for (i, target) in targets.iter().enumerate() {
        let seen = target.seen();
        assert!(!seen.is_empty(), "{} was never fetched", addresses[i]);
        for request in &seen {
            assert_eq!(request.path, "/status", "{}: {request:?}", addresses[i]);
            assert_eq!(
                request.headers.get("x-exporter").map(String::as_str),
                Some(EXPORTERS[shard[i]]),
                "{} is in shard {}: {request:?}",
                addresses[i],
                shard[i]
            );
        }
    }

    // One target stops: its probe fails (200, success 0, reason connect) and its app series go
    // stale; every other target stays up, at every scrape since.
    let stopped = 0;
    targets[stopped].stop();
    let stopped_at = unix_now();
    wait_within(
        patience(),
        "the stopped target's probe to fail",
        || {
            let success = prometheus.value(&format!(
                r#"status_exporter_probe_success{{instance="{}"}}"#,
                instance(stopped)
            ));
            let connect = prometheus.value(&format!(
                r#"status_exporter_probe_failure{{instance="{}",reason="connect"}}"#,
                instance(stopped)
            ));
            let app = prometheus.query(&format!(
                r#"{{__name__=~"app_.+",instance="{}"}}"#,
                instance(stopped)
            ));
            match (success, connect) {
                (Some(s), Some(c)) if s == 0.0 && c == 1.0 && app.is_empty() => Ok(()),
                _ => Err(format!(
                    "success {success:?}, failure reason connect {connect:?}, app series {app:?}"
                )),
            }
        },
        context,
    );
    wait_within(
        patience(),
        "every target to be scraped again since the stop",
        || {
            let last = by_instance(
                &prometheus.query(r#"timestamp(status_exporter_probe_success{job="tutorial"})"#),
            );
            let behind: Vec<&String> = last
                .iter()
                .filter(|(_, &at)| at <= stopped_at)
                .map(|(i, _)| i)
                .collect();
            (last.len() == TARGETS && behind.is_empty())
                .then_some(())
                .ok_or(format!(
                    "not scraped since the stop: {behind:?} of {last:?}"
                ))
        },
        context,
    );
    let since = (unix_now() - stopped_at).ceil() as u64 + 1;
    let lowest = by_instance(&prometheus.query(&format!(
        r#"min_over_time(status_exporter_probe_success{{job="tutorial"}}[{since}s])"#
    )));
    let failed: Vec<&String> = lowest
        .iter()
        .filter(|(_, &v)| v != 1.0)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        (lowest.len(), failed),
        (TARGETS, vec![&instance(stopped)]),
        "the lowest probe success of each target since the stop: {lowest:?}\n{}",
        context()
    );
    let up = by_instance(&prometheus.query(r#"up{job="tutorial"}"#));
    assert!(
        up.len() == TARGETS && up.values().all(|&v| v == 1.0),
        "a failed probe is a successful scrape: {up:?}"
    );
    drop(prometheus);

    // Each exporter fetched exactly what its own counter says: the requests carrying its
    // header, over the targets of its share and no other. Once Prometheus is gone, the probes
    // under way finish and the counts settle.
    let stopped_shard = shard[stopped];
    wait_within(
        patience(),
        "each exporter's probe count to match the requests its targets saw",
        || {
            let mut report = Vec::new();
            let mut settled = true;
            for (s, (exporter, name)) in exporters.iter().zip(EXPORTERS).enumerate() {
                let body = get(exporter.addr, "GET", "/metrics", &[]).body;
                let count = |result: &str| {
                    value(
                        &body,
                        &format!(
                            r#"status_exporter_probes_total{{module="tutorial",result="{result}"}}"#
                        ),
                    )
                };
                let fetched: BTreeSet<usize> = (0..TARGETS)
                    .filter(|&i| {
                        targets[i]
                            .seen()
                            .iter()
                            .any(|r| r.headers.get("x-exporter").map(String::as_str) == Some(name))
                    })
                    .collect();
                let requests: usize = targets
                    .iter()
                    .map(|t| {
                        t.seen()
                            .iter()
                            .filter(|r| {
                                r.headers.get("x-exporter").map(String::as_str) == Some(name)
                            })
                            .count()
                    })
                    .sum();
                let (success, failure, refused) =
                    (count("success"), count("failure"), count("refused"));
                // The stopped target's probes failed without reaching it; no other did.
                let failures_expected = |f: f64| {
                    if s == stopped_shard {
                        f >= 1.0
                    } else {
                        f == 0.0
                    }
                };
                settled &= fetched == shares[s]
                    && success == Some(requests as f64)
                    && failure.is_some_and(failures_expected)
                    && refused == Some(0.0);
                report.push(format!(
                    "exporter {name}: fetched targets {fetched:?} (its share {:?}); {requests} \
                     requests with its header; probes_total success {success:?}, failure \
                     {failure:?}, refused {refused:?}",
                    shares[s]
                ));
            }
            settled.then_some(()).ok_or(report.join("\n"))
        },
        logs,
    );
}

/// The status document of target `i`: the tutorial application's shape, values of its own.
fn document(i: usize) -> String {
    let (current, pending, uptime, health) = values(i);
    json!({
        "current_requests": current,
        "pending_requests": pending,
        "total_uptime": uptime,
        "health": health,
    })
    .to_string()
}

fn values(i: usize) -> (f64, f64, f64, &'static str) {
    let i = i as f64;
    let health = if i % 3.0 == 0.0 {
        "unhealthy"
    } else {
        "healthy"
    };
    (i, 2.0 * i + 1.0, 1000.25 + i, health)
}

/// The series the tutorial mapping gives for target `i`'s document, as in the exposition.
fn expected_series(i: usize) -> Vec<(String, f64)> {
    let (current, pending, uptime, health) = values(i);
    let healthy = f64::from(u8::from(health == "healthy"));
    [
        ("app_requests_current", current),
        ("app_requests_pending", pending),
        ("app_uptime", uptime),
        (r#"app_health{app_health="healthy"}"#, healthy),
        (r#"app_health{app_health="unhealthy"}"#, 1.0 - healthy),
    ]
    .into_iter()
    .map(|(series, v)| (series.to_string(), v))
    .collect()
}

/// app_* series of a query result, keyed by instance and series as in the exposition.
fn app_series(result: &[Series]) -> BTreeMap<(String, String), f64> {
    result
        .iter()
        .map(|(labels, v)| {
            let name = &labels["__name__"];
            let series = match labels.get("app_health") {
                Some(state) => format!(r#"{name}{{app_health="{state}"}}"#),
                None => name.clone(),
            };
            ((labels["instance"].clone(), series), *v)
        })
        .collect()
}

/// The value of each series of a query result, by its instance label.
fn by_instance(result: &[Series]) -> BTreeMap<String, f64> {
    result
        .iter()
        .map(|(labels, v)| (labels.get("instance").cloned().unwrap_or_default(), *v))
        .collect()
}

/// An exporter whose config holds the shipped module `tutorial` of scripts/probe-config.json,
/// allowing 127.0.0.1 only and sending `X-Exporter: NAME`. A file of modules alone: the
/// exporter polls nothing in the background, so every request the targets get is a probe.
fn start_exporter(dir: &Path, name: &str) -> Exporter {
    let shipped = repo().join("scripts/probe-config.json");
    let mut config: Value = serde_json::from_str(&fs::read_to_string(&shipped).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", shipped.display()));
    let module = &mut config["modules"]["tutorial"];
    assert!(module.is_object(), "no module tutorial in {config}");
    // The mapping, relative to the shipped file's directory, is found from the test's.
    let mapping = repo()
        .join("scripts")
        .join(module["mapping"].as_str().expect("the mapping is a path"));
    assert!(mapping.is_file(), "{}", mapping.display());
    module["mapping"] = json!(mapping);
    module["allow"] = json!(["127.0.0.1/32"]);
    module["headers"] = json!({ "X-Exporter": name });
    let path = dir.join(format!("exporter-{name}.json"));
    fs::write(&path, config.to_string()).unwrap();
    Exporter::start(&["--config-file", path.to_str().unwrap()], &[])
}

/// The shipped Prometheus config, pointed at the test's exporters and targets file, scraping
/// every [`SCRAPE_INTERVAL`]. Each substitution must find exactly the text it replaces, as often
/// as the test expects, so that the file run here is the shipped one.
fn prometheus_config(shipped: &str, targets_file: &Path, exporters: &[Exporter]) -> String {
    let interval = format!("{}s", SCRAPE_INTERVAL.as_secs());
    let mut config = shipped.to_string();
    // In the configuration, not in the comments.
    let mut substitute = |from: &str, to: &str, times: usize| {
        let mut found = 0;
        let lines: Vec<String> = config
            .lines()
            .map(|line| {
                if line.trim_start().starts_with('#') {
                    return line.to_string();
                }
                found += line.matches(from).count();
                line.replace(from, to)
            })
            .collect();
        assert_eq!(found, times, "{from:?} in scripts/prometheus-probe.yml");
        config = lines.join("\n") + "\n";
    };
    substitute(
        "scrape_interval: 15s",
        &format!("scrape_interval: {interval}"),
        1,
    );
    substitute(
        "scrape_timeout: 10s",
        &format!("scrape_timeout: {interval}"),
        1,
    );
    substitute(
        "files: [probe-targets.json]",
        &format!("files: [\"{}\"]", targets_file.display()),
        2,
    );
    for (shard, exporter) in exporters.iter().enumerate() {
        substitute(
            &format!("status-exporter-{shard}:9877"),
            &exporter.addr.to_string(),
            2,
        );
    }
    config
}

/// `promtool check config` passes, with no warning (a missing targets file is one).
fn check_config(promtool: &Path, file: &Path) {
    let output = run(Command::new(promtool).args(["check", "config"]).arg(file));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.contains("SUCCESS") && !said.contains("WARNING"),
        "promtool check config {}: {said}",
        file.display()
    );
}

/// Prometheus's `hashmod`: the last 8 bytes of the MD5 of the value, big-endian, modulo
/// `modulus` (md5sum of coreutils computes the MD5).
fn hashmod(value: &str, modulus: u64) -> usize {
    let mut md5sum = Command::new(tool("md5sum", "coreutils"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start md5sum");
    let mut stdin = md5sum.stdin.take().expect("stdin is piped");
    stdin.write_all(value.as_bytes()).expect("write to md5sum");
    drop(stdin);
    let output = md5sum.wait_with_output().expect("run md5sum");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let hex = stdout.split_whitespace().next().unwrap_or("");
    assert!(
        output.status.success() && hex.len() == 32,
        "md5sum: {stdout}"
    );
    let low = u64::from_str_radix(&hex[16..], 16).expect("hex digits");
    (low % modulus) as usize
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}
