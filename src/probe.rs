//! `/probe?target=…&module=…`: many targets from one exporter, fetched at scrape time on the
//! connection's thread (the multi-target pattern of blackbox_exporter).
//!
//! Owns [`Probes`], the state the probes share: one fetch in flight per (module, target) that
//! concurrent probes join (single flight), the result kept for the module's
//! `min_interval_seconds` and served with its age, the cap on fetches in flight, the counters of
//! the exporter's own `/metrics` (`status_exporter_probes_total`,
//! `status_exporter_probe_fetches_in_flight`), and the refusals, logged once per target. A
//! module's credentials are read at every fetch. [`Probes::probe`] turns a query into a
//! result or a 400/403 with its text; the modules' format is `probe/module.rs`'s, the allowlist
//! `probe/allow.rs`'s, the fetch `client.rs`'s (which asks the allowlist about every address
//! at every connection), content negotiation and gzip `server.rs`'s.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::client::{self, Failure, Reason};
use crate::exposition::{Family, Kind};
use crate::files;
use crate::log;
use crate::mapping::{self, ApplyError};
use crate::snapshot::Rendition;
use crate::target::Target;

mod allow;
mod module;

pub use allow::Allow;
pub use module::{describe, parse, Module, Modules, MAX_IN_FLIGHT};

/// Entries of fetches kept at most: past it, the expired results are dropped, and the cached
/// ones (still in their `min_interval_seconds`) past half of it; fetches in flight and results
/// not yet taken by the probes that joined them stay.
const MAX_KEPT: usize = 256;
/// The `result` label of `status_exporter_probes_total`, by index.
const RESULTS: [&str; 4] = ["success", "failure", "refused", "cached"];
const SUCCESS: usize = 0;
const FAILURE: usize = 1;
const REFUSED: usize = 2;
const CACHED: usize = 3;
/// Targets whose refusal was logged, remembered at most (then logged again).
const MAX_REFUSED: usize = 1024;

/// What a probe answers with: the rendered result and its age.
pub struct Served {
    pub result: Arc<Done>,
    /// Seconds since the fetch served began: 0 when this probe made it.
    pub age: f64,
}

/// A finished fetch (or a probe that could not fetch): the module's families (after a success)
/// and the probe's, in both formats.
pub struct Done {
    pub rendition: Rendition,
    started: Instant,
    /// Kept for this long after `started` (the module's `min_interval_seconds`).
    keep: Duration,
    /// An address the allowlist refused, if the fetch was refused.
    refused: Option<SocketAddr>,
    success: bool,
}

enum Flight {
    /// A fetch in flight, and how many probes wait for it.
    Running(usize),
    /// A finished fetch, and how many of the probes that waited for it have yet to take it.
    Done(Arc<Done>, usize),
}

#[derive(Default)]
struct Flights {
    /// By module and target (`module\nURL`): a few hundred at most, looked up in a list (a
    /// hash table of its own costs more bytes of the binary than it saves time).
    list: Vec<(String, Flight)>,
    in_flight: usize,
}

/// The state all probes share. See the module's documentation.
#[derive(Default)]
pub struct Probes {
    flights: Mutex<Flights>,
    finished: Condvar,
    /// `status_exporter_probes_total` by module and result.
    counts: Mutex<Vec<(String, [u64; 4])>>,
    /// The modules whose refusals were logged, and the targets logged.
    refused: Mutex<(Option<Arc<Modules>>, Vec<String>)>,
    /// The most series a probe may give (MAX_SERIES).
    pub max_series: usize,
}

/// A 400 or 403 with its plain-text body.
pub type Refusal = (u16, String);

fn bad(text: String) -> Refusal {
    (400, text + "\n")
}

impl Probes {
    pub fn new(max_series: usize) -> Probes {
        Probes {
            max_series,
            ..Probes::default()
        }
    }

    /// Runs the probe that `query` asks for with `modules`: from the shared fetch or the cache
    /// when there is one, else a fetch by the deadline (the module's timeout, shortened by
    /// `scrape_timeout`, the value of `X-Prometheus-Scrape-Timeout-Seconds`).
    pub fn probe(
        &self,
        modules: &Arc<Modules>,
        query: &str,
        scrape_timeout: Option<&str>,
    ) -> Result<Served, Refusal> {
        let (mut target, mut module) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key).unwrap_or_else(|| key.into());
            let slot = match key.as_str() {
                "target" => &mut target,
                "module" => &mut module,
                _ => {
                    return Err(bad(format!(
                        "unknown parameter {key:?}: /probe takes target and module"
                    )))
                }
            };
            let value = decode(value)
                .ok_or_else(|| bad(format!("parameter {key:?} is not percent-encoded UTF-8")))?;
            if slot.replace(value).is_some() {
                return Err(bad(format!(
                    "parameter {key:?} is given twice; give it once"
                )));
            }
        }
        let names = || {
            let names: Vec<&str> = modules.list.iter().map(|m| m.name.as_str()).collect();
            names.join(", ")
        };
        let module = match module {
            Some(name) => modules
                .list
                .iter()
                .find(|m| m.name == name)
                .ok_or_else(|| {
                    bad(format!(
                        "parameter \"module\": no module {name:?}; the modules are: {}",
                        names()
                    ))
                })?,
            None if modules.list.len() == 1 => &modules.list[0],
            None => {
                return Err(bad(format!(
                    "parameter \"module\" is missing: name one of the modules ({})",
                    names()
                )))
            }
        };
        let Some(target) = target.filter(|t| !t.is_empty()) else {
            return Err(bad(
                "parameter \"target\" is missing: /probe?target=HOST:PORT&module=NAME".into(),
            ));
        };
        let url = parse_target(&target, &module.path).ok_or_else(|| {
            bad(format!(
                "parameter \"target\": {target:?} is not host, host:port, [IPv6]:port or an \
                 http:// or https:// URL"
            ))
        })?;
        let mut timeout = module.timeout;
        if let Some(value) = scrape_timeout {
            let seconds = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| *s > 0.0 && s.is_finite());
            let Some(seconds) = seconds else {
                return Err(bad(format!(
                    "header X-Prometheus-Scrape-Timeout-Seconds: {value:?} is not a positive \
                     number of seconds"
                )));
            };
            let seconds = seconds.min(86400.0);
            timeout = timeout.min(Duration::from_secs_f64(seconds - (seconds / 10.0).min(0.5)));
        }
        // As logs print it: the values of query parameters named like secrets hidden.
        let target = url.to_string();
        if !module.allow.name(&url.host, url.port) {
            return Err(self.refuse(modules, module, &target, "not in its allow list"));
        }
        let deadline = Instant::now() + timeout;
        let (served, result) = self.run(module, &url, deadline, modules.max_in_flight);
        if let Some(address) = served.result.refused {
            let why = format!(
                "it resolves to {}, which its allow list does not hold",
                address.ip()
            );
            return Err(self.refuse(modules, module, &target, &why));
        }
        self.count(&module.name, result);
        Ok(served)
    }

    /// The result for `url`: joined, cached, or fetched now; and the result to count.
    fn run(&self, module: &Module, url: &Target, deadline: Instant, cap: usize) -> (Served, usize) {
        let key = format!(
            "{}\n{}{}:{}{}",
            module.name,
            url.scheme(),
            url.host,
            url.port,
            url.path
        );
        let find = |flights: &Flights| flights.list.iter().position(|(k, _)| *k == key);
        let mut flights = lock(&self.flights);
        let mut joined = false;
        loop {
            let at = find(&flights);
            match at.map(|at| &mut flights.list[at].1) {
                Some(Flight::Running(waiting)) => {
                    if !joined {
                        *waiting += 1;
                        joined = true;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        *waiting -= 1;
                        return (failed(Reason::Timeout.label()), FAILURE);
                    }
                    flights = self
                        .finished
                        .wait_timeout(flights, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                // Joined, within the min interval, or finished so recently that the probes
                // that waited for it have not taken it yet.
                Some(Flight::Done(done, waiting))
                    if joined || *waiting > 0 || done.started.elapsed() < done.keep =>
                {
                    let done = Arc::clone(done);
                    if joined {
                        *waiting -= 1;
                        if *waiting == 0 && done.started.elapsed() >= done.keep {
                            flights.list.swap_remove(at.expect("the flight was found"));
                        }
                    }
                    let age = done.started.elapsed().as_secs_f64();
                    return (Served { result: done, age }, CACHED);
                }
                _ => break,
            }
        }
        if flights.in_flight >= cap {
            return (failed("busy"), FAILURE);
        }
        flights.in_flight += 1;
        match find(&flights) {
            Some(at) => flights.list[at].1 = Flight::Running(0),
            None => flights.list.push((key.clone(), Flight::Running(0))),
        }
        if flights.list.len() > MAX_KEPT {
            // The expired results go, and the cached ones past half the limit.
            let mut cached = 0;
            flights.list.retain(|(_, f)| match f {
                Flight::Running(_) => true,
                Flight::Done(done, waiting) => {
                    let fresh = done.started.elapsed() < done.keep;
                    cached += usize::from(fresh);
                    *waiting > 0 || (fresh && cached <= MAX_KEPT / 2)
                }
            });
        }
        drop(flights);
        let done = Arc::new(self.fetch(module, url, deadline));
        let mut flights = lock(&self.flights);
        flights.in_flight -= 1;
        let waiting = match find(&flights).map(|at| flights.list.swap_remove(at).1) {
            Some(Flight::Running(n)) => n,
            _ => 0,
        };
        if waiting > 0 || !done.keep.is_zero() {
            flights
                .list
                .push((key, Flight::Done(Arc::clone(&done), waiting)));
        }
        drop(flights);
        self.finished.notify_all();
        let result = if done.success { SUCCESS } else { FAILURE };
        (
            Served {
                result: done,
                age: 0.0,
            },
            result,
        )
    }

    /// Fetches `url` with `module`'s settings and maps the document.
    fn fetch(&self, module: &Module, url: &Target, deadline: Instant) -> Done {
        let started = Instant::now();
        // Read at every fetch (a small file), so that a rotated secret is used at once; a file
        // that cannot be read sends none (`--check-config` and reloads refuse it).
        let authorization = module
            .auth
            .as_ref()
            .and_then(|auth| files::read_credentials(auth, "credentials").ok());
        let request = client::Request {
            target: url,
            headers: &module.headers,
            authorization: authorization.as_deref(),
            trust: &module.trust,
            max_body_bytes: module.max_bytes,
            deadline,
        };
        let refused = Cell::new(None);
        let allow = |address: SocketAddr| {
            if module.allow.address(&url.host, address) {
                return Ok(());
            }
            refused.set(Some(address));
            Err(Failure::new(
                Reason::Connect,
                "refused by the module's allow list",
            ))
        };
        let result = client::fetch(&request, &allow, Vec::new()).and_then(|body| {
            mapping::apply(&module.mapping, &body, self.max_series).map_err(|e| match e {
                ApplyError::InvalidJson(e) => Failure::new(Reason::InvalidJson, e),
                too_many => Failure::new(Reason::TooManySeries, too_many.to_string()),
            })
        });
        let seconds = started.elapsed().as_secs_f64();
        let (app, reason) = match &result {
            Ok(applied) => (&applied.families[..], None),
            Err(failure) => (&[][..], Some(failure.reason.label())),
        };
        Done {
            rendition: Rendition::render(&[app, &families(seconds, reason)], true),
            started,
            keep: module.min_interval,
            refused: refused.get(),
            success: result.is_ok(),
        }
    }

    /// Counts and logs (once per target) a refusal, and returns the 403.
    fn refuse(&self, modules: &Arc<Modules>, module: &Module, target: &str, why: &str) -> Refusal {
        self.count(&module.name, REFUSED);
        let mut refused = lock(&self.refused);
        if !refused.0.as_ref().is_some_and(|m| Arc::ptr_eq(m, modules))
            || refused.1.len() >= MAX_REFUSED
        {
            *refused = (Some(Arc::clone(modules)), Vec::new());
        }
        let key = format!("{}\n{target}", module.name);
        if !refused.1.contains(&key) {
            refused.1.push(key);
            log::warn!(
                "probe: target {:?} refused by module {:?}: {}; add it to the module's \"allow\" to probe it",
                log::escape(target),
                module.name,
                why
            );
        }
        (
            403,
            format!(
                "forbidden: module {:?} may not probe {target:?}: {why}\n",
                module.name
            ),
        )
    }

    fn count(&self, module: &str, result: usize) {
        let mut counts = lock(&self.counts);
        match counts.iter_mut().find(|(name, _)| name == module) {
            Some((_, count)) => count[result] += 1,
            None => {
                let mut count = [0; 4];
                count[result] = 1;
                counts.push((module.into(), count));
            }
        }
    }

    /// The exporter's own families about probes, for `/metrics`: every module of `modules` with
    /// every result (0 until it happens), and the fetches in flight.
    pub fn families(&self, modules: &Modules) -> Vec<Family> {
        let mut total = Family::new(
            "status_exporter_probes_total",
            "Probes (/probe) by module and result: success, failure, refused, or cached (served from the min_interval_seconds cache or another probe's fetch).",
            Kind::Counter,
        );
        let counts = lock(&self.counts);
        for module in &modules.list {
            let count = counts.iter().find(|(name, _)| *name == module.name);
            for (i, result) in RESULTS.iter().enumerate() {
                let count = count.map_or(0, |(_, c)| c[i]);
                total.push(
                    &[("module", &module.name), ("result", result)],
                    count as f64,
                );
            }
        }
        let in_flight = lock(&self.flights).in_flight;
        vec![
            total,
            Family::single(
                "status_exporter_probe_fetches_in_flight",
                "Fetches of probes in flight.",
                Kind::Gauge,
                in_flight as f64,
            ),
        ]
    }
}

/// The probe's own families but the age: success, duration and the failure's reason (`None`
/// after a success).
fn families(seconds: f64, reason: Option<&str>) -> [Family; 3] {
    let mut failure = Family::new(
        "status_exporter_probe_failure",
        "1 for the reason the probe failed (busy: too many fetches in flight), 0 for the others.",
        Kind::Gauge,
    );
    for label in Reason::ALL.iter().map(|r| r.label()).chain(["busy"]) {
        failure.push(
            &[("reason", label)],
            f64::from(u8::from(reason == Some(label))),
        );
    }
    [
        Family::single(
            "status_exporter_probe_success",
            "1 if the probe fetched and mapped the target's document, 0 otherwise.",
            Kind::Gauge,
            f64::from(u8::from(reason.is_none())),
        ),
        Family::single(
            "status_exporter_probe_duration_seconds",
            "Duration of the fetch and mapping of the result served, seconds.",
            Kind::Gauge,
            seconds,
        ),
        failure,
    ]
}

/// A result without a fetch: failed for `reason`.
fn failed(reason: &str) -> Served {
    let done = Done {
        rendition: Rendition::render(&[&families(0.0, Some(reason))], false),
        started: Instant::now(),
        keep: Duration::ZERO,
        refused: None,
        success: false,
    };
    Served {
        result: Arc::new(done),
        age: 0.0,
    }
}

/// The age family that ends a probe's answer.
pub fn age(seconds: f64) -> [Family; 1] {
    [Family::single(
        "status_exporter_probe_age_seconds",
        "Age of the result served: 0 when fetched for this scrape, more when served from the min_interval_seconds cache or by a fetch another scrape started.",
        Kind::Gauge,
        seconds,
    )]
}

/// The target of a query: `host`, `host:port`, `[v6]:port`, or an http:// or https:// URL
/// (whose path replaces the module's `path`).
fn parse_target(target: &str, path: &str) -> Option<Target> {
    if target.contains("://") {
        return Target::parse(target).ok();
    }
    if target.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    Target::parse(&format!("http://{target}{path}")).ok()
}

/// Percent-decodes a query value (`+` is a space); None for a bad escape or bytes that are not
/// UTF-8.
fn decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'%' => {
                let hex = |b: Option<u8>| char::from(b?).to_digit(16);
                (hex(bytes.next())? * 16 + hex(bytes.next())?) as u8
            }
            b'+' => b' ',
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
