//! The modules of `/probe`, as the config file declares them (`"modules"` and `"probe"` beside
//! `"metrics"`): [`parse`] checks every field and loads what a module names (its mapping, its
//! credentials once, its CA certificates), so that `--check-config`, start-up and reloads
//! agree. Every error names the module, the field and the fix; `files.rs` adds the file name.
//! Knows nothing about HTTP serving or how a probe runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::allow::Allow;
use crate::client;
use crate::files::{self, Auth};
use crate::http;
use crate::mapping::{self, Mapping};
use crate::target;
use crate::tls::{self, CaSetting, Trust};

/// What a module's probe does: the mapping and the request settings of `TARGET_*`, for every
/// target its `allow` permits.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub name: String,
    pub mapping: Mapping,
    /// Where the mapping comes from, for `--check-config`: its file, or `inline`.
    pub mapping_source: String,
    /// Path and query requested when the target is not a URL; default `/`.
    pub path: String,
    pub allow: Allow,
    pub headers: Vec<(String, String)>,
    pub auth: Option<Auth>,
    pub trust: Trust,
    /// Limit of one probe's fetch; default 10 s.
    pub timeout: Duration,
    pub max_bytes: usize,
    /// Time from one fetch of a target to the next; the result is served in between.
    pub min_interval: Duration,
}

/// Every module of the config file, by name, and the cap on fetches in flight.
#[derive(Clone, Debug, PartialEq)]
pub struct Modules {
    /// Sorted by name.
    pub list: Vec<Module>,
    /// Fetches in flight at most, all modules together (`"probe": {"max_in_flight": N}`).
    pub max_in_flight: usize,
}

/// Fetches in flight at most by default.
pub const MAX_IN_FLIGHT: usize = 32;

impl Default for Modules {
    fn default() -> Modules {
        Modules {
            list: Vec::new(),
            max_in_flight: MAX_IN_FLIGHT,
        }
    }
}

const FIELDS: &str = "mapping, path, allow, headers, bearer_token_file, basic_auth_user, \
                      basic_auth_password_file, ca_file, timeout_seconds, max_bytes, \
                      min_interval_seconds";

/// The modules of the config file (its JSON value `root`, already a valid mapping file);
/// relative paths are taken from `dir`, the config file's directory.
pub fn parse(root: &Value, dir: &Path) -> Result<Arc<Modules>, String> {
    let mut modules = Modules::default();
    if let Some(probe) = root.get("probe") {
        let max = probe
            .as_object()
            .filter(|o| o.keys().all(|k| k == "max_in_flight"))
            .and_then(|o| o.get("max_in_flight")?.as_u64())
            .filter(|n| (1..=1024).contains(n));
        let Some(max) = max else {
            return Err(r#""probe" must be {"max_in_flight": N} with N from 1 to 1024"#.into());
        };
        modules.max_in_flight = max as usize;
    }
    let Some(declared) = root.get("modules") else {
        return Ok(Arc::new(modules));
    };
    let Some(declared) = declared.as_object().filter(|m| !m.is_empty()) else {
        return Err(r#""modules" must be an object of modules by name: {"name": {...}}"#.into());
    };
    for (name, value) in declared {
        let module = parse_module(name, value, dir).map_err(|e| format!("module {name:?}: {e}"))?;
        modules.list.push(module);
    }
    Ok(Arc::new(modules))
}

fn parse_module(name: &str, value: &Value, dir: &Path) -> Result<Module, String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err("a module name is letters, digits, '_', '-' and '.'; rename it".into());
    }
    let Some(obj) = value.as_object() else {
        return Err(r#"must be an object: {"mapping": ..., "allow": [...]}"#.into());
    };
    if let Some(key) = obj.keys().find(|k| !FIELDS.split(", ").any(|f| f == *k)) {
        return Err(format!("unknown field {key:?} (fields are: {FIELDS})"));
    }
    let string = |field: &str| -> Result<Option<&str>, String> {
        match obj.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{field:?} must be a string")),
        }
    };
    let file = |field: &str| Ok::<_, String>(string(field)?.map(|p| dir.join(p)));
    let (mapping, mapping_source) = match obj.get("mapping") {
        Some(Value::String(p)) => {
            let path = dir.join(p);
            let text = files::read_file(&path, files::MAX_MAPPING_BYTES)
                .map_err(|e| format!("\"mapping\": cannot read {}: {e}", path.display()))?;
            let text = String::from_utf8_lossy(&text);
            let mapping = mapping::parse(&text)
                .map_err(|e| format!("\"mapping\": {}: {e}", path.display()))?;
            (mapping, path.display().to_string())
        }
        Some(inline @ Value::Object(_)) => (
            mapping::parse_value(inline).map_err(|e| format!("\"mapping\": {e}"))?,
            "inline".into(),
        ),
        _ => {
            return Err(
                r#""mapping" is missing: a mapping file's path, or {"metrics": [...]}"#.into(),
            )
        }
    };
    if mapping.metrics.is_empty() {
        return Err(r#""mapping" has no metrics: add them to its "metrics""#.into());
    }
    let path = match string("path")? {
        Some(p) => target::path(p).map_err(|e| format!("\"path\": {e}"))?,
        None => "/".into(),
    };
    let entries: Option<Vec<&str>> = match obj.get("allow") {
        Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
        _ => None,
    };
    let Some(entries) = entries else {
        return Err(r#""allow" must be a list of the targets the module may probe: ["10.0.0.0/8", "plug.lan"]"#.into());
    };
    let allow = Allow::parse(&entries).map_err(|e| format!("\"allow\": {e}"))?;
    let headers = parse_headers(obj.get("headers"))?;
    let auth = match (
        file("bearer_token_file")?,
        string("basic_auth_user")?,
        file("basic_auth_password_file")?,
    ) {
        (None, None, None) => None,
        (Some(token_file), None, None) => Some(Auth::Bearer { token_file }),
        (None, Some(user), Some(password_file)) if !user.contains(':') => Some(Auth::Basic {
            user: user.into(),
            password_file,
        }),
        _ => return Err("credentials are \"bearer_token_file\", or \"basic_auth_user\" (no colon in it) with \"basic_auth_password_file\"; give one kind".into()),
    };
    if let Some(auth) = &auth {
        if headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            return Err(
                "the header \"Authorization\" conflicts with the credentials; remove one of them"
                    .into(),
            );
        }
        files::read_credentials(auth, "credentials").map_err(|e| e.to_string())?;
    }
    let trust = match file("ca_file")? {
        Some(_) if !cfg!(feature = "https") => {
            return Err(
                "\"ca_file\": this build has no HTTPS support; build with --features https".into(),
            )
        }
        Some(path) => tls::load(&CaSetting::File(path), &|name| std::env::var(name).ok())
            .map_err(|e| format!("\"ca_file\": {e}"))?,
        None => tls::load(&CaSetting::System, &|name| std::env::var(name).ok())
            .unwrap_or_else(|_| Trust::unused()),
    };
    let number = |field: &str, min: f64, max: f64, default: f64| match obj.get(field) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("{field:?} must be a number from {min} to {max}")),
    };
    Ok(Module {
        name: name.into(),
        mapping,
        mapping_source,
        path,
        allow,
        headers,
        auth,
        trust,
        timeout: Duration::from_secs_f64(number("timeout_seconds", 0.001, 86400.0, 10.0)?),
        max_bytes: number("max_bytes", 1024.0, 1e15, 8388608.0)? as usize,
        min_interval: Duration::from_secs_f64(number("min_interval_seconds", 0.0, 86400.0, 0.0)?),
    })
}

/// `"headers": {"Name": "value"}`, checked as TARGET_HEADERS is; the messages never show a
/// value.
fn parse_headers(value: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let empty = Map::new();
    let obj = match value {
        None => &empty,
        Some(Value::Object(obj)) => obj,
        Some(_) => return Err(r#""headers" must be an object: {"X-Api-Key": "..."}"#.into()),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in obj {
        let lower = name.to_ascii_lowercase();
        let problem = match value.as_str() {
            _ if !http::is_token(name) => {
                "is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
            }
            _ if client::MANAGED_HEADERS.contains(&lower.as_str()) => {
                "is set by the exporter; remove it"
            }
            _ if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) => {
                "is given twice; give it once"
            }
            None => "must have a string value",
            Some(v) if v.chars().any(|c| c.is_control() && c != '\t') => {
                "has a line break or another control character in its value; a value is one line"
            }
            Some(v) => {
                headers.push((name.clone(), v.trim().into()));
                continue;
            }
        };
        return Err(format!("\"headers\": {name:?} {problem}"));
    }
    Ok(headers)
}

/// `--check-config`'s line for a module.
pub fn describe(module: &Module) -> String {
    let mut out = format!(
        "{}: mapping {} ({} metrics), path {}, allow {} entries, timeout {:?}, at most {} bytes",
        module.name,
        module.mapping_source,
        module.mapping.metrics.len(),
        target::redact(&module.path),
        module.allow.len(),
        module.timeout,
        module.max_bytes
    );
    if !module.min_interval.is_zero() {
        out += &format!(", min interval {:?}", module.min_interval);
    }
    if !module.headers.is_empty() {
        let names: Vec<&str> = module.headers.iter().map(|(n, _)| n.as_str()).collect();
        out += &format!(", headers {} (values not shown)", names.join(", "));
    }
    if let Some(auth) = &module.auth {
        out += &format!(", {auth}");
    }
    out
}
