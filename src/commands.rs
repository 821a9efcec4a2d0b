//! What the exporter says about its settings: the start-up line, and the one-shot commands that
//! help people write a mapping: `--check-config` prints what the settings and the mapping amount
//! to, `--render FILE` shows the metrics a saved document gives. None touches the network:
//! knows nothing about the client, the poller or HTTP.

use std::io::Read;
use std::net::SocketAddr;

use crate::config::Config;
use crate::exposition;
use crate::files;
use crate::log;
use crate::mapping;

/// Where the mapping comes from, for the start-up line and `--check-config`.
pub fn mapping_source(config: &Config) -> String {
    let count = config.poll.mapping.metrics.len();
    match &config.poll.mapping_file {
        Some(path) => format!("{} ({count} metrics)", path.display()),
        None => format!("built-in ({count} metrics)"),
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
