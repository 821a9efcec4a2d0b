//! The embedded demo target for `--demo`: the Python tutorial's application, a `/status` JSON
//! document whose values change over time, served on a free loopback port.
//!
//! Knows the tutorial's document shape and nothing about the exporter's mapping or metrics.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::{self, Limits, Response};
use crate::rng::Rng;

/// Starts the demo target on 127.0.0.1 on a free port, in its own thread, and returns its
/// address.
pub fn start() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let started = Instant::now();
    let limits = Limits {
        max_connections: 4,
        ..Limits::default()
    };
    std::thread::Builder::new()
        .name("demo-target".into())
        .spawn(move || {
            http::serve(
                listener,
                limits,
                http::Control::default(),
                move |request| match request.path {
                    "/status" => Response {
                        status: 200,
                        headers: vec![("Content-Type", "application/json".into())],
                        body: document(started.elapsed(), unix_seconds())
                            .into_bytes()
                            .into(),
                    },
                    _ => Response {
                        status: 404,
                        headers: Vec::new(),
                        body: b"not found\n".to_vec().into(),
                    },
                },
            )
        })?;
    Ok(addr)
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The status document `uptime` into the demo, at wall-clock second `now`: requests vary from
/// second to second, and the application reports itself unhealthy one minute in ten.
fn document(uptime: Duration, now: u64) -> String {
    // The first splitmix64 value seeded with the second: repeatable pseudo-random values.
    let x = Rng::new(now).next();
    let current = x % 20;
    let pending = (x >> 8) % 5;
    let health = if (now / 60) % 10 == 9 {
        "unhealthy"
    } else {
        "healthy"
    };
    format!(
        r#"{{"current_requests": {current}, "pending_requests": {pending}, "total_uptime": {:.6}, "health": "{health}"}}"#,
        uptime.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_the_tutorial_shape() {
        let doc: serde_json::Value =
            serde_json::from_str(&document(Duration::from_millis(104_914), 540)).unwrap();
        assert_eq!(doc["total_uptime"].as_f64(), Some(104.914));
        assert_eq!(doc["health"], "unhealthy");
        assert!(doc["current_requests"].as_u64().is_some_and(|n| n < 20));
        assert!(doc["pending_requests"].as_u64().is_some_and(|n| n < 5));
        let healthy: serde_json::Value =
            serde_json::from_str(&document(Duration::ZERO, 0)).unwrap();
        assert_eq!(healthy["health"], "healthy");
    }
}
