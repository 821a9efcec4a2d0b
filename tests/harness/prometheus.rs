//! A real Prometheus server (Debian's `prometheus` package) for the tests that check the
//! exporter the way Prometheus sees it: `prometheus.rs` and `ship.rs`.
//!
//! [`Prometheus`] runs the server on 127.0.0.1 with a config of the test's (a generated one, or
//! a whole file such as the shipped `scripts/prometheus.yml`), a fresh data directory and a port
//! that was free a moment ago (it starts again on another port if someone took it), and kills it
//! when dropped. [`Api`] reads its HTTP API. Every wait goes through [`wait_until`]: it polls and
//! gives up after [`PATIENCE`]. A missing `prometheus` fails the test ([`super::tool`]), it
//! never skips it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_ports, parse_response, repo, temp_dir, tool, Response};

/// The longest any wait on Prometheus may take, unless the test gives its own ([`wait_within`]).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A Prometheus server started by a test, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub api: Api,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus on 127.0.0.1, scraping each `(job, address)` every second, with
    /// scripts/alerts.yml evaluated every second, and waits until it is ready.
    pub fn start(name: &str, jobs: &[(&str, SocketAddr)]) -> Prometheus {
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files:\n  - \"{}\"\nscrape_configs:\n",
            repo().join("scripts/alerts.yml").display()
        );
        for (job, addr) in jobs {
            config += &format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [\"{addr}\"]\n"
            );
        }
        Prometheus::with_config(name, |_| config.clone())
    }

    /// Starts Prometheus on 127.0.0.1 with the whole config text that `config` gives for the
    /// address Prometheus is about to listen on (a config may name Prometheus itself as a
    /// target), in a fresh directory under [`temp_dir`]`(name)`, and waits until it is ready.
    pub fn with_config(name: &str, config: impl Fn(SocketAddr) -> String) -> Prometheus {
        let binary = tool("prometheus", "prometheus");
        let dir = temp_dir(name);
        for attempt in 1.. {
            let [port] = free_ports();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            fs::write(dir.join("prometheus.yml"), config(addr)).unwrap();
            let log = dir.join(format!("prometheus-{attempt}.log"));
            let child = Command::new(&binary)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("data-{attempt}")).display()
                ))
                .arg("--storage.tsdb.retention.time=1h")
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("start prometheus");
            let mut prometheus = Prometheus {
                child,
                api: Api(addr),
                log,
            };
            let ready = wait_until(
                "Prometheus to be ready",
                || {
                    if let Some(status) = prometheus.child.try_wait().unwrap() {
                        return Ok(Err(status));
                    }
                    match http_get(addr, "/-/ready") {
                        Ok(r) if r.status == 200 => Ok(Ok(())),
                        Ok(r) => Err(format!("{} {}", r.status, r.body)),
                        Err(e) => Err(e),
                    }
                },
                || context(&prometheus.api, &prometheus.log),
            );
            match ready {
                Ok(()) => return prometheus,
                Err(_) if attempt < 3 && prometheus.log().contains("address already in use") => {}
                Err(status) => panic!("Prometheus exited with {status}\n{}", prometheus.context()),
            }
        }
        unreachable!()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The end of the log and the targets' state, for failure messages.
    pub fn context(&self) -> String {
        context(&self.api, &self.log)
    }

    /// The result of an instant query: labels and value of each series.
    pub fn query(&self, promql: &str) -> Vec<Series> {
        self.api
            .query(promql)
            .unwrap_or_else(|e| panic!("query {promql}: {e}\n{}", self.context()))
    }

    /// The value of a query that gives at most one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql);
        assert!(result.len() <= 1, "{promql}: {result:?}");
        result.first().map(|r| r.1)
    }

    /// Every app_* series, keyed as in the exposition (without job and instance).
    pub fn app(&self) -> BTreeMap<String, f64> {
        self.query(r#"{__name__=~"app_.+"}"#)
            .into_iter()
            .map(|(labels, value)| {
                let name = &labels["__name__"];
                let pairs: Vec<String> = labels
                    .iter()
                    .filter(|(k, _)| !["__name__", "job", "instance"].contains(&k.as_str()))
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                let key = if pairs.is_empty() {
                    name.clone()
                } else {
                    format!("{name}{{{}}}", pairs.join(","))
                };
                (key, value)
            })
            .collect()
    }

    /// Waits until the app_* series are exactly the samples of `exposition`.
    pub fn wait_for_app(&self, exposition: &str, context: &dyn Fn() -> String) {
        let expected: BTreeMap<String, f64> = exposition
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(series, value)| (series.to_string(), value.parse().unwrap()))
            .collect();
        wait_until(
            "the app series to be those of the document",
            || {
                let got = self.app();
                (got == expected)
                    .then_some(())
                    .ok_or(format!("got {got:?}\nexpected {expected:?}"))
            },
            context,
        );
    }

    /// Waits until the alert `name` is pending or firing.
    pub fn wait_for_alert(&self, name: &str, context: &dyn Fn() -> String) {
        wait_until(
            &format!("the alert {name}"),
            || {
                let alerts = self.query(&format!(r#"ALERTS{{alertname="{name}"}}"#));
                (!alerts.is_empty())
                    .then_some(())
                    .ok_or("not active".to_string())
            },
            context,
        );
    }

    /// The last scrape of `job` succeeded, without an error.
    pub fn assert_scrapes_clean(&self, job: &str) {
        let targets = self.api.get("/api/v1/targets").unwrap();
        let target = targets["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .unwrap_or_else(|| panic!("no target {job}: {targets}"));
        assert_eq!(target["health"], "up", "{target}");
        assert_eq!(target["lastError"], "", "{target}");
    }

    /// The type Prometheus recorded for each metric family of `job`'s scrapes.
    pub fn metadata(&self, job: &str) -> BTreeMap<String, String> {
        let selector = format!("{{job=\"{job}\"}}");
        let data = self
            .api
            .get(&format!(
                "/api/v1/targets/metadata?match_target={}",
                encode(&selector)
            ))
            .unwrap();
        data.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["metric"].as_str().unwrap().to_string(),
                    m["type"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// The targets' state and the end of the log of the Prometheus at `api`.
fn context(api: &Api, log: &Path) -> String {
    let log = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    let targets = api
        .get("/api/v1/targets")
        .map_or_else(|e| e, |t| t.to_string());
    format!(
        "Prometheus targets: {targets}\nPrometheus log (end):\n{}",
        tail.join("\n")
    )
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One series of a query result: its labels (with `__name__`) and its value.
pub type Series = (BTreeMap<String, String>, f64);

/// Prometheus's HTTP API at this address.
pub struct Api(pub SocketAddr);

impl Api {
    /// GET an API path: its `data`, or why not.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        let response = http_get(self.0, path)?;
        let json: Value = serde_json::from_str(&response.body)
            .map_err(|e| format!("{path}: {e}: {}", response.body))?;
        if response.status != 200 || json["status"] != "success" {
            return Err(format!("{path}: {} {}", response.status, response.body));
        }
        Ok(json["data"].clone())
    }

    pub fn query(&self, promql: &str) -> Result<Vec<Series>, String> {
        let data = self.get(&format!("/api/v1/query?query={}", encode(promql)))?;
        let result = data["result"].as_array().ok_or(format!("{data}"))?;
        result
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()
                    .ok_or(format!("{series}"))?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let value = series["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or(format!("{series}"))?;
                Ok((labels, value))
            })
            .collect()
    }
}

/// Polls `check` every 100 ms until it gives a value, for at most [`PATIENCE`]; then panics
/// with `what`, the last reason `check` gave, and `context()`.
pub fn wait_until<T>(
    what: &str,
    check: impl FnMut() -> Result<T, String>,
    context: impl Fn() -> String,
) -> T {
    wait_within(PATIENCE, what, check, context)
}

/// [`wait_until`] with a limit of the caller's.
pub fn wait_within<T>(
    patience: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + patience;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => {
                panic!(
                    "timed out after {patience:?} waiting for {what}; last: {last}\n{}",
                    context()
                )
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// One GET in HTTP/1.0, so that Go's server neither chunks the body nor keeps the connection.
fn http_get(addr: SocketAddr, path: &str) -> Result<Response, String> {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!(
            "incomplete response: {:?}",
            String::from_utf8_lossy(&raw)
        ));
    }
    Ok(parse_response(&raw))
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
