//! What the exporter says about its settings: the start-up line, and the one-shot commands that
//! help people write a mapping: `--check-config` prints what the settings and the mapping amount
//! to, `--render FILE` shows the metrics a saved document gives; neither touches the network.
//! And `--healthcheck`, which asks a running exporter on loopback for `/-/healthy` with a dozen
//! lines of `std::net` (a container's HEALTHCHECK has no curl): knows nothing about the target's
//! client, the poller or the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::exposition;
use crate::files;
use crate::log;
use crate::mapping;
use crate::probe;

/// Where the mapping comes from, for the start-up line and `--check-config`.
pub fn mapping_source(config: &Config) -> String {
    let mut count = format!("{} metrics", config.poll.mapping.metrics.len());
    let modules = config.poll.modules.list.len();
    if modules > 0 {
        count += &format!(", {modules} modules for /probe");
    }
    match &config.poll.mapping_file {
        Some(path) => format!("{} ({count})", path.display()),
        None => format!("built-in ({count})"),
    }
}

/// The start-up line: version, listen address and the effective settings (secrets redacted).
pub fn startup_line(config: &Config, local: SocketAddr) -> String {
    let request: String = crate::config::request_settings(&config.poll.request)
        .iter()
        .map(|(label, value)| format!("; {label}: {value}"))
        .collect();
    let web_auth = config
        .serve
        .web_auth_file
        .as_ref()
        .map_or_else(String::new, |path| {
            format!("; basic auth: users from {}", path.display())
        });
    let reload = if config.serve.enable_reload {
        "; POST /-/reload: on"
    } else {
        ""
    };
    format!(
        "status-exporter {} listening on {local}; polling {}{} every {:?} (timeout {:?}, at most {} bytes){request}; mapping: {}; OpenMetrics: {}{web_auth}{reload}",
        crate::config::VERSION,
        config.poll.request.target,
        if config.demo { " (demo target)" } else { "" },
        config.poll.interval,
        config.poll.request.timeout,
        config.poll.request.max_body_bytes,
        mapping_source(config),
        if config.serve.openmetrics { "when asked for" } else { "off" },
    )
}

/// The `--check-config` report.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let listen = config
        .serve
        .listen_address
        .map_or_else(|| "all interfaces".to_string(), |ip| ip.to_string());
    out += "settings are valid\n";
    out += &format!(
        "  target:        {}{}\n",
        config.poll.request.target,
        if config.demo {
            " (replaced by the demo target)"
        } else {
            ""
        }
    );
    out += &format!(
        "  interval:      {:?}\n  timeout:       {:?}\n",
        config.poll.interval, config.poll.request.timeout
    );
    out += &format!(
        "  max document:  {} bytes\n",
        config.poll.request.max_body_bytes
    );
    out += &format!("  max series:    {}\n", config.poll.max_series);
    for (label, value) in crate::config::request_settings(&config.poll.request) {
        out += &format!("  {:15}{value}\n", format!("{label}:"));
    }
    out += &format!("  listen:        {listen} port {}\n", config.serve.port);
    out += &format!(
        "  openmetrics:   {}\n",
        if config.serve.openmetrics {
            "when asked for"
        } else {
            "off"
        }
    );
    if let Some(path) = &config.serve.web_auth_file {
        let users = files::read_web_users(path, "WEB_BASIC_AUTH_FILE")
            .map_or_else(|e| e.to_string(), |users| users.describe());
        out += &format!("  basic auth:    {} ({users})\n", path.display());
    }
    out += &format!("  mapping:       {}\n", mapping_source(config));
    for metric in config.poll.mapping.metrics.iter() {
        out += &format!("    {metric}\n");
    }
    for module in &config.poll.modules.list {
        out += &format!("  module {}\n", probe::describe(module));
    }
    out
}

/// `--render FILE`: applies the mapping to a saved document and prints the text format.
pub fn render(config: &Config, file: &str) -> Result<(), String> {
    let mut text = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut text).map(|_| ())
    } else {
        std::fs::read(file).map(|bytes| text = bytes)
    };
    read.map_err(|e| format!("--render: cannot read {file}: {e}"))?;
    let applied = mapping::apply(&config.poll.mapping, &text, config.poll.max_series).map_err(
        |e| match e {
            mapping::ApplyError::InvalidJson(e) => {
                format!("--render: {file} is not a JSON document: {e}")
            }
            too_many => format!("--render: {file}: {too_many}"),
        },
    )?;
    for (metric, skipped) in config.poll.mapping.metrics.iter().zip(&applied.errors) {
        if let Some(first) = &skipped.first {
            log::warn!(
                "mapping: {}: {} sample(s) skipped, first: {first}",
                metric.name,
                skipped.count
            );
        }
    }
    let mut out = String::new();
    exposition::render(&applied.families, exposition::Format::Text, &mut out);
    print!("{out}");
    Ok(())
}

/// The longest `--healthcheck` takes: connecting, asking and reading the status line. Docker's
/// default HEALTHCHECK timeout is 30 s; a healthy exporter answers in a millisecond.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `--healthcheck`: `Ok` if `GET /-/healthy` at `addr` answers 200 within
/// [`HEALTHCHECK_TIMEOUT`], or why not.
pub fn healthcheck(addr: SocketAddr) -> Result<(), String> {
    let fail = |why: String| format!("--healthcheck: http://{addr}/-/healthy: {why}");
    let deadline = Instant::now() + HEALTHCHECK_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, HEALTHCHECK_TIMEOUT)
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
    let request = format!("GET /-/healthy HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(left()))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| fail(format!("cannot send the request: {e}")))?;
    // The status line is all that counts: `HTTP/1.1 200 OK`.
    let mut head = [0u8; 32];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        stream
            .set_read_timeout(Some(left()))
            .map_err(|e| fail(e.to_string()))?;
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(fail(format!("no answer: {e}"))),
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    let line = line.lines().next().unwrap_or("");
    match line.split(' ').nth(1) {
        Some("200") if line.starts_with("HTTP/1.") => Ok(()),
        _ if line.is_empty() => Err(fail("closed without an answer".into())),
        _ => Err(fail(format!("answered {line:?}"))),
    }
}
