//! Signals: SIGHUP reads the files again, SIGTERM and SIGINT stop the exporter gracefully.
//!
//! Owns the one use of `libc` in the exporter, and the classic pattern that needs no
//! async-signal-safe code: [`block`] blocks the three signals in the calling thread before any
//! other thread starts (threads inherit the mask, so no thread is ever interrupted by them),
//! and one thread started by [`handle`] takes them one at a time with `sigwait` and acts like
//! any other code. A signal sent before that thread waits stays pending until it does.
//! Knows what each signal does (`Files::reload`, `http::Control::stop`, exit 0), not how.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::files::Files;
use crate::http::Control;
use crate::log;

/// How long SIGTERM and SIGINT wait for the responses in flight before the process exits.
/// A scrape is a few milliseconds; a client reading a large body slowly gets this long.
pub const GRACE: Duration = Duration::from_secs(1);

/// The signals this module takes, blocked in the thread that called [`block`] and in every
/// thread started after it.
pub struct Blocked(libc::sigset_t);

/// Blocks SIGHUP, SIGTERM and SIGINT in the calling thread. Call it before any thread starts,
/// so that every thread inherits the mask and the signals wait for [`handle`]'s thread.
pub fn block() -> io::Result<Blocked> {
    // SAFETY: the set is initialised by sigemptyset before use; the calls only read and
    // write that set and the calling thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
            libc::sigaddset(&mut set, signal);
        }
        let error = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if error != 0 {
            return Err(io::Error::from_raw_os_error(error));
        }
        Ok(Blocked(set))
    }
}

impl Blocked {
    /// Waits for the next of the blocked signals and returns it.
    fn wait(&self) -> libc::c_int {
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `self.0` is an initialised set; `signal` is a valid place to write.
            let error = unsafe { libc::sigwait(&self.0, &mut signal) };
            if error == 0 {
                return signal;
            }
        }
    }
}

/// Starts the thread that takes the signals: SIGHUP reads every file of `files` again now
/// (one log line per file); SIGTERM and SIGINT stop `server` (closing idle connections, finishing
/// the responses in flight for at most [`GRACE`]) and end the process with status 0.
pub fn handle(blocked: Blocked, files: Arc<Files>, server: Control) -> io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match blocked.wait() {
                libc::SIGHUP => {
                    files.reload("SIGHUP");
                }
                signal => {
                    let name = if signal == libc::SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    log::info!(
                        "{name}: stopping; finishing the responses in flight (at most {:?})",
                        GRACE
                    );
                    let unfinished = server.stop(GRACE);
                    if unfinished > 0 {
                        log::warn!(
                            "{name}: {unfinished} responses still in flight after {GRACE:?}; \
                             exiting without them"
                        );
                    }
                    std::process::exit(0);
                }
            }
        })
        .map(|_| ())
}
