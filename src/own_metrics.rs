//! The exporter's own metrics, `status_exporter_*`: how the polls went, as families.
//!
//! Owns their names, HELP texts, kinds and order, and the `reason` and `metric` labels. The
//! poller hands in the [`Figures`]; rendering them does no I/O. Knows nothing about how the
//! figures are counted, the target, or HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client::Reason;
use crate::config::{COMMIT, FEATURES, VERSION};
use crate::exposition::{Family, Kind};

/// The figures the exporter's own metrics show, as the poller has them.
#[derive(Debug)]
pub struct Figures<'a> {
    /// The last poll fetched and mapped the target's document.
    pub up: bool,
    /// When the last successful poll ended; None before the first.
    pub last_success: Option<SystemTime>,
    /// Duration of the last poll (fetch, parse and map), seconds; 0 before the first.
    pub last_duration: f64,
    /// Time from the start of one poll to the start of the next.
    pub delay: Duration,
    /// Polls of the target.
    pub polls: u64,
    /// Failed polls, indexed by `Reason as usize`.
    pub failures: &'a [u64; Reason::ALL.len()],
    /// Samples skipped, by mapped metric name, in mapping order.
    pub mapping_errors: &'a [(String, u64)],
    /// The last load of the mapping file succeeded (always with the built-in mapping).
    pub mapping_loaded: bool,
    /// The last read of the credentials file succeeded (always without credentials).
    pub credentials_read: bool,
}

/// The `status_exporter_*` families, in their fixed order.
pub fn families(figures: &Figures) -> Vec<Family> {
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let gauge_of = |yes: bool| f64::from(u8::from(yes));
    let mut failures = Family::new(
        "status_exporter_poll_failures_total",
        "Polls of the target that failed, by reason.",
        Kind::Counter,
    );
    for (reason, count) in Reason::ALL.iter().zip(figures.failures) {
        failures.push(&[("reason", reason.label())], *count as f64);
    }
    let mut mapping_errors = Family::new(
        "status_exporter_mapping_errors_total",
        "Samples skipped because the document had no usable value for them, by mapped metric.",
        Kind::Counter,
    );
    for (name, count) in figures.mapping_errors {
        mapping_errors.push(&[("metric", name)], *count as f64);
    }
    let mut build = Family::new(
        "status_exporter_build_info",
        "Version of status-exporter, the commit it was built from and its cargo features.",
        Kind::Info,
    );
    build.push(
        &[
            ("commit", COMMIT),
            ("features", FEATURES),
            ("version", VERSION),
        ],
        1.0,
    );
    vec![
        Family::single(
            "status_exporter_up",
            "1 if the last poll fetched and parsed the target's status document, 0 otherwise.",
            Kind::Gauge,
            gauge_of(figures.up),
        ),
        Family::single(
            "status_exporter_last_success_timestamp_seconds",
            "Unix time of the last successful poll, 0 before the first.",
            Kind::Gauge,
            figures.last_success.map_or(0.0, unix),
        ),
        Family::single(
            "status_exporter_poll_duration_seconds",
            "Duration of the last poll (fetch, parse and map), 0 before the first.",
            Kind::Gauge,
            figures.last_duration,
        ),
        Family::single(
            "status_exporter_poll_interval_seconds",
            "Time from the start of one poll to the start of the next: POLLING_INTERVAL_SECONDS, up to 4 times longer while backing off after 3 failed polls in a row.",
            Kind::Gauge,
            figures.delay.as_secs_f64(),
        ),
        Family::single(
            "status_exporter_polls_total",
            "Polls of the target.",
            Kind::Counter,
            figures.polls as f64,
        ),
        failures,
        mapping_errors,
        Family::single(
            "status_exporter_config_last_reload_successful",
            "1 if the last load of the mapping file succeeded (always 1 with the built-in mapping).",
            Kind::Gauge,
            gauge_of(figures.mapping_loaded),
        ),
        Family::single(
            "status_exporter_credentials_last_reload_successful",
            "1 if the last read of the credentials file succeeded (always 1 without credentials).",
            Kind::Gauge,
            gauge_of(figures.credentials_read),
        ),
        build,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{render, Format};

    #[test]
    fn families_in_their_fixed_order() {
        let mut failures = [0; Reason::ALL.len()];
        failures[Reason::Connect as usize] = 2;
        failures[Reason::InvalidJson as usize] = 1;
        let families = families(&Figures {
            up: true,
            last_success: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)),
            last_duration: 0.25,
            delay: Duration::from_secs(5),
            polls: 4,
            failures: &failures,
            mapping_errors: &[("app_requests_current".into(), 3)],
            mapping_loaded: true,
            credentials_read: false,
        });
        let mut text = String::new();
        render(&families, Format::Text, &mut text);
        let expected = r#"# HELP status_exporter_up 1 if the last poll fetched and parsed the target's status document, 0 otherwise.
# TYPE status_exporter_up gauge
status_exporter_up 1
# HELP status_exporter_last_success_timestamp_seconds Unix time of the last successful poll, 0 before the first.
# TYPE status_exporter_last_success_timestamp_seconds gauge
status_exporter_last_success_timestamp_seconds 1700000000.5
# HELP status_exporter_poll_duration_seconds Duration of the last poll (fetch, parse and map), 0 before the first.
# TYPE status_exporter_poll_duration_seconds gauge
status_exporter_poll_duration_seconds 0.25
# HELP status_exporter_poll_interval_seconds Time from the start of one poll to the start of the next: POLLING_INTERVAL_SECONDS, up to 4 times longer while backing off after 3 failed polls in a row.
# TYPE status_exporter_poll_interval_seconds gauge
status_exporter_poll_interval_seconds 5
# HELP status_exporter_polls_total Polls of the target.
# TYPE status_exporter_polls_total counter
status_exporter_polls_total 4
# HELP status_exporter_poll_failures_total Polls of the target that failed, by reason.
# TYPE status_exporter_poll_failures_total counter
status_exporter_poll_failures_total{reason="resolve"} 0
status_exporter_poll_failures_total{reason="connect"} 2
status_exporter_poll_failures_total{reason="tls"} 0
status_exporter_poll_failures_total{reason="timeout"} 0
status_exporter_poll_failures_total{reason="http_status"} 0
status_exporter_poll_failures_total{reason="redirect"} 0
status_exporter_poll_failures_total{reason="too_large"} 0
status_exporter_poll_failures_total{reason="invalid_response"} 0
status_exporter_poll_failures_total{reason="invalid_json"} 1
status_exporter_poll_failures_total{reason="too_many_series"} 0
# HELP status_exporter_mapping_errors_total Samples skipped because the document had no usable value for them, by mapped metric.
# TYPE status_exporter_mapping_errors_total counter
status_exporter_mapping_errors_total{metric="app_requests_current"} 3
# HELP status_exporter_config_last_reload_successful 1 if the last load of the mapping file succeeded (always 1 with the built-in mapping).
# TYPE status_exporter_config_last_reload_successful gauge
status_exporter_config_last_reload_successful 1
# HELP status_exporter_credentials_last_reload_successful 1 if the last read of the credentials file succeeded (always 1 without credentials).
# TYPE status_exporter_credentials_last_reload_successful gauge
status_exporter_credentials_last_reload_successful 0
# HELP status_exporter_build_info Version of status-exporter, the commit it was built from and its cargo features.
# TYPE status_exporter_build_info gauge
status_exporter_build_info{commit="COMMIT",features="FEATURES",version="VERSION"} 1
"#;
        let expected = expected
            .replace("COMMIT", COMMIT)
            .replace("FEATURES", FEATURES)
            .replace("VERSION", VERSION);
        assert_eq!(text, expected);
    }
}
