//! Escape suite: every attack runs inside a real sandboxed worker (this test binary re-executed with
//! `__worker`), must be blocked, and must be reported as the right event; the supervisor keeps
//! serving and the next request succeeds on a fresh worker. The attack operations exist only in
//! this test binary.
//!
//! Runs as root and unprivileged (`scripts/test` runs it again under
//! `setpriv --reuid=65534 --regid=65534 --clear-groups`).
//!
//! The binary has its own `main` (`harness = false`) because a worker must start single-threaded:
//! it answers `--list --format terse` and `--exact NAME` like libtest, so cargo test and nextest
//! both drive it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_macros)]

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rampart_sandbox::worker::{self, Request};
use rampart_sandbox::{
    Cause, Error, EventKind, Layers, ProcStatus, Spec, Supervisor, SupervisorConfig, WORKER_ARG,
};

// ------------------------------------------------------------------------------------ worker side

fn outcome(r: std::io::Result<()>) -> Vec<u8> {
    match r {
        Ok(()) => b"allowed".to_vec(),
        Err(e) => format!(
            "denied: {}",
            e.raw_os_error().map_or(e.to_string(), errno_name)
        )
        .into_bytes(),
    }
}

fn errno_name(n: i32) -> String {
    match n {
        libc::EACCES => "EACCES".into(),
        libc::EPERM => "EPERM".into(),
        libc::EBADF => "EBADF".into(),
        libc::ENETUNREACH => "ENETUNREACH".into(),
        libc::EAGAIN => "EAGAIN".into(),
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::EROFS => "EROFS".into(),
        n => format!("errno {n}"),
    }
}

fn sys(r: libc::c_long) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One attack (or a harmless request), named by the payload's first word.
fn attack(req: Request) -> Vec<u8> {
    let text = String::from_utf8_lossy(&req.payload).into_owned();
    let mut words = text.split_whitespace();
    let op = words.next().unwrap_or("");
    let arg = words.next().unwrap_or("").to_owned();
    let arg2 = words.next().unwrap_or("").to_owned();
    match op {
        "ping" => b"pong".to_vec(),
        "read-fd" => {
            let mut f = fs::File::from(req.fd.unwrap());
            let mut s = String::new();
            match f.read_to_string(&mut s) {
                Ok(_) => s.into_bytes(),
                Err(e) => outcome(Err(e)),
            }
        }
        "write-fd" => {
            let mut f = fs::File::from(req.fd.unwrap());
            outcome(f.write_all(b"pwned"))
        }
        "tcp" => outcome(TcpStream::connect(("127.0.0.1", arg.parse::<u16>().unwrap())).map(drop)),
        "udp" => outcome(
            UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.send_to(b"pwned", ("127.0.0.1", arg.parse::<u16>().unwrap())))
                .map(drop),
        ),
        "unix" => outcome(UnixStream::connect(&arg).map(drop)),
        "netlink" => {
            // SAFETY: socket with constant arguments.
            let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE) };
            outcome(sys(fd.into()))
        }
        "read" => outcome(fs::read(&arg).map(drop)),
        "open-write" => outcome(fs::OpenOptions::new().write(true).open(&arg).map(drop)),
        "create" => outcome(fs::File::create(&arg).and_then(|mut f| f.write_all(b"pwned"))),
        "rename" => outcome(fs::rename(&arg, &arg2)),
        "delete" => outcome(fs::remove_file(&arg)),
        "exec" => {
            let sh = c"/bin/sh";
            let argv = [sh.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: NUL-terminated argv/envp arrays of C strings.
            outcome(sys(unsafe {
                libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr())
            }
            .into()))
        }
        "fork" => {
            // SAFETY: the child only calls _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: _exit in the child.
                unsafe { libc::_exit(0) };
            }
            if pid > 0 {
                // SAFETY: reaping our own child.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            }
            outcome(sys(pid.into()))
        }
        "ptrace" => {
            let pid: libc::pid_t = arg.parse().unwrap();
            // SAFETY: PTRACE_ATTACH to a decoy process; arguments are integers.
            let r = unsafe {
                libc::ptrace(
                    libc::PTRACE_ATTACH,
                    pid,
                    std::ptr::null_mut::<libc::c_void>(),
                    std::ptr::null_mut::<libc::c_void>(),
                )
            };
            outcome(sys(r))
        }
        "mount" => {
            // SAFETY: C string literals and a null data pointer.
            let r = unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    c"/tmp".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            outcome(sys(r.into()))
        }
        "unshare" => {
            // SAFETY: unshare takes a flag word.
            outcome(sys(unsafe {
                libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET)
            }
            .into()))
        }
        "alloc" => {
            let mib: usize = arg.parse().unwrap();
            let v = vec![1u8; mib << 20];
            format!(
                "allocated {}",
                v.iter().map(|&b| usize::from(b)).sum::<usize>()
            )
            .into_bytes()
        }
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "sleep" => {
            std::thread::sleep(Duration::from_secs(3600));
            b"woke".to_vec()
        }
        "forkbomb" => loop {
            // SAFETY: children only call _exit... or would, if fork were allowed.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return outcome(sys(-1));
            }
        },
        "panic" => panic!("worker panicked on purpose"),
        _ => b"unknown".to_vec(),
    }
}

// ------------------------------------------------------------------------------------ parent side

struct Fixture {
    _dir: tempfile::TempDir,
    model: PathBuf,
    models: PathBuf,
    data: PathBuf,
    writable: PathBuf,
}

/// A model directory (readable by the worker), a "server data" directory (not), and a directory
/// writable by everyone, so only the sandbox (not file permissions) can stop writes.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let models = dir.path().join("models");
    let data = dir.path().join("data");
    let writable = dir.path().join("writable");
    for d in [&models, &data, &writable] {
        fs::create_dir(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let model = models.join("model.bin");
    fs::write(&model, "model bytes").unwrap();
    fs::set_permissions(&model, fs::Permissions::from_mode(0o666)).unwrap();
    let secret = data.join("secret");
    fs::write(&secret, "server secret").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    Fixture {
        _dir: dir,
        model,
        models,
        data,
        writable,
    }
}

fn spec(fx: &Fixture) -> Spec {
    let mut spec = Spec {
        read_paths: vec![fx.models.clone()],
        ..Spec::default()
    };
    spec.limits.address_space = 256 << 20;
    spec.limits.memory = 256 << 20;
    spec.limits.cpu_seconds = 2;
    spec
}

fn config() -> SupervisorConfig {
    SupervisorConfig {
        deadline: Duration::from_secs(10),
        ..SupervisorConfig::default()
    }
}

fn supervisor(spec: Spec, config: SupervisorConfig) -> Supervisor {
    Supervisor::new(spec, config)
}

fn ask(sup: &mut Supervisor, req: &str) -> Result<String, Error> {
    sup.request(req.as_bytes(), None)
        .map(|r| String::from_utf8_lossy(&r).into_owned())
}

fn ask_fd(sup: &mut Supervisor, req: &str, fd: &OwnedFd) -> Result<String, Error> {
    sup.request(req.as_bytes(), Some(fd.as_fd()))
        .map(|r| String::from_utf8_lossy(&r).into_owned())
}

fn expect_cause(r: Result<String, Error>, cause: Cause) -> Result<(), String> {
    match r {
        Err(Error::Crashed(c)) if c.cause == cause => Ok(()),
        other => Err(format!("expected {cause:?}, got {other:?}")),
    }
}

fn expect_denied(r: Result<String, Error>) -> Result<(), String> {
    match r {
        Ok(s) if s.starts_with("denied") => Ok(()),
        Err(Error::Crashed(c)) if c.cause == Cause::Seccomp => Ok(()),
        other => Err(format!("expected a denial, got {other:?}")),
    }
}

/// After an attack: the supervisor still serves, on a fresh worker if the old one died.
fn still_serves(sup: &mut Supervisor, old_pid: Option<i32>, crashed: bool) -> Result<(), String> {
    let reply = ask(sup, "ping").map_err(|e| format!("next request failed: {e}"))?;
    if reply != "pong" {
        return Err(format!("next request: {reply}"));
    }
    if crashed && sup.worker_pid() == old_pid {
        return Err("the crashed worker was not replaced".into());
    }
    if crashed && gone(old_pid.unwrap()).is_err() {
        return Err("the crashed worker is still alive".into());
    }
    Ok(())
}

fn gone(pid: i32) -> Result<(), String> {
    // SAFETY: signal 0 only checks existence.
    if unsafe { libc::kill(pid, 0) } == 0 {
        Err(format!("process {pid} still exists"))
    } else {
        Ok(())
    }
}

/// Runs `req` in a fresh sandbox and checks both the outcome and that the parent keeps serving.
fn run_attack(req: &str, cause: Option<Cause>) -> Result<(), String> {
    let fx = fixture();
    run_attack_with(
        &fx,
        spec(&fx),
        config(),
        &req.replace("{w}", &fx.writable.display().to_string()),
        cause,
    )
}

fn run_attack_with(
    _fx: &Fixture,
    spec: Spec,
    config: SupervisorConfig,
    req: &str,
    cause: Option<Cause>,
) -> Result<(), String> {
    let mut sup = supervisor(spec, config);
    sup.start().map_err(|e| e.to_string())?;
    let pid = sup.worker_pid();
    let r = ask(&mut sup, req);
    let crashed = r.is_err();
    match cause {
        Some(c) => expect_cause(r, c)?,
        None => expect_denied(r)?,
    }
    if crashed {
        let events = sup.take_events();
        if !events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Crashed(c) if Some(c.pid) == pid))
        {
            return Err(format!("no crash event: {events:?}"));
        }
    }
    still_serves(&mut sup, pid, crashed)
}

fn test_status() -> Result<(), String> {
    let fx = fixture();
    let mut sup = supervisor(spec(&fx), config());
    let report = sup.start().map_err(|e| e.to_string())?.clone();
    let pid = sup.worker_pid().unwrap();
    let st = ProcStatus::of(pid).map_err(|e| e.to_string())?;
    if st.seccomp != Some(2) || st.no_new_privs != Some(1) {
        return Err(format!("/proc/{pid}/status: {st:?}"));
    }
    if st.uid == Some(0) {
        return Err("worker runs as root".into());
    }
    let own = fs::read_link("/proc/self/ns/net").unwrap();
    // Reading another process's ns link needs ptrace access, which a non-dumpable worker only
    // grants to root; the worker also reports the link it read before confining itself.
    let theirs = fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.display().to_string());
    let reported = report.net_ns.clone().ok_or("no netns reported")?;
    if let Some(t) = &theirs
        && *t != reported
    {
        return Err(format!(
            "netns mismatch: /proc says {t}, worker says {reported}"
        ));
    }
    if own.display().to_string() == reported {
        return Err(format!(
            "worker shares the parent's network namespace {reported}"
        ));
    }
    println!(
        "worker {pid}: {st:?}, netns {reported} (parent {}), /proc link {theirs:?}",
        own.display()
    );
    Ok(())
}

fn test_reads_its_input() -> Result<(), String> {
    let fx = fixture();
    let mut sup = supervisor(spec(&fx), config());
    let fd: OwnedFd = fs::File::open(&fx.model).unwrap().into();
    let got = ask_fd(&mut sup, "read-fd", &fd).map_err(|e| e.to_string())?;
    if got != "model bytes" {
        return Err(format!("read-fd: {got}"));
    }
    let got = ask(&mut sup, &format!("read {}", fx.model.display())).map_err(|e| e.to_string())?;
    if got != "allowed" {
        return Err(format!("reading the allowed model path: {got}"));
    }
    Ok(())
}

fn test_tcp() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Control: the port is really listening.
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let _ = listener.accept();
    run_attack(&format!("tcp {port}"), Some(Cause::Seccomp))?;
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        other => Err(format!("the listener saw a connection: {other:?}")),
    }
}

fn test_udp() -> Result<(), String> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let port = sock.local_addr().unwrap().port();
    run_attack(&format!("udp {port}"), Some(Cause::Seccomp))?;
    let mut buf = [0u8; 16];
    match sock.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        other => Err(format!("a datagram arrived: {other:?}")),
    }
}

fn test_unix() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
    listener.set_nonblocking(true).unwrap();
    run_attack(&format!("unix {}", path.display()), Some(Cause::Seccomp))?;
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        other => Err(format!("the listener saw a connection: {other:?}")),
    }
}

fn test_model_file_untouched() -> Result<(), String> {
    let fx = fixture();
    let mut sup = supervisor(spec(&fx), config());
    let fd: OwnedFd = fs::File::open(&fx.model).unwrap().into();
    // Writing through the read-only descriptor it was given.
    let r = ask_fd(&mut sup, "write-fd", &fd);
    if r.as_deref().ok() != Some("denied: EBADF") {
        return Err(format!("write-fd: {r:?}"));
    }
    // Reopening the model for writing, renaming and deleting it.
    let m = fx.model.display().to_string();
    for req in [
        format!("open-write {m}"),
        format!("rename {m} {m}.x"),
        format!("delete {m}"),
    ] {
        let pid = sup.worker_pid();
        let r = ask(&mut sup, &req);
        let crashed = r.is_err();
        expect_cause(r, Cause::Seccomp).map_err(|e| format!("{req}: {e}"))?;
        still_serves(&mut sup, pid, crashed)?;
    }
    if fs::read_to_string(&fx.model).unwrap() != "model bytes" {
        return Err("the model file changed".into());
    }
    Ok(())
}

fn test_write_create_rename_delete() -> Result<(), String> {
    let fx = fixture();
    let w = &fx.writable;
    let victim = w.join("victim");
    fs::write(&victim, "keep").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o666)).unwrap();
    let mut sup = supervisor(spec(&fx), config());
    sup.start().map_err(|e| e.to_string())?;
    for req in [
        format!("create {}", w.join("new").display()),
        format!("create /tmp/rampart-escape-{}", std::process::id()),
        format!("open-write {}", victim.display()),
        format!("rename {} {}", victim.display(), w.join("moved").display()),
        format!("delete {}", victim.display()),
    ] {
        let pid = sup.worker_pid();
        let r = ask(&mut sup, &req);
        let crashed = r.is_err();
        expect_cause(r, Cause::Seccomp).map_err(|e| format!("{req}: {e}"))?;
        still_serves(&mut sup, pid, crashed)?;
    }
    let names: Vec<_> = fs::read_dir(w)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    if names.len() != 1 || fs::read_to_string(&victim).unwrap() != "keep" {
        return Err(format!("the writable directory changed: {names:?}"));
    }
    if Path::new(&format!("/tmp/rampart-escape-{}", std::process::id())).exists() {
        return Err("a file appeared in /tmp".into());
    }
    Ok(())
}

fn test_read_outside() -> Result<(), String> {
    let fx = fixture();
    let mut sup = supervisor(spec(&fx), config());
    for path in [
        "/etc/passwd".to_owned(),
        fx.data.join("secret").display().to_string(),
    ] {
        let r = ask(&mut sup, &format!("read {path}"));
        if r.as_deref().ok() != Some("denied: EACCES") {
            return Err(format!("read {path}: {r:?}"));
        }
    }
    still_serves(&mut sup, None, false)
}

fn test_memory() -> Result<(), String> {
    run_attack("alloc 1024", Some(Cause::MemoryLimit))
}

fn test_cpu() -> Result<(), String> {
    let fx = fixture();
    let mut s = spec(&fx);
    s.limits.cpu_seconds = 1;
    run_attack_with(&fx, s, config(), "spin", Some(Cause::CpuLimit))
}

fn test_deadline() -> Result<(), String> {
    let fx = fixture();
    let cfg = SupervisorConfig {
        deadline: Duration::from_millis(300),
        ..config()
    };
    let started = Instant::now();
    run_attack_with(&fx, spec(&fx), cfg.clone(), "spin", Some(Cause::Deadline))?;
    run_attack_with(&fx, spec(&fx), cfg, "sleep", Some(Cause::Deadline))?;
    if started.elapsed() > Duration::from_secs(5) {
        return Err(format!("deadline enforcement took {:?}", started.elapsed()));
    }
    Ok(())
}

fn test_panic() -> Result<(), String> {
    run_attack("panic", Some(Cause::Panic))
}

fn test_recycle_and_cleanup() -> Result<(), String> {
    let fx = fixture();
    let cfg = SupervisorConfig {
        recycle_after: 3,
        ..config()
    };
    let mut sup = supervisor(spec(&fx), cfg);
    sup.start().map_err(|e| e.to_string())?;
    let first = sup.worker_pid().unwrap();
    for _ in 0..3 {
        if ask(&mut sup, "ping").map_err(|e| e.to_string())? != "pong" {
            return Err("ping".into());
        }
    }
    gone(first)?;
    ask(&mut sup, "ping").map_err(|e| e.to_string())?;
    let second = sup.worker_pid().unwrap();
    if second == first {
        return Err("not recycled".into());
    }
    let events = sup.take_events();
    if !events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Recycled { served: 3, .. }))
    {
        return Err(format!("no recycle event: {events:?}"));
    }
    let json = serde_json::to_string(&events).unwrap();
    if !json.contains("\"event\":\"recycled\"") {
        return Err(format!("events do not serialise as expected: {json}"));
    }
    drop(sup);
    gone(second)
}

fn test_strict() -> Result<(), String> {
    let fx = fixture();
    let mut s = spec(&fx);
    s.strict = true;
    let mut sup = supervisor(s, config());
    let report = sup.start().map_err(|e| e.to_string())?.clone();
    let missing: Vec<_> = report
        .missing()
        .into_iter()
        .filter(|n| *n != "cgroup")
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "strict worker started with layers missing: {missing:?}"
        ));
    }
    Ok(())
}

/// Each attack against each layer alone, and all together: prints the table recorded in
/// ARCHITECTURE.md and checks the cells the design relies on.
fn test_layer_matrix() -> Result<(), String> {
    let fx = fixture();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = udp.local_addr().unwrap().port();
    let w = fx.writable.display().to_string();
    let mut decoy = Decoy::new();
    let attacks: Vec<(&str, String)> = vec![
        ("TCP connect", format!("tcp {port}")),
        ("UDP send", format!("udp {uport}")),
        ("netlink socket", "netlink".into()),
        ("create file", format!("create {w}/m")),
        ("read /etc/passwd", "read /etc/passwd".into()),
        ("execve /bin/sh", "exec".into()),
        ("fork", "fork".into()),
        (
            "ptrace (same-uid process)",
            format!("ptrace {}", decoy.id()),
        ),
        ("mount", "mount".into()),
        ("unshare", "unshare".into()),
    ];
    let only = |f: fn(&mut Layers)| {
        let mut l = Layers::none();
        f(&mut l);
        l
    };
    let configs: Vec<(&str, Layers)> = vec![
        ("none", Layers::none()),
        ("namespaces", only(|l| l.namespaces = true)),
        ("rlimits", only(|l| l.rlimits = true)),
        ("landlock", only(|l| l.landlock = true)),
        ("seccomp", only(|l| l.seccomp = true)),
        ("all", Layers::default()),
    ];
    let mut table = String::from("| attack |");
    for (name, _) in &configs {
        table += &format!(" {name} |");
    }
    table += "\n|---|";
    table += &"---|".repeat(configs.len());
    table += "\n";
    let mut all_blocked = true;
    for (label, req) in &attacks {
        table += &format!("| {label} |");
        for (cname, layers) in &configs {
            let mut s = spec(&fx);
            s.layers = *layers;
            let _ = fs::remove_file(fx.writable.join("m"));
            let mut sup = supervisor(s, config());
            let cell = match ask(&mut sup, req) {
                Ok(r) => r.replace("denied: ", ""),
                Err(Error::Crashed(c)) => match (c.cause, c.signal) {
                    (Cause::Exit, _) => "succeeded (worker replaced)".to_owned(),
                    (Cause::Seccomp, _) => "killed (SIGSYS)".to_owned(),
                    (_, Some(libc::SIGXFSZ)) => "killed (SIGXFSZ)".to_owned(),
                    (cause, _) => format!("killed ({cause:?})"),
                },
                Err(e) => format!("error: {e}"),
            };
            if *cname == "all" && cell == "allowed" {
                all_blocked = false;
            }
            table += &format!(" {cell} |");
        }
        table += "\n";
    }
    println!("{table}");
    decoy.kill();
    if !all_blocked {
        return Err(format!("an attack got through all layers:\n{table}"));
    }
    Ok(())
}

/// A process of the same user for ptrace to attack (never the test process itself: a successful
/// attach would stop it).
struct Decoy(std::process::Child);

impl Decoy {
    fn new() -> Self {
        Self(
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap(),
        )
    }
    fn id(&self) -> u32 {
        self.0.id()
    }
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        self.kill();
    }
}

// ----------------------------------------------------------------------------------------- harness

type Test = (&'static str, fn() -> Result<(), String>);

const TESTS: &[Test] = &[
    (
        "worker_status_shows_seccomp_no_new_privs_and_own_netns",
        test_status,
    ),
    (
        "worker_reads_its_input_fd_and_allowed_paths",
        test_reads_its_input,
    ),
    (
        "tcp_connect_to_listening_loopback_port_is_blocked",
        test_tcp,
    ),
    ("udp_send_is_blocked", test_udp),
    ("unix_socket_connect_is_blocked", test_unix),
    ("netlink_socket_is_blocked", || {
        run_attack("netlink", Some(Cause::Seccomp))
    }),
    (
        "model_file_cannot_be_written_renamed_or_deleted",
        test_model_file_untouched,
    ),
    (
        "files_cannot_be_created_written_renamed_or_deleted_anywhere",
        test_write_create_rename_delete,
    ),
    (
        "reads_outside_the_allowed_set_are_denied",
        test_read_outside,
    ),
    ("execve_bin_sh_is_blocked", || {
        run_attack("exec", Some(Cause::Seccomp))
    }),
    ("fork_is_blocked", || {
        run_attack("fork", Some(Cause::Seccomp))
    }),
    ("ptrace_is_blocked", || {
        let mut decoy = Decoy::new();
        let r = run_attack(&format!("ptrace {}", decoy.id()), Some(Cause::Seccomp));
        decoy.kill();
        r
    }),
    ("mount_is_blocked", || {
        run_attack("mount", Some(Cause::Seccomp))
    }),
    ("unshare_is_blocked", || {
        run_attack("unshare", Some(Cause::Seccomp))
    }),
    ("fork_bomb_is_blocked", || {
        run_attack("forkbomb", Some(Cause::Seccomp))
    }),
    (
        "allocation_beyond_the_memory_limit_is_a_memory_event",
        test_memory,
    ),
    ("spinning_past_the_cpu_limit_is_a_cpu_event", test_cpu),
    (
        "spinning_or_sleeping_past_the_deadline_is_killed",
        test_deadline,
    ),
    ("a_panic_is_reported_and_the_worker_replaced", test_panic),
    (
        "workers_are_recycled_and_cleaned_up",
        test_recycle_and_cleanup,
    ),
    (
        "strict_mode_starts_with_every_layer_on_this_host",
        test_strict,
    ),
    ("layer_matrix", test_layer_matrix),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(WORKER_ARG) {
        return worker::serve(|_init| Ok(attack));
    }
    let flag = |f: &str| args.iter().any(|a| a == f);
    // Positional arguments are name filters; skip the values of libtest options that take one.
    let mut filters: Vec<&String> = Vec::new();
    let mut skip_value = false;
    for a in &args {
        if skip_value {
            skip_value = false;
        } else if matches!(
            a.as_str(),
            "--format" | "--test-threads" | "--skip" | "--color" | "--logfile" | "-Z"
        ) {
            skip_value = true;
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    let exact = flag("--exact");
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        name == f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    if flag("--list") {
        if !flag("--ignored") {
            for (name, _) in &selected {
                println!("{name}: test");
            }
        }
        return ExitCode::SUCCESS;
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    println!("\nrunning {} tests (uid {uid})", selected.len());
    let mut failed = Vec::new();
    for (name, f) in &selected {
        let started = Instant::now();
        let r = std::panic::catch_unwind(f).unwrap_or_else(|_| Err("panicked".into()));
        match r {
            Ok(()) => println!("test {name} ... ok ({:.0?})", started.elapsed()),
            Err(e) => {
                println!("test {name} ... FAILED: {e}");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}
