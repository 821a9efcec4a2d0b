//! Settings: command-line flags over environment variables over defaults, and the mapping file.
//!
//! Owns `HELP`, [`Config`] (every field with its unit and default), [`parse`] of flags and
//! environment into a [`Command`], and [`load_mapping`], which reads and validates a mapping
//! file. Every bad value becomes a [`ConfigError`] that names the setting and the fix. Knows
//! nothing about sockets or HTTP.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::mapping::{self, Mapping};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub const HELP: &str = "\
status-exporter: polls a JSON status page and serves its values as Prometheus metrics

USAGE:
    status-exporter [FLAGS]
    status-exporter --demo                 try it: polls an embedded demo target
    status-exporter --check-config         validate the settings and the mapping, then exit
    status-exporter --render FILE          print the metrics a saved document gives, then exit

Every setting is an environment variable (as in the Python tutorial exporter) and a flag that
overrides it. Flags take their value as `--flag VALUE` or `--flag=VALUE`. An empty variable
counts as unset.

TARGET (the application polled):
    --target-url URL                  TARGET_URL                full http:// URL of the status
                                                                document; overrides the three below
    --target-host HOST                TARGET_HOST               default: localhost
    --target-port PORT                TARGET_PORT               default: 8000
    --target-metrics PATH             TARGET_METRICS            path of the document; `status` and
                                                                `/status` both work; default: status
    --polling-interval-seconds SECS   POLLING_INTERVAL_SECONDS  time between polls, fractions allowed
                                                                (at least 0.1); default: 5
    --target-timeout-seconds SECS     TARGET_TIMEOUT_SECONDS    limit for one poll; default: 80% of
                                                                the interval, at most 10
    --target-max-bytes BYTES          TARGET_MAX_BYTES          largest document accepted;
                                                                default: 8388608 (8 MiB)

MAPPING (which JSON value becomes which metric):
    --config-file FILE                CONFIG_FILE               JSON mapping file; re-read when it
                                                                changes; default: the built-in
                                                                tutorial mapping (app_requests_current,
                                                                app_requests_pending, app_uptime,
                                                                app_health)
    --check-config                                              print a summary of the settings and
                                                                the mapping; exit 0, or 2 if invalid
    --render FILE                                               apply the mapping to a JSON document
                                                                in FILE (`-`: standard input), print
                                                                the metrics, exit; no network

SERVING (what Prometheus scrapes):
    --exporter-port PORT              EXPORTER_PORT             default: 9877; 0 picks a free port
    --listen-address ADDR             LISTEN_ADDRESS            IP address to bind, e.g. 127.0.0.1;
                                                                default: all interfaces (IPv6 and IPv4)
    --no-openmetrics                  OPENMETRICS=false         always answer in text format 0.0.4;
                                                                default: OpenMetrics when asked for

OTHER:
    --demo            serve an embedded demo target on a free loopback port and poll it
                      (TARGET_* settings are ignored)
    -h, --help        print this help
    -V, --version     print the version

ENDPOINTS:
    /metrics and /    the metrics (GET, HEAD)
    /-/healthy        200 while the process runs
    /-/ready          200 once a poll has succeeded, 503 before

EXIT STATUS:
    0 after --help, --version, --check-config and --render; 2 for a bad setting or mapping;
    1 when the exporter cannot start (port in use). A failing target never ends the process.
";

/// Everything the exporter needs to run, after defaults, environment and flags.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Time between the starts of two polls. POLLING_INTERVAL_SECONDS, default 5 s.
    pub interval: Duration,
    /// Limit for one poll: connect, request, response. TARGET_TIMEOUT_SECONDS, default 80% of
    /// the interval, at most 10 s.
    pub timeout: Duration,
    /// The status document polled. TARGET_URL, or TARGET_HOST/TARGET_PORT/TARGET_METRICS,
    /// default http://localhost:8000/status. Replaced by the demo target with `--demo`.
    pub target: Target,
    /// Largest response body accepted, bytes. TARGET_MAX_BYTES, default 8 MiB.
    pub max_body_bytes: usize,
    /// Address to bind. LISTEN_ADDRESS, default None: all interfaces.
    pub listen_address: Option<IpAddr>,
    /// Port to listen on, 0 for any free port. EXPORTER_PORT, default 9877.
    pub port: u16,
    /// The mapping file. CONFIG_FILE, default None: the built-in mapping.
    pub mapping_file: Option<PathBuf>,
    /// The mapping in use at start-up (the file's, or the built-in one).
    pub mapping: Mapping,
    /// Answer in OpenMetrics when the scraper prefers it. OPENMETRICS, default true.
    pub openmetrics: bool,
    /// Start the embedded demo target and poll it. `--demo`, default false.
    pub demo: bool,
}

/// Where the status document is: `http://{host}:{port}{path}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "http://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Version,
    Serve(Config),
    CheckConfig(Config),
    /// Apply the mapping to the document in this file (`-`: standard input) and print it.
    Render(Config, String),
}

#[derive(Debug, PartialEq)]
pub enum ConfigError {
    /// A setting has a value that cannot be used: `{setting}: {value:?} {fix}`.
    Invalid {
        setting: String,
        value: String,
        fix: String,
    },
    /// The command line itself is wrong (unknown flag, missing value).
    Usage(String),
    /// The mapping file cannot be read or is invalid.
    Mapping(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                setting,
                value,
                fix,
            } => write!(f, "{setting}: {value:?} {fix}"),
            ConfigError::Usage(message) => write!(f, "{message} (see --help)"),
            ConfigError::Mapping(message) => f.write_str(message),
        }
    }
}

/// One raw setting: its value and the name of where it came from (flag or variable).
struct Raw {
    name: String,
    value: String,
}

impl Raw {
    fn invalid(&self, fix: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: self.name.clone(),
            value: self.value.clone(),
            fix: fix.into(),
        }
    }
}

/// Parses the command line (without the program name) and the environment (`env` looks a
/// variable up).
pub fn parse(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    if args.contains(["-V", "--version"]) {
        return Ok(Command::Version);
    }
    let demo = args.contains("--demo");
    let check = args.contains("--check-config");
    let no_openmetrics = args.contains("--no-openmetrics");
    let mut setting = |flag: &'static str, var: &str| -> Result<Option<Raw>, ConfigError> {
        let from_flag = args
            .opt_value_from_str::<_, String>(flag)
            .map_err(|e| match e {
                pico_args::Error::OptionWithoutAValue(_) => {
                    ConfigError::Usage(format!("{flag} needs a value"))
                }
                other => ConfigError::Usage(format!("{flag}: {other}")),
            })?;
        Ok(match from_flag {
            Some(value) => Some(Raw {
                name: flag.to_string(),
                value,
            }),
            None => env(var).filter(|v| !v.is_empty()).map(|value| Raw {
                name: var.to_string(),
                value,
            }),
        })
    };
    let interval = setting("--polling-interval-seconds", "POLLING_INTERVAL_SECONDS")?;
    let timeout = setting("--target-timeout-seconds", "TARGET_TIMEOUT_SECONDS")?;
    let url = setting("--target-url", "TARGET_URL")?;
    let host = setting("--target-host", "TARGET_HOST")?;
    let target_port = setting("--target-port", "TARGET_PORT")?;
    let path = setting("--target-metrics", "TARGET_METRICS")?;
    let max_bytes = setting("--target-max-bytes", "TARGET_MAX_BYTES")?;
    let listen = setting("--listen-address", "LISTEN_ADDRESS")?;
    let port = setting("--exporter-port", "EXPORTER_PORT")?;
    let file = setting("--config-file", "CONFIG_FILE")?;
    let openmetrics = setting("--openmetrics", "OPENMETRICS")?;
    let render = setting("--render", "")?;
    let rest = args.finish();
    if let Some(arg) = rest.first() {
        let arg = arg.to_string_lossy();
        return Err(ConfigError::Usage(if arg.starts_with('-') {
            format!("unknown flag {arg:?}, or a flag given twice")
        } else {
            format!("unexpected argument {arg:?}")
        }));
    }

    let interval = match interval {
        Some(raw) => parse_seconds(&raw, 0.1)?,
        None => Duration::from_secs(5),
    };
    let timeout = match timeout {
        Some(raw) => parse_seconds(&raw, 0.001)?,
        None => interval.mul_f64(0.8).min(Duration::from_secs(10)),
    };
    let target = match url {
        Some(raw) => parse_url(&raw)?,
        None => Target {
            host: host.map_or_else(|| "localhost".to_string(), |raw| raw.value),
            port: match target_port {
                Some(raw) => parse_port(&raw, 1)?,
                None => 8000,
            },
            path: match path {
                Some(raw) => normalize_path(&raw)?,
                None => "/status".to_string(),
            },
        },
    };
    if target.host.is_empty()
        || target
            .host
            .contains(|c: char| c.is_whitespace() || "/?#@[]".contains(c))
    {
        return Err(ConfigError::Invalid {
            setting: "TARGET_HOST".into(),
            value: target.host,
            fix: "is not a host name or IP address".into(),
        });
    }
    let max_body_bytes = match max_bytes {
        Some(raw) => match raw.value.parse::<usize>() {
            Ok(n) if n >= 1024 => n,
            _ => return Err(raw.invalid("is not a byte count of at least 1024")),
        },
        None => 8 << 20,
    };
    let listen_address = match listen {
        Some(raw) => Some(
            raw.value
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| raw.invalid("is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)"))?,
        ),
        None => None,
    };
    let port = match port {
        Some(raw) => parse_port(&raw, 0)?,
        None => 9877,
    };
    let openmetrics = match openmetrics {
        _ if no_openmetrics => false,
        Some(raw) => parse_bool(&raw)?,
        None => true,
    };
    let mapping_file = file.map(|raw| PathBuf::from(raw.value));
    let mapping = match &mapping_file {
        Some(path) => load_mapping(path)?,
        None => mapping::builtin(),
    };
    let config = Config {
        interval,
        timeout,
        target,
        max_body_bytes,
        listen_address,
        port,
        mapping_file,
        mapping,
        openmetrics,
        demo,
    };
    Ok(match (render, check) {
        (Some(raw), _) => Command::Render(config, raw.value),
        (None, true) => Command::CheckConfig(config),
        (None, false) => Command::Serve(config),
    })
}

/// Reads and validates a mapping file.
pub fn load_mapping(path: &Path) -> Result<Mapping, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Mapping(format!("CONFIG_FILE: cannot read {}: {e}", path.display()))
    })?;
    mapping::parse(&text).map_err(|e| ConfigError::Mapping(format!("{}: {e}", path.display())))
}

fn parse_seconds(raw: &Raw, min: f64) -> Result<Duration, ConfigError> {
    let fix = format!("is not a number of seconds between {min} and 86400 (e.g. 5 or 0.5)");
    match raw.value.trim().parse::<f64>() {
        Ok(secs) if (min..=86400.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(raw.invalid(fix)),
    }
}

fn parse_port(raw: &Raw, min: u16) -> Result<u16, ConfigError> {
    match raw.value.trim().parse::<u16>() {
        Ok(port) if port >= min => Ok(port),
        _ => Err(raw.invalid(format!("is not a port number ({min}-65535)"))),
    }
}

fn parse_bool(raw: &Raw) -> Result<bool, ConfigError> {
    match raw.value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(raw.invalid("is not true or false")),
    }
}

fn normalize_path(raw: &Raw) -> Result<String, ConfigError> {
    let path = raw.value.trim();
    if path.contains(|c: char| c.is_whitespace() || c.is_control() || c == '#') {
        return Err(raw.invalid("is not a URL path (no spaces or #; percent-encode them)"));
    }
    Ok(if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    })
}

fn parse_url(raw: &Raw) -> Result<Target, ConfigError> {
    let Some(rest) = raw.value.strip_prefix("http://") else {
        return Err(raw.invalid("must start with http:// (e.g. http://localhost:8000/status)"));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(
            raw.invalid("has credentials in it, which are not supported; remove user:password@")
        );
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) if port.starts_with(':') => (host, Some(&port[1..])),
            _ => return Err(raw.invalid("has a malformed [IPv6] host")),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty()
        || host.contains(|c: char| c.is_whitespace() || c == ':' && !authority.starts_with('['))
    {
        return Err(raw.invalid("has no valid host (e.g. http://localhost:8000/status)"));
    }
    let port = match port {
        Some(port) => match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(raw.invalid("has an invalid port (1-65535)")),
        },
        None => 80,
    };
    let path = Raw {
        name: raw.name.clone(),
        value: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    };
    Ok(Target {
        host: host.to_string(),
        port,
        path: normalize_path(&path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let args = args.iter().map(OsString::from).collect();
        parse(args, |name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match run(args, env) {
            Ok(Command::Serve(config)) => config,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    /// Checks the one-line error for bad settings.
    fn check_error(args: &[&str], env: &[(&str, &str)], expected: &str) {
        match run(args, env) {
            Err(e) => assert_eq!(e.to_string(), expected),
            Ok(c) => panic!("expected an error, got {c:?}"),
        }
    }

    #[test]
    fn defaults_match_the_tutorial() {
        let c = config(&[], &[]);
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.timeout, Duration::from_secs(4));
        assert_eq!(c.target.to_string(), "http://localhost:8000/status");
        assert_eq!(c.port, 9877);
        assert_eq!(c.listen_address, None);
        assert_eq!(c.mapping, mapping::builtin());
        assert!(c.openmetrics && !c.demo);
        assert_eq!(c.max_body_bytes, 8 << 20);
    }

    #[test]
    fn environment_and_flags() {
        let env = [
            ("POLLING_INTERVAL_SECONDS", "0.5"),
            ("EXPORTER_PORT", "9100"),
            ("TARGET_HOST", "10.0.0.7"),
            ("TARGET_PORT", "8080"),
            ("TARGET_METRICS", "api/health?full=1"),
            ("LISTEN_ADDRESS", "::1"),
            ("OPENMETRICS", "false"),
        ];
        let c = config(&[], &env);
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(c.timeout, Duration::from_millis(400));
        assert_eq!(c.port, 9100);
        assert_eq!(
            c.target.to_string(),
            "http://10.0.0.7:8080/api/health?full=1"
        );
        assert_eq!(c.listen_address, Some("::1".parse().unwrap()));
        assert!(!c.openmetrics);
        let c = config(
            &[
                "--exporter-port",
                "9200",
                "--target-metrics=/status",
                "--polling-interval-seconds",
                "60",
            ],
            &env,
        );
        assert_eq!((c.port, c.target.path.as_str()), (9200, "/status"));
        assert_eq!(
            c.timeout,
            Duration::from_secs(10),
            "default timeout is capped at 10 s"
        );
        let c = config(
            &["--target-url", "http://[::1]:81/s"],
            &[("TARGET_HOST", "ignored"), ("EXPORTER_PORT", "")],
        );
        assert_eq!(
            (
                c.target.host.as_str(),
                c.target.port,
                c.target.path.as_str(),
                c.port
            ),
            ("::1", 81, "/s", 9877)
        );
        assert_eq!(c.target.to_string(), "http://[::1]:81/s");
        let c = config(
            &["--target-timeout-seconds", "2.5"],
            &[("TARGET_URL", "http://example.org")],
        );
        assert_eq!(
            (c.timeout, c.target.to_string()),
            (
                Duration::from_millis(2500),
                "http://example.org:80/".to_string()
            )
        );
        assert!(!config(&["--no-openmetrics"], &[("OPENMETRICS", "true")]).openmetrics);
    }

    #[test]
    fn commands() {
        assert_eq!(run(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(
            run(&["-V"], &[("EXPORTER_PORT", "bad")]),
            Ok(Command::Version)
        );
        assert!(matches!(
            run(&["--check-config"], &[]),
            Ok(Command::CheckConfig(_))
        ));
        assert!(matches!(run(&["--render", "-"], &[]), Ok(Command::Render(_, f)) if f == "-"));
        assert!(matches!(run(&["--demo"], &[]), Ok(Command::Serve(c)) if c.demo));
    }

    #[test]
    fn bad_settings_name_the_setting_and_the_fix() {
        check_error(
            &[],
            &[("EXPORTER_PORT", "abc")],
            r#"EXPORTER_PORT: "abc" is not a port number (0-65535)"#,
        );
        check_error(
            &["--exporter-port", "70000"],
            &[],
            r#"--exporter-port: "70000" is not a port number (0-65535)"#,
        );
        check_error(
            &[],
            &[("TARGET_PORT", "0")],
            r#"TARGET_PORT: "0" is not a port number (1-65535)"#,
        );
        let interval = "is not a number of seconds between 0.1 and 86400 (e.g. 5 or 0.5)";
        check_error(
            &[],
            &[("POLLING_INTERVAL_SECONDS", "0")],
            &format!(r#"POLLING_INTERVAL_SECONDS: "0" {interval}"#),
        );
        check_error(
            &[],
            &[("POLLING_INTERVAL_SECONDS", "-1")],
            &format!(r#"POLLING_INTERVAL_SECONDS: "-1" {interval}"#),
        );
        check_error(
            &[],
            &[("POLLING_INTERVAL_SECONDS", "NaN")],
            &format!(r#"POLLING_INTERVAL_SECONDS: "NaN" {interval}"#),
        );
        check_error(
            &[],
            &[("POLLING_INTERVAL_SECONDS", "5s")],
            &format!(r#"POLLING_INTERVAL_SECONDS: "5s" {interval}"#),
        );
        check_error(
            &[],
            &[("TARGET_URL", "localhost:8000/status")],
            r#"TARGET_URL: "localhost:8000/status" must start with http:// (e.g. http://localhost:8000/status)"#,
        );
        check_error(
            &[],
            &[("TARGET_URL", "http://:80/")],
            r#"TARGET_URL: "http://:80/" has no valid host (e.g. http://localhost:8000/status)"#,
        );
        check_error(
            &[],
            &[("TARGET_URL", "http://h:x/")],
            r#"TARGET_URL: "http://h:x/" has an invalid port (1-65535)"#,
        );
        check_error(
            &[],
            &[("TARGET_URL", "http://u:p@h/")],
            r#"TARGET_URL: "http://u:p@h/" has credentials in it, which are not supported; remove user:password@"#,
        );
        check_error(
            &[],
            &[("TARGET_HOST", "a b")],
            r#"TARGET_HOST: "a b" is not a host name or IP address"#,
        );
        check_error(
            &[],
            &[("LISTEN_ADDRESS", "localhost")],
            r#"LISTEN_ADDRESS: "localhost" is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)"#,
        );
        check_error(
            &[],
            &[("OPENMETRICS", "maybe")],
            r#"OPENMETRICS: "maybe" is not true or false"#,
        );
        check_error(
            &[],
            &[("TARGET_MAX_BYTES", "10")],
            r#"TARGET_MAX_BYTES: "10" is not a byte count of at least 1024"#,
        );
        check_error(
            &["--bogus"],
            &[],
            r#"unknown flag "--bogus", or a flag given twice (see --help)"#,
        );
        check_error(
            &["--exporter-port"],
            &[],
            "--exporter-port needs a value (see --help)",
        );
        check_error(
            &["extra"],
            &[],
            r#"unexpected argument "extra" (see --help)"#,
        );
        check_error(
            &["--config-file", "/nonexistent/m.json"],
            &[],
            "CONFIG_FILE: cannot read /nonexistent/m.json: No such file or directory (os error 2)",
        );
    }
}
