//! status-exporter: polls a JSON status page and serves its values as Prometheus metrics.
//!
//! `main` maps the outcome of [`run`] to an exit code; `run` wires the parts of the library
//! together: set the process-wide state (the signal mask, before any thread starts), start the
//! demo target, bind the port, start the poller and signal threads, serve. See ARCHITECTURE.md.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use status_exporter::config::{self, Command, Config};
use status_exporter::files::Files;
use status_exporter::target::Target;
use status_exporter::{commands, demo, http, log, poll, probe, server, signals, snapshot};

fn main() -> ExitCode {
    let command = config::parse(std::env::args_os().skip(1).collect(), |name| {
        std::env::var(name).ok()
    });
    let result = match command {
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
        Ok(Command::Help) => {
            print!("{}", config::HELP);
            Ok(())
        }
        Ok(Command::Version) => {
            println!("{}", config::version());
            Ok(())
        }
        Ok(Command::Healthcheck(addr)) => {
            commands::healthcheck(addr).map_err(StartError::Healthcheck)
        }
        Ok(Command::CheckConfig(config)) => {
            print!("{}", commands::summary(&config));
            Ok(())
        }
        Ok(Command::Render(config, file)) => {
            commands::render(&config, &file).map_err(StartError::Render)
        }
        Ok(Command::Serve(config)) => run(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the exporter could not start (exit 1).
#[derive(Debug)]
enum StartError {
    Bind(SocketAddr, std::io::Error),
    Demo(std::io::Error),
    Thread(std::io::Error),
    Signals(std::io::Error),
    /// `--render` could not read or parse its document.
    Render(String),
    /// `--healthcheck` got no 200 from the exporter.
    Healthcheck(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind(addr, e) if e.kind() == std::io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {addr}: the port is already in use; stop the other process or set EXPORTER_PORT"
            ),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e} (check LISTEN_ADDRESS and EXPORTER_PORT)"),
            StartError::Demo(e) => write!(f, "cannot start the demo target: {e}"),
            StartError::Thread(e) => write!(f, "cannot start the poller thread: {e}"),
            StartError::Signals(e) => write!(f, "cannot set up the signals: {e}"),
            StartError::Render(e) | StartError::Healthcheck(e) => f.write_str(e),
        }
    }
}

fn run(mut config: Config) -> Result<(), StartError> {
    let signals = set_process_state()?;
    if config.demo {
        let addr = demo::start().map_err(StartError::Demo)?;
        config.poll.request.target = Target {
            https: false,
            host: addr.ip().to_string(),
            port: addr.port(),
            path: "/status".into(),
        };
    }
    let listener = bind(config.serve.listen_address, config.serve.port)?;
    let local = listener.local_addr().map_err(|e| {
        StartError::Bind(
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), config.serve.port),
            e,
        )
    })?;
    let files = Arc::new(Files::open(
        config.poll.mapping_file.clone().map(|path| {
            let modules = Arc::clone(&config.poll.modules);
            (path, (config.poll.mapping.clone(), modules))
        }),
        config.poll.request.auth.clone(),
        config.serve.web_auth_file.clone(),
    ));
    let poller = poll::Poller::new(&config.poll, Arc::clone(&files));
    let shared = snapshot::share(poller.snapshot(&[]));
    let for_poller = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || poll::run(poller, for_poller))
        .map_err(StartError::Thread)?;
    let control = http::Control::default();
    signals::handle(signals, Arc::clone(&files), control.clone()).map_err(StartError::Signals)?;
    log::info!("{}", commands::startup_line(&config, local));
    let probes = probe::Probes::new(config.poll.max_series);
    server::serve(listener, shared, files, probes, &config.serve, control)
}

/// Sets what the whole process shares, before any thread starts: the signals that the signal
/// thread takes are blocked (threads inherit the mask, so none is interrupted by them).
fn set_process_state() -> Result<signals::Blocked, StartError> {
    signals::block().map_err(StartError::Signals)
}

/// Binds the given address, or all interfaces: IPv6 and IPv4 where the host has IPv6,
/// IPv4 alone where it has not.
fn bind(address: Option<IpAddr>, port: u16) -> Result<TcpListener, StartError> {
    let try_bind = |ip: IpAddr| {
        let addr = SocketAddr::new(ip, port);
        TcpListener::bind(addr).map_err(|e| StartError::Bind(addr, e))
    };
    match address {
        Some(ip) => try_bind(ip),
        None => match try_bind(Ipv6Addr::UNSPECIFIED.into()) {
            Err(StartError::Bind(_, e)) if e.kind() != std::io::ErrorKind::AddrInUse => {
                try_bind(Ipv4Addr::UNSPECIFIED.into())
            }
            other => other,
        },
    }
}
