//! The service files for hosts without systemd (`scripts/init/`), run as far as this machine
//! allows: each passes `shellcheck` and parses in BusyBox `sh`, and each starts the exporter
//! with the settings of its configuration file (target, port, address, interval, request
//! headers), as nobody, has it read its files again on `reload` (SIGHUP), and stops it.
//!
//! - BusyBox init (`busybox.init` with `status-exporter.conf` as /etc/default): run by BusyBox
//!   `sh` with nothing but BusyBox's applets on PATH.
//! - OpenRC (`openrc.init` with `status-exporter.conf` as conf.d): Debian's real `openrc-run`
//!   and `supervise-daemon`, outside an OpenRC boot (`/run/openrc/softlevel` made for the test
//!   and removed after), with BusyBox as `/bin/sh` (bind-mounted in a mount namespace of its
//!   own), which is the shell Alpine runs OpenRC with.
//! - OpenWrt (`openwrt.init` with `openwrt.config` in UCI): unmodified, under BusyBox `sh`,
//!   with test stand-ins for OpenWrt's rc.common, functions.sh and procd.sh (`tests/external/
//!   openwrt/`, whose README says what they do): UCI options become the command line, procd's
//!   parameters are recorded and checked, and the instance is started with start-stop-daemon.
//!   procd itself (respawn) does not exist outside OpenWrt.
//!
//! Needs root (to run the exporter as nobody, and for the mount namespace), and the Debian
//! packages busybox-static, shellcheck, openrc and util-linux; scripts/test.sh installs them.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{
    binary, free_ports, repo, run, temp_dir, tool, try_get, Reply, Target, TUTORIAL_DOC,
};

/// Limit for a service to come up, poll its target, or go down.
const PATIENCE: Duration = Duration::from_secs(20);

/// The API-key header every test configures (with a second one, `X-Other: it's`, whose value
/// has a quote). The key must never be on a command line.
const SECRET: &str = "X-Api-Key: SECRET-KEY";

#[test]
fn init_scripts_pass_shellcheck_and_parse_in_busybox_sh() {
    let shellcheck = tool("shellcheck", "shellcheck");
    let busybox = tool("busybox", "busybox-static");
    let scripts: Vec<PathBuf> = [
        "scripts/init/busybox.init",
        "scripts/init/openrc.init",
        "scripts/init/openwrt.init",
        "scripts/init/status-exporter.conf",
        "tests/external/openwrt/rc.common",
        "tests/external/openwrt/functions.sh",
        "tests/external/openwrt/procd.sh",
    ]
    .iter()
    .map(|p| repo().join(p))
    .collect();
    // Each file says its shell (`# shellcheck shell=sh`) and the few checks it leaves out, why.
    let out = run(Command::new(&shellcheck).args(&scripts));
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for script in &scripts {
        let out = run(Command::new(&busybox).args(["sh", "-n"]).arg(script));
        assert!(
            out.status.success(),
            "busybox sh -n {}: {out:?}",
            script.display()
        );
    }
}

#[test]
fn busybox_script_starts_the_exporter_with_its_settings_and_stops_it() {
    let busybox = tool("busybox", "busybox-static");
    let root = temp_root("init-busybox");
    let applets = applets(&busybox, &root);
    let daemon = install_binary(&root, "usr/bin/status-exporter");
    let dir = root.display().to_string();
    let script = install_script(
        "scripts/init/busybox.init",
        &root.join("etc/init.d/S95status-exporter"),
        &[
            ("\nDAEMON=/usr/bin/", &format!("\nDAEMON={dir}/usr/bin/")),
            (
                "\nDEFAULTS=/etc/default/",
                &format!("\nDEFAULTS={dir}/etc/default/"),
            ),
            ("\nPIDFILE=/var/run/", &format!("\nPIDFILE={dir}/var/run/")),
            ("\nLOGFILE=/var/log/", &format!("\nLOGFILE={dir}/var/log/")),
        ],
    );
    for system_dir in ["var/run", "var/log"] {
        fs::create_dir_all(root.join(system_dir)).unwrap();
    }
    let (target, port) = (Target::start(Reply::Json(TUTORIAL_DOC.into())), free_port());
    write_settings(&root.join("etc/default/status-exporter"), &target, port);
    let pidfile = root.join("var/run/status-exporter.pid");
    let service = |action: &str| {
        let out = run(Command::new(&busybox)
            .arg("sh")
            .arg(&script)
            .arg(action)
            .env_clear()
            .env("PATH", &applets)
            .current_dir("/"));
        (out.status.code(), text(&out))
    };
    let _cleanup = OnDrop(|| kill_from(&pidfile));

    assert_eq!(
        service("start"),
        (Some(0), "Starting status-exporter: OK\n".into())
    );
    let pid = read_pid(&pidfile);
    check_serving(pid, port, &target, &daemon);
    let log = fs::read_to_string(root.join("var/log/status-exporter.log")).unwrap();
    assert!(
        log.starts_with("info: status-exporter ") && log.contains(&format!("127.0.0.1:{port}")),
        "{log}"
    );
    assert_eq!(
        service("start"),
        (
            Some(0),
            "Starting status-exporter: already running\n".into()
        )
    );
    assert_eq!(
        service("status"),
        (Some(0), format!("status-exporter is running (PID {pid})\n"))
    );
    assert_eq!(
        service("reload"),
        (Some(0), "Reloading status-exporter: OK\n".into())
    );
    check_reloaded(pid, &root.join("var/log/status-exporter.log"));

    assert_eq!(
        service("stop"),
        (Some(0), "Stopping status-exporter: OK\n".into())
    );
    check_stopped(pid, port);
    assert!(!pidfile.exists());
    assert_eq!(
        service("status"),
        (Some(3), "status-exporter is not running\n".into())
    );

    // A bad setting: the exporter's own message, exit status 2, nothing started.
    let settings = root.join("etc/default/status-exporter");
    let mut bad = fs::read_to_string(&settings).unwrap();
    bad += "export EXPORTER_PORT=abc\n";
    fs::write(&settings, bad).unwrap();
    let (code, output) = service("start");
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("error: EXPORTER_PORT: \"abc\" is not a port number")
            && output.contains("FAIL (bad settings"),
        "{output}"
    );
    assert!(!pidfile.exists());
}

#[test]
fn openrc_script_starts_the_exporter_with_its_settings_and_stops_it() {
    let openrc_run = tool("openrc-run", "openrc");
    let busybox = tool("busybox", "busybox-static");
    let unshare = tool("unshare", "util-linux");
    let root = temp_root("init-openrc");
    let daemon = install_binary(&root, "usr/local/bin/status-exporter");
    let dir = root.display().to_string();
    let script = install_script(
        "scripts/init/openrc.init",
        &root.join("etc/init.d/status-exporter"),
        &[
            (
                "\ncommand=/usr/local/bin/",
                &format!("\ncommand={dir}/usr/local/bin/"),
            ),
            ("\npidfile=\"/run/", &format!("\npidfile=\"{dir}/run/")),
            (
                "\noutput_log=\"/var/log/",
                &format!("\noutput_log=\"{dir}/var/log/"),
            ),
            (
                "\nerror_log=\"/var/log/",
                &format!("\nerror_log=\"{dir}/var/log/"),
            ),
        ],
    );
    for system_dir in ["run", "var/log"] {
        fs::create_dir_all(root.join(system_dir)).unwrap();
    }
    let (target, port) = (Target::start(Reply::Json(TUTORIAL_DOC.into())), free_port());
    // openrc-run reads conf.d/NAME beside the script's init.d.
    write_settings(&root.join("etc/conf.d/status-exporter"), &target, port);

    // Outside an OpenRC boot, openrc-run wants this file first (research-env: its first trap).
    let softlevel = Path::new("/run/openrc/softlevel");
    let made_softlevel = !softlevel.exists();
    if made_softlevel {
        fs::write(softlevel, "").expect("create /run/openrc/softlevel (needs root)");
    }
    // openrc-run (and the shell it runs the script in) with BusyBox as /bin/sh: bound over what
    // /bin/sh points to, in a mount namespace that ends with the command.
    let with_busybox_sh = |args: &[&std::ffi::OsStr]| {
        let out = run(Command::new(&unshare)
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" "$(readlink -f /bin/sh)" && shift && exec "$@""#)
            .arg("sh")
            .arg(&busybox)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir("/"));
        (out.status.code(), text(&out))
    };
    let (_, help) = with_busybox_sh(&["/bin/sh".as_ref(), "-c".as_ref(), "help".as_ref()]);
    assert!(
        help.starts_with("Built-in commands:"),
        "/bin/sh is not BusyBox's: {help}"
    );
    let service =
        |action: &str| with_busybox_sh(&[openrc_run.as_ref(), script.as_ref(), action.as_ref()]);
    let pidfile = root.join("run/status-exporter.pid");
    let _cleanup = OnDrop(|| {
        let _ = service("stop");
        let _ = service("zap");
        kill_from(&pidfile);
        if made_softlevel {
            let _ = fs::remove_file(softlevel);
        }
        // supervise-daemon leaves its control FIFO behind.
        let _ = fs::remove_file("/run/openrc/supervise-status-exporter.ctl");
    });
    service("zap");

    let (code, output) = service("start");
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("Starting status-exporter ... [ ok ]"),
        "{output}"
    );
    let (code, output) = service("status");
    assert_eq!((code, output.trim()), (Some(0), "* status: started"));
    // The PID file is supervise-daemon's; the exporter is its child.
    let supervisor = read_pid(&pidfile);
    let pid = wait_for(
        "the exporter under supervise-daemon",
        || children(supervisor).first().copied(),
        || format!("children of {supervisor}: none"),
    );
    check_serving(pid, port, &target, &daemon);
    let log = fs::read_to_string(root.join("var/log/status-exporter.log")).unwrap();
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{port}")),
        "{log}"
    );
    let (code, output) = service("reload");
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("Reloading status-exporter ... [ ok ]"),
        "{output}"
    );
    check_reloaded(pid, &root.join("var/log/status-exporter.log"));
    assert_eq!(children(supervisor), [pid]);

    let (code, output) = service("stop");
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("Stopping status-exporter ... [ ok ]"),
        "{output}"
    );
    check_stopped(pid, port);
    let (code, output) = service("status");
    assert_eq!((code, output.trim()), (Some(3), "* status: stopped"));

    // A bad setting: the exporter's own message, and the start fails.
    let settings = root.join("etc/conf.d/status-exporter");
    let mut bad = fs::read_to_string(&settings).unwrap();
    bad += "export EXPORTER_PORT=abc\n";
    fs::write(&settings, bad).unwrap();
    let (code, output) = service("start");
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("error: EXPORTER_PORT: \"abc\" is not a port number")
            && output.contains("ERROR: status-exporter failed to start"),
        "{output}"
    );
}

#[test]
fn openwrt_procd_script_starts_the_uci_settings_and_stops() {
    let busybox = tool("busybox", "busybox-static");
    let root = temp_root("init-openwrt");
    let applets = applets(&busybox, &root);
    let daemon = install_binary(&root, "usr/bin/status-exporter");
    let dir = root.display().to_string();
    let script = install_script(
        "scripts/init/openwrt.init",
        &root.join("etc/init.d/status-exporter"),
        &[("\nPROG=/usr/bin/", &format!("\nPROG={dir}/usr/bin/"))],
    );
    for (shim, dest) in [
        ("rc.common", "etc/rc.common"),
        ("functions.sh", "lib/functions.sh"),
        ("procd.sh", "lib/functions/procd.sh"),
    ] {
        let dest = root.join(dest);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(repo().join("tests/external/openwrt").join(shim), dest).unwrap();
    }
    let state = root.join("procd");
    fs::create_dir_all(&state).unwrap();

    // The shipped UCI file with the test's values, and a second exporter left disabled.
    let (target, port) = (Target::start(Reply::Json(TUTORIAL_DOC.into())), free_port());
    let url = target.url("/status");
    let config = edit(
        &fs::read_to_string(repo().join("scripts/init/openwrt.config")).unwrap(),
        &[
            ("option enabled '0'", "option enabled '1'"),
            (
                "option target_url 'http://127.0.0.1:8000/status'",
                &format!("option target_url '{url}'"),
            ),
            (
                "option polling_interval_seconds '5'",
                "option polling_interval_seconds '0.5'",
            ),
            (
                "option exporter_port '9877'",
                &format!("option exporter_port '{port}'"),
            ),
            (
                "#option listen_address '192.168.1.1'",
                "option listen_address '127.0.0.1'",
            ),
            (
                "#list target_header 'X-Api-Key: SECRET'",
                &format!("list target_header '{SECRET}'\n\tlist target_header 'X-Other: it'\\''s'"),
            ),
        ],
    )
        + "\nconfig status-exporter 'other'\n\toption enabled '0'\n\toption exporter_port '1'\n";
    fs::create_dir_all(root.join("etc/config")).unwrap();
    fs::write(root.join("etc/config/status-exporter"), config).unwrap();

    let service = |action: &str| {
        let out = run(Command::new(&busybox)
            .arg("sh")
            .arg(root.join("etc/rc.common"))
            .arg(&script)
            .arg(action)
            .env_clear()
            .env("PATH", &applets)
            .env("IPKG_INSTROOT", &root)
            .env("PROCD_STATE", &state)
            .current_dir("/"));
        (out.status.code(), text(&out))
    };
    let pidfile = state.join("main.pid");
    let _cleanup = OnDrop(|| kill_from(&pidfile));

    assert_eq!(service("enable"), (Some(0), String::new()));
    for link in ["S95status-exporter", "K10status-exporter"] {
        let link = root.join("etc/rc.d").join(link);
        assert_eq!(
            fs::read_link(&link).ok(),
            Some(PathBuf::from("../init.d/status-exporter")),
            "{}",
            link.display()
        );
    }

    assert_eq!(service("start"), (Some(0), String::new()));
    assert_eq!(
        fs::read_to_string(state.join("main.params")).unwrap(),
        format!(
            "set command '{dir}/usr/bin/status-exporter'
append command '--target-url' '{url}'
append command '--polling-interval-seconds' '0.5'
append command '--exporter-port' '{port}'
append command '--listen-address' '127.0.0.1'
set env 'TARGET_HEADERS={SECRET}
X-Other: it'\\''s'
set user 'nobody'
set respawn '3600' '5' '5'
set stdout '1'
set stderr '1'
"
        )
    );
    assert_eq!(
        fs::read_to_string(state.join("triggers")).unwrap(),
        "reload trigger: config status-exporter\n"
    );
    assert!(
        !state.join("other.params").exists(),
        "a disabled section started"
    );
    let pid = read_pid(&pidfile);
    check_serving(pid, port, &target, &daemon);
    assert_eq!(service("running"), (Some(0), String::new()));
    // A reload with the settings unchanged: the same instance, told to read its files again.
    assert_eq!(service("reload"), (Some(0), String::new()));
    assert_eq!(read_pid(&pidfile), pid);
    check_reloaded(pid, &state.join("main.log"));

    assert_eq!(service("stop"), (Some(0), String::new()));
    check_stopped(pid, port);
    assert_eq!(service("running"), (Some(1), String::new()));
}

// ---------------------------------------------------------------------------------------------
// Shared steps.

/// The settings file of the BusyBox and OpenRC services: the shipped example with the test's
/// values in its commented lines, so that what the example shows is what is tested.
fn write_settings(path: &Path, target: &Target, port: u16) {
    let text = edit(
        &fs::read_to_string(repo().join("scripts/init/status-exporter.conf")).unwrap(),
        &[
            (
                "#export TARGET_URL=http://localhost:8000/status",
                &format!("export TARGET_URL={}", target.url("/status")),
            ),
            (
                "#export POLLING_INTERVAL_SECONDS=5",
                "export POLLING_INTERVAL_SECONDS=0.5",
            ),
            (
                "#export EXPORTER_PORT=9877",
                &format!("export EXPORTER_PORT={port}"),
            ),
            (
                "#export LISTEN_ADDRESS=127.0.0.1",
                "export LISTEN_ADDRESS=127.0.0.1",
            ),
            (
                "#export TARGET_HEADERS='X-Api-Key: SECRET'",
                &format!("export TARGET_HEADERS='{SECRET}\nX-Other: it'\\''s'"),
            ),
        ],
    );
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The exporter `pid` runs `daemon` as nobody, listens on 127.0.0.1:`port`, and has polled
/// `target` with both configured headers; the secret header is not on its command line.
fn check_serving(pid: u32, port: u16, target: &Target, daemon: &Path) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for(
        "the exporter to be ready (a poll of the target succeeded)",
        || {
            try_get(addr, "GET", "/-/ready", &[])
                .ok()
                .filter(|r| r.status == 200)
        },
        || format!("seen by the target: {:?}", target.seen()),
    );
    let seen = target.seen();
    let last = seen.last().expect("the target was polled");
    assert_eq!(
        last.headers.get("x-api-key").map(String::as_str),
        Some("SECRET-KEY")
    );
    assert_eq!(
        last.headers.get("x-other").map(String::as_str),
        Some("it's")
    );

    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().nth(1),
        Some("65534"),
        "the exporter runs as nobody: {uid}"
    );
    assert_eq!(fs::read_link(format!("/proc/{pid}/exe")).unwrap(), daemon);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("SECRET"),
        "a header value on the command line: {}",
        String::from_utf8_lossy(&cmdline)
    );
}

/// The exporter `pid` got SIGHUP (`reload`) and still runs: it says so in its log.
fn check_reloaded(pid: u32, log: &Path) {
    wait_for(
        "the exporter's log line for SIGHUP",
        || {
            fs::read_to_string(log)
                .ok()
                .filter(|text| text.contains("info: SIGHUP: "))
        },
        || fs::read_to_string(log).unwrap_or_default(),
    );
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "{pid} ended on reload"
    );
}

/// The process `pid` has ended and nothing answers on `port`.
fn check_stopped(pid: u32, port: u16) {
    wait_for(
        "the exporter to end",
        || (!Path::new(&format!("/proc/{pid}")).exists()).then_some(()),
        || format!("/proc/{pid} is still there"),
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A fresh directory, readable by all (nobody runs the exporter from it).
fn temp_root(name: &str) -> PathBuf {
    let root = temp_dir(name);
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// A directory of links to every BusyBox applet, for a PATH with nothing else.
fn applets(busybox: &Path, root: &Path) -> PathBuf {
    let dir = root.join("busybox");
    fs::create_dir_all(&dir).unwrap();
    let out = run(Command::new(busybox).arg("--install").arg("-s").arg(&dir));
    assert!(out.status.success(), "busybox --install: {out:?}");
    dir
}

/// The binary under test, copied to `path` in `root`.
fn install_binary(root: &Path, path: &str) -> PathBuf {
    let dest = root.join(path);
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(binary(), &dest).unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

/// The repository's script `source`, with its absolute paths moved into the test's root
/// (`replacements`, each of which must be there), installed executable as `dest`.
fn install_script(source: &str, dest: &Path, replacements: &[(&str, &str)]) -> PathBuf {
    let text = edit(
        &fs::read_to_string(repo().join(source)).unwrap(),
        replacements,
    );
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::write(dest, text).unwrap();
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).unwrap();
    dest.to_path_buf()
}

/// `text` with each `(old, new)` replaced; each `old` must be in it exactly once.
fn edit(text: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (old, new) in replacements {
        assert_eq!(text.matches(old).count(), 1, "{old:?} once in:\n{text}");
        text = text.replace(old, new);
    }
    text
}

fn free_port() -> u16 {
    let [port] = free_ports::<1>();
    port
}

/// stdout and stderr of a finished command, together.
fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn read_pid(pidfile: &Path) -> u32 {
    let text = fs::read_to_string(pidfile).unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: {text:?}", pidfile.display()))
}

/// Kills the process named in `pidfile`, if any: the clean-up after a failed test.
fn kill_from(pidfile: &Path) {
    if let Ok(text) = fs::read_to_string(pidfile) {
        if let Ok(pid) = text.trim().parse::<u32>() {
            let _ = Command::new("kill").arg(pid.to_string()).output();
        }
    }
}

/// The PIDs whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // `PID (COMM) STATE PPID ...`; COMM may hold spaces and parentheses.
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// Polls `check` until it gives a value, at most [`PATIENCE`]; then panics with `context`.
fn wait_for<T>(what: &str, check: impl Fn() -> Option<T>, context: impl Fn() -> String) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("no {what} within {PATIENCE:?}: {}", context());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the closure when dropped: clean-up that also happens when an assertion fails.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
