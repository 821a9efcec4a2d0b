//! Settings: command-line flags over environment variables over defaults.
//!
//! Owns `HELP`, [`Config`] in one section per part that runs (every field with its unit and
//! default), [`parse`] of flags and environment into a [`Command`], and the check of every
//! value at start-up: a file that a setting names is read once through `files.rs`, which owns
//! its format. Every bad value becomes a [`ConfigError`] that names the setting and the fix.
//! Knows nothing about sockets, requests, or what the files read at run time hold.

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::client;
use crate::files::{self, Auth, FileError};
use crate::http;
use crate::mapping::{self, Mapping};
use crate::probe::Modules;
use crate::target::{self, HostError, Target, UrlError};
use crate::tls::{self, CaSetting, Trust};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from (`git rev-parse --short HEAD`, by `build.rs`), or
/// `unknown` when it was not built in a git checkout.
pub const COMMIT: &str = env!("STATUS_EXPORTER_COMMIT");

/// The cargo features the binary was built with, comma-separated; empty for the plain build.
pub const FEATURES: &str = if cfg!(feature = "https-builtin-roots") {
    "https,https-builtin-roots"
} else if cfg!(feature = "https") {
    "https"
} else {
    ""
};

/// What `--version` prints: version, commit and features.
pub fn version() -> String {
    let features = if FEATURES.is_empty() {
        "none"
    } else {
        FEATURES
    };
    format!("status-exporter {VERSION} (commit {COMMIT}, features: {features})")
}

/// MAX_SERIES by default: far more than a status page gives, far less than what would take the
/// exporter past its memory budget (a series costs about 100 bytes in each of the two formats).
const DEFAULT_MAX_SERIES: usize = 100_000;

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
    --target-url URL                  TARGET_URL                full http:// or https:// URL of the
                                                                status document; overrides the three
                                                                below (https:// needs a build with
                                                                the `https` feature)
    --target-host HOST                TARGET_HOST               default: localhost
    --target-port PORT                TARGET_PORT               default: 8000
    --target-metrics PATH             TARGET_METRICS            path of the document; `status` and
                                                                `/status` both work; default: status
    --polling-interval-seconds SECS   POLLING_INTERVAL_SECONDS  time between polls, fractions allowed
                                                                (at least 0.1); default: 5
    --target-timeout-seconds SECS     TARGET_TIMEOUT_SECONDS    limit for one whole poll (lookup,
                                                                connection, answer, redirects),
                                                                fractions allowed; default: 80% of
                                                                the interval, at most 10
    --target-max-bytes BYTES          TARGET_MAX_BYTES          largest document accepted;
                                                                default: 8388608 (8 MiB)

    The first poll comes after a random delay of up to a tenth of the interval (at most 1 s), so
    that exporters started together do not poll in step. One request at a time; redirects are
    followed on the same scheme, host and port only, at most 5. After 3 failed polls in a row the
    time between polls doubles, then doubles again (4 intervals), until a poll succeeds.

REQUEST (what the exporter sends to the target):
    --target-header 'NAME: VALUE'     TARGET_HEADERS            a request header, e.g. an API key;
                                                                repeat the flag for more; the
                                                                variable holds one per line; flags
                                                                replace the variable. Sent by
                                                                default: Accept: application/json,
                                                                Accept-Encoding: identity,
                                                                User-Agent: status-exporter/VERSION;
                                                                a header of the same name replaces
                                                                them
    --target-bearer-token-file FILE   TARGET_BEARER_TOKEN_FILE  send `Authorization: Bearer TOKEN`,
                                                                TOKEN read from FILE
    --target-basic-auth-user USER     TARGET_BASIC_AUTH_USER    send basic auth as USER, with the
                                                                password read from the file below
    --target-basic-auth-password-file FILE TARGET_BASIC_AUTH_PASSWORD_FILE
    --target-ca-file FILE             TARGET_CA_FILE            PEM file of the CA certificates to
                                                                trust for an https:// target instead
                                                                of the system's, or `builtin`: the
                                                                Mozilla roots built into the
                                                                https-builtin-roots build; loaded
                                                                once (a change needs a restart);
                                                                default: SSL_CERT_FILE/SSL_CERT_DIR
                                                                if set, else the system's bundle,
                                                                else the built-in roots if any

    Header values and credentials are never printed. Credential files are read at start
    (unreadable: exit 2) and again whenever they change, so rotation needs no restart; if a
    changed file cannot be read or is empty, the last good value stays in use. A final line break
    in a file is not part of the secret.

    Files re-read when they change (the mapping, credential and users files): a new version is
    read once it has stayed unchanged for 1 s, so that a file caught half-written is never used;
    a version that cannot be read or is invalid keeps the last good value in use and is logged
    once, with its own error. SIGHUP (systemctl reload) reads them all at once, whatever their
    age, and logs one line per file.

MAPPING (which JSON value becomes which metric):
    --config-file FILE                CONFIG_FILE               JSON mapping file (and the modules of
                                                                /probe); re-read when it
                                                                changes; default: the built-in
                                                                tutorial mapping (app_requests_current,
                                                                app_requests_pending, app_uptime,
                                                                app_health)
    --check-config                                              print a summary of the settings and
                                                                the mapping; exit 0, or 2 if invalid
    --render FILE                                               apply the mapping to a JSON document
                                                                in FILE (`-`: standard input), print
                                                                the metrics, exit; no network
    --max-series N                    MAX_SERIES                most series one poll may give; a
                                                                document that gives more fails the
                                                                poll (reason too_many_series);
                                                                default: 100000

SERVING (what Prometheus scrapes):
    --exporter-port PORT              EXPORTER_PORT             default: 9877; 0 picks a free port
    --listen-address ADDR             LISTEN_ADDRESS            IP address to bind, e.g. 127.0.0.1;
                                                                default: all interfaces (IPv6 and IPv4)
    --no-openmetrics                  OPENMETRICS=false         always answer in text format 0.0.4;
                                                                default: OpenMetrics when asked for
    --no-gzip                         GZIP=false                never compress the metrics; default:
                                                                gzip for a scraper that accepts it,
                                                                when they are 4 KiB or more
    --web-basic-auth-file FILE        WEB_BASIC_AUTH_FILE       answer /metrics, / and /-/reload
                                                                only to basic auth matching a line
                                                                of FILE: `user:HASH` as htpasswd -B
                                                                writes it (bcrypt, cost at most 12),
                                                                or `user:password` (plain text, with
                                                                a warning); one user per line, #
                                                                starts a comment; re-read when it
                                                                changes; default: no authentication
    --web-enable-reload               WEB_ENABLE_RELOAD=true    answer POST /-/reload: read the files
                                                                again, as SIGHUP does; default: off
                                                                (404)

OTHER:
    --demo            serve an embedded demo target on a free loopback port and poll it
                      (TARGET_* settings are ignored); it reports `unhealthy` during every
                      minute whose number ends in 9 (10:09, 10:19, ... UTC), so that app_health
                      changes
    --healthcheck     ask the exporter running with these settings for /-/healthy
                      (at EXPORTER_PORT, on LISTEN_ADDRESS or else 127.0.0.1; 2 s at
                      most) and exit 0 if it answers 200, 1 otherwise: a container's
                      HEALTHCHECK without curl; the other settings are not checked
    -h, --help        print this help
    -V, --version     print the version, the commit and the features of the build

ENDPOINTS:
    /metrics and /    the metrics (GET, HEAD); at /, a browser (Accept preferring text/html)
                      gets a status page instead; 401 without valid credentials when
                      WEB_BASIC_AUTH_FILE is set
    /probe            ?target=HOST:PORT&module=NAME: fetch that target now with a module of
                      CONFIG_FILE and answer its metrics (GET, HEAD); 404 unless the file
                      declares modules, 403 for a target outside the module's allow list;
                      protected like /metrics (docs/probe.md)
    /-/reload         with --web-enable-reload: POST reads the files again; 200 with one line
                      per file, 500 with the error if one is invalid (the previous version
                      stays in use)
    /-/healthy        200 while the process runs (never asks for credentials)
    /-/ready          200 once a poll has succeeded and while the poller publishes, 503
                      otherwise (never asks for credentials)

SIGNALS:
    SIGHUP            read the mapping, credential and users files again at once
    SIGTERM, SIGINT   stop: close idle connections, finish the responses in flight (1 s at
                      most), exit 0

EXIT STATUS:
    0 after --help, --version, --check-config and --render, and after SIGTERM or SIGINT; 2 for
    a bad setting or mapping; 1 when the exporter cannot start (port in use), when its poller
    stops (a bug), or when --healthcheck gets no 200. A failing target never ends the process.
";

/// Everything the exporter needs to run, after defaults, environment and flags: one section for
/// each part that runs, handed to it whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// What the poller needs (`poll::Poller::new`).
    pub poll: PollSettings,
    /// What the server needs (`server::serve`), and where it listens.
    pub serve: ServeSettings,
    /// Start the embedded demo target and poll it instead of the target. `--demo`, default
    /// false.
    pub demo: bool,
}

/// How often the target is polled, how, and what its document is mapped to.
#[derive(Clone, Debug, PartialEq)]
pub struct PollSettings {
    /// Time between the starts of two polls. POLLING_INTERVAL_SECONDS, default 5 s.
    pub interval: Duration,
    /// What each poll asks of the target.
    pub request: RequestSettings,
    /// The mapping file. CONFIG_FILE, default None: the built-in mapping.
    pub mapping_file: Option<PathBuf>,
    /// The mapping in use at start-up (the file's, or the built-in one).
    pub mapping: Mapping,
    /// The modules of `/probe` the file declares at start-up (none without a file).
    pub modules: Arc<Modules>,
    /// The most series one poll may give; a document that gives more fails the poll.
    /// MAX_SERIES, default 100,000.
    pub max_series: usize,
    /// Keep each large snapshot gzip-compressed too, for scrapers that accept gzip. GZIP,
    /// default true.
    pub gzip: bool,
}

/// What a request to the target is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSettings {
    /// The status document polled. TARGET_URL, or TARGET_HOST/TARGET_PORT/TARGET_METRICS,
    /// default http://localhost:8000/status. Replaced by the demo target with `--demo`.
    pub target: Target,
    /// Limit for one whole poll: lookup, connection, handshake, request, response, redirects.
    /// TARGET_TIMEOUT_SECONDS, default 80% of the interval, at most 10 s.
    pub timeout: Duration,
    /// Largest response body accepted, bytes. TARGET_MAX_BYTES, default 8 MiB.
    pub max_body_bytes: usize,
    /// Extra request headers (name, value), in the order given; validated, no two with the same
    /// name. `--target-header` (repeated) or TARGET_HEADERS (one per line), default none.
    pub headers: Vec<(String, String)>,
    /// Credentials sent with every request. TARGET_BEARER_TOKEN_FILE, or TARGET_BASIC_AUTH_USER
    /// with TARGET_BASIC_AUTH_PASSWORD_FILE; default None. Holds file names, never secrets.
    pub auth: Option<Auth>,
    /// The CA certificates trusted for an https:// target, loaded at start-up: TARGET_CA_FILE
    /// (a PEM file, or `builtin`), default the system's (`tls.rs` says where they are looked
    /// for). Unused for an http:// target.
    pub trust: Trust,
}

/// Where the exporter listens and how it answers.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeSettings {
    /// Address to bind. LISTEN_ADDRESS, default None: all interfaces.
    pub listen_address: Option<IpAddr>,
    /// Port to listen on, 0 for any free port. EXPORTER_PORT, default 9877.
    pub port: u16,
    /// Answer in OpenMetrics when the scraper prefers it. OPENMETRICS, default true.
    pub openmetrics: bool,
    /// File of `user:password` or `user:BCRYPT-HASH` lines; when set, the metrics (and the
    /// reload endpoint) are served only to requests with basic auth matching one of them.
    /// WEB_BASIC_AUTH_FILE, default None: no authentication. Holds the file name, never the
    /// passwords.
    pub web_auth_file: Option<PathBuf>,
    /// Answer `POST /-/reload` by reading the files again. WEB_ENABLE_RELOAD or
    /// `--web-enable-reload`, default false: the path is 404.
    pub enable_reload: bool,
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
    /// Ask the exporter listening at this address whether it is healthy (`--healthcheck`).
    Healthcheck(SocketAddr),
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
    /// A file named by a setting cannot be read, or what it holds cannot be used.
    File(FileError),
    /// A setting that cannot be used, as a whole message that names it and the fix (used where
    /// the value must not be printed, or where two settings conflict).
    Setting(String),
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
            ConfigError::Setting(message) => f.write_str(message),
            ConfigError::File(e) => write!(f, "{e}"),
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

    /// The error for a value that is not a URL or a URL path; the value shown is the part at
    /// fault, with its secrets hidden (`target::redact`). User info is never shown.
    fn invalid_url(&self, error: UrlError) -> ConfigError {
        let value = match &error {
            UrlError::Credentials => {
                return ConfigError::Setting(format!(
                    "{}: the URL has a user name or password in it (user:password@), which is \
                     not sent; give the user with --target-basic-auth-user \
                     (TARGET_BASIC_AUTH_USER) and the password in the file named by \
                     --target-basic-auth-password-file (TARGET_BASIC_AUTH_PASSWORD_FILE)",
                    self.name
                ))
            }
            UrlError::Path(path) => target::redact(path).into_owned(),
            _ => target::redact(&self.value).into_owned(),
        };
        ConfigError::Invalid {
            setting: self.name.clone(),
            value,
            fix: error.to_string(),
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
    let healthcheck = args.contains("--healthcheck");
    let demo = args.contains("--demo");
    let check = args.contains("--check-config");
    let no_openmetrics = args.contains("--no-openmetrics");
    let no_gzip = args.contains("--no-gzip");
    let enable_reload_flag = args.contains("--web-enable-reload");
    let header_flags: Vec<String> = args.values_from_str("--target-header").map_err(|e| {
        ConfigError::Usage(match e {
            pico_args::Error::OptionWithoutAValue(_) => "--target-header needs a value".into(),
            other => format!("--target-header: {other}"),
        })
    })?;
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
    let max_series = setting("--max-series", "MAX_SERIES")?;
    let openmetrics = setting("--openmetrics", "OPENMETRICS")?;
    let gzip = setting("--gzip", "GZIP")?;
    let render = setting("--render", "")?;
    let bearer = setting("--target-bearer-token-file", "TARGET_BEARER_TOKEN_FILE")?;
    let basic_user = setting("--target-basic-auth-user", "TARGET_BASIC_AUTH_USER")?;
    let basic_password = setting(
        "--target-basic-auth-password-file",
        "TARGET_BASIC_AUTH_PASSWORD_FILE",
    )?;
    let ca_file = setting("--target-ca-file", "TARGET_CA_FILE")?;
    let web_auth = setting("--web-basic-auth-file", "WEB_BASIC_AUTH_FILE")?;
    let enable_reload = setting("--web-enable-reload", "WEB_ENABLE_RELOAD")?;
    let rest = args.finish();
    if let Some(arg) = rest.first() {
        let arg = arg.to_string_lossy();
        return Err(ConfigError::Usage(if arg.starts_with('-') {
            format!("unknown flag {arg:?}, or a flag given twice")
        } else {
            format!("unexpected argument {arg:?}")
        }));
    }
    if healthcheck {
        // The same command line as the exporter's works; only where it listens matters.
        return Ok(Command::Healthcheck(healthcheck_address(listen, port)?));
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
        Some(raw) => Target::parse(&raw.value).map_err(|e| raw.invalid_url(e))?,
        None => Target {
            host: match host {
                Some(raw) => parse_host(&raw)?,
                None => "localhost".to_string(),
            },
            port: match target_port {
                Some(raw) => parse_port(&raw, 1)?,
                None => 8000,
            },
            path: match path {
                Some(raw) => target::path(&raw.value).map_err(|e| raw.invalid_url(e))?,
                None => "/status".to_string(),
            },
            https: false,
        },
    };
    let max_body_bytes = match max_bytes {
        Some(raw) => match raw.value.parse::<usize>() {
            Ok(n) if n >= 1024 => n,
            _ => return Err(raw.invalid("is not a byte count of at least 1024")),
        },
        None => 8 << 20,
    };
    let listen_address = listen.as_ref().map(parse_ip).transpose()?;
    let port = match port {
        Some(raw) => parse_port(&raw, 0)?,
        None => 9877,
    };
    let openmetrics = match openmetrics {
        _ if no_openmetrics => false,
        Some(raw) => parse_bool(&raw)?,
        None => true,
    };
    let gzip = match gzip {
        _ if no_gzip => false,
        Some(raw) => parse_bool(&raw)?,
        None => true,
    };
    let enable_reload = match enable_reload {
        _ if enable_reload_flag => true,
        Some(raw) => parse_bool(&raw)?,
        None => false,
    };
    let (header_setting, headers) = if header_flags.is_empty() {
        let lines = env("TARGET_HEADERS").unwrap_or_default();
        (
            "TARGET_HEADERS",
            parse_headers("TARGET_HEADERS", lines.lines())?,
        )
    } else {
        let lines = header_flags.iter().map(String::as_str);
        ("--target-header", parse_headers("--target-header", lines)?)
    };
    let auth = parse_auth(bearer, basic_user, basic_password)?;
    let authorization = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    if let (Some(auth), Some((name, _))) = (&auth, authorization) {
        return Err(ConfigError::Setting(format!(
            "{header_setting}: {name:?} conflicts with the credentials from {}; remove one of them",
            auth.setting()
        )));
    }
    let trust = parse_trust(ca_file, &target, &env)?;
    let web_auth_file = match web_auth {
        Some(raw) => {
            let path = PathBuf::from(&raw.value);
            files::read_web_users(&path, &raw.name).map_err(ConfigError::File)?;
            Some(path)
        }
        None => None,
    };
    let max_series = match max_series {
        Some(raw) => match raw.value.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(raw.invalid("is not a number of series (at least 1)")),
        },
        None => DEFAULT_MAX_SERIES,
    };
    let mapping_file = file.map(|raw| PathBuf::from(raw.value));
    let (mapping, modules) = match &mapping_file {
        Some(path) => files::read_mapping(path).map_err(ConfigError::File)?,
        None => (mapping::builtin(), Arc::default()),
    };
    let config = Config {
        poll: PollSettings {
            interval,
            request: RequestSettings {
                target,
                timeout,
                max_body_bytes,
                headers,
                auth,
                trust,
            },
            mapping_file,
            mapping,
            modules,
            max_series,
            gzip,
        },
        serve: ServeSettings {
            listen_address,
            port,
            openmetrics,
            web_auth_file,
            enable_reload,
        },
        demo,
    };
    Ok(match (render, check) {
        (Some(raw), _) => Command::Render(config, raw.value),
        (None, true) => Command::CheckConfig(config),
        (None, false) => Command::Serve(config),
    })
}

/// Parses `NAME: VALUE` lines (blank ones skipped). Messages never show a value: it may be a key.
fn parse_headers<'a>(
    setting: &str,
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for (number, line) in lines.enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ConfigError::Setting(format!(
                "{setting}: header {} has no colon; write NAME: VALUE (e.g. \"X-Api-Key: abc\")",
                number + 1
            )));
        };
        let name = name.trim();
        let invalid = |fix: &str| ConfigError::Invalid {
            setting: setting.to_string(),
            value: name.to_string(),
            fix: fix.to_string(),
        };
        if !http::is_token(name) {
            return Err(invalid(
                "is not a header name (letters, digits and !#$%&'*+-.^_`|~, no spaces)",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if client::MANAGED_HEADERS.contains(&lower.as_str()) {
            return Err(invalid("is set by the exporter; remove it"));
        }
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(invalid(
                "is given twice; give it once, with the values separated by commas",
            ));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ConfigError::Setting(format!(
                "{setting}: the value of {name:?} has a line break or another control character; \
                 a value is one line"
            )));
        }
        headers.push((name.to_string(), value.to_string()));
    }
    Ok(headers)
}

fn parse_auth(
    bearer: Option<Raw>,
    user: Option<Raw>,
    password: Option<Raw>,
) -> Result<Option<Auth>, ConfigError> {
    let auth = match (bearer, user, password) {
        (None, None, None) => return Ok(None),
        (Some(bearer), None, None) => {
            let auth = Auth::Bearer {
                token_file: PathBuf::from(&bearer.value),
            };
            files::read_credentials(&auth, &bearer.name).map_err(ConfigError::File)?;
            auth
        }
        (Some(bearer), Some(other), _) | (Some(bearer), None, Some(other)) => {
            return Err(ConfigError::Setting(format!(
                "{} and {} are both set; use one kind of credentials",
                bearer.name, other.name
            )))
        }
        (None, Some(user), None) => {
            return Err(ConfigError::Setting(format!(
                "{} needs TARGET_BASIC_AUTH_PASSWORD_FILE (or --target-basic-auth-password-file): \
                 the file that holds the password",
                user.name
            )))
        }
        (None, None, Some(password)) => {
            return Err(ConfigError::Setting(format!(
                "{} needs TARGET_BASIC_AUTH_USER (or --target-basic-auth-user): the user name",
                password.name
            )))
        }
        (None, Some(user), Some(password)) => {
            if user.value.contains(':') {
                return Err(
                    user.invalid("has a colon, which basic auth does not allow in a user name")
                );
            }
            if user.value.chars().any(char::is_control) {
                return Err(user.invalid("has a control character; a user name is one line"));
            }
            let auth = Auth::Basic {
                user: user.value,
                password_file: PathBuf::from(&password.value),
            };
            files::read_credentials(&auth, &password.name).map_err(ConfigError::File)?;
            auth
        }
    };
    Ok(Some(auth))
}

/// Loads the CA certificates for an https:// target (nothing for an http:// one): TARGET_CA_FILE
/// (a PEM file, or `builtin`) or the system's (`tls.rs`). A setting that cannot be used names
/// itself: TARGET_CA_FILE, or the SSL_CERT_FILE or SSL_CERT_DIR it came from.
fn parse_trust(
    ca_file: Option<Raw>,
    target: &Target,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Trust, ConfigError> {
    if let Some(raw) = &ca_file {
        let name = &raw.name;
        if !cfg!(feature = "https") {
            return Err(ConfigError::Setting(format!(
                "{name}: this build has no HTTPS support; build with --features https"
            )));
        }
        if !target.https {
            return Err(ConfigError::Setting(format!(
                "{name}: only used for an https:// target, and the target is {target}; \
                 use an https:// TARGET_URL or remove {name}"
            )));
        }
    }
    if !target.https {
        return Ok(Trust::unused());
    }
    let setting = match &ca_file {
        Some(raw) if raw.value == "builtin" => CaSetting::Builtin,
        Some(raw) => CaSetting::File(PathBuf::from(&raw.value)),
        None => CaSetting::System,
    };
    tls::load(&setting, env).map_err(|e| {
        let name = match (e.variable(), &ca_file) {
            (Some(variable), _) => variable,
            (None, Some(raw)) => raw.name.as_str(),
            (None, None) => "TARGET_CA_FILE",
        };
        ConfigError::Setting(format!("{name}: {e}"))
    })
}

/// Checks TARGET_HOST: a host alone, without port, scheme or path, each refused with the
/// setting that takes it.
fn parse_host(raw: &Raw) -> Result<String, ConfigError> {
    target::host(&raw.value).map_err(|e| ConfigError::Invalid {
        setting: raw.name.clone(),
        value: target::redact(&raw.value).into_owned(),
        fix: String::from(match e {
            HostError::Url => "is a URL, not a host; use TARGET_URL for a whole URL",
            HostError::Port => "has a port in it; put the port in TARGET_PORT",
            HostError::Path => {
                "has a path in it; put the path in TARGET_METRICS, or use TARGET_URL for a whole URL"
            }
            HostError::Invalid => {
                "is not a host name or IP address (an IPv6 address goes bare or in brackets: \
                 ::1 or [::1])"
            }
        }),
    })
}

/// The request settings beyond the URL, for the start-up line and `--check-config`: (label,
/// description) pairs, secrets and header values left out.
pub fn request_settings(request: &RequestSettings) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !request.headers.is_empty() {
        let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
        out.push((
            "headers",
            format!("{} (values not shown)", names.join(", ")),
        ));
    }
    if let Some(auth) = &request.auth {
        out.push(("credentials", auth.to_string()));
    }
    if let Some(trust) = request.trust.describe() {
        out.push(("CA", trust));
    }
    out
}

/// Where `--healthcheck` finds the exporter: LISTEN_ADDRESS, or loopback when the exporter
/// listens on all interfaces, at EXPORTER_PORT (which must be a port, not 0).
fn healthcheck_address(listen: Option<Raw>, port: Option<Raw>) -> Result<SocketAddr, ConfigError> {
    let ip = match listen.as_ref().map(parse_ip).transpose()? {
        Some(IpAddr::V6(ip)) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Some(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let port = match port {
        Some(raw) => parse_port(&raw, 1).map_err(|_| {
            raw.invalid("is not a port number (1-65535); --healthcheck needs the port the exporter listens on")
        })?,
        None => 9877,
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_ip(raw: &Raw) -> Result<IpAddr, ConfigError> {
    raw.value
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| raw.invalid("is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)"))
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

#[cfg(test)]
mod tests;
