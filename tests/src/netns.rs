//! Network namespaces as RAII guards, and processes and threads inside them.

use std::{
    fs::File,
    io::Read as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{
        Once,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use nix::{
    sched::{CloneFlags, setns},
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::{ip, run};

/// Prefix of everything the harness names; leftovers with it are swept.
const PREFIX: &str = "nt-";
const NETNS_DIR: &str = "/run/netns";
const PIN_ROOT: &str = "/sys/fs/bpf/nerg";

/// A name unique to this process and call: `nt-<pid>-<seq>-<tag>`.
pub fn unique_name(tag: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{seq}-{tag}", std::process::id())
}

/// Removes namespaces and bpffs pin directories left by harness runs whose process is gone.
/// Runs once per process.
pub fn sweep_leftovers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for dir in [NETNS_DIR, PIN_ROOT] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = owner_pid(&name) else {
                    continue;
                };
                if Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
                if dir == NETNS_DIR {
                    delete_netns(&name);
                } else {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    });
}

/// The pid of the harness process that named `name` (`nt-<pid>-...`), if it is such a name.
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

fn delete_netns(name: &str) {
    // Kill whatever still runs inside, then remove the namespace (its links go with it).
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

/// A network namespace, deleted (with everything running in it) on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `nt-<pid>-<seq>-<tag>` with `lo` up.
    pub fn new(tag: &str) -> Self {
        sweep_leftovers();
        let name = unique_name(tag);
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Creates a namespace with a fixed `name` (the lab's), replacing a leftover of that name.
    pub fn named(name: &str) -> Self {
        delete_netns(name);
        ip(&["netns", "add", name]);
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Deletes the namespace `name` if it exists, with everything running in it.
    pub fn delete(name: &str) {
        delete_netns(name);
    }

    /// Leaves the namespace in place when the guard goes (`cargo xtask lab --keep`).
    pub fn keep(self) {
        std::mem::forget(self);
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// Runs `ip -n <ns> args...`.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program` inside the namespace. It uses `nsenter --net`, which
    /// keeps the mount namespace: bpffs pins stay visible (`ip netns exec` would remount
    /// /sys and hide them).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        cmd
    }

    /// Runs a command inside the namespace to completion; panics if it fails.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        run(self.command(program).args(args))
    }

    /// Starts a long-running process inside the namespace; killed when the guard drops.
    /// Its stdout and stderr go to a log file (a pipe nobody reads would block it), shown
    /// when it fails.
    pub fn spawn(&self, what: &str, cmd: &mut Command) -> NsProcess {
        let log = std::env::temp_dir().join(format!("{}.log", unique_name(what)));
        let file = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = file.try_clone().expect("dup log fd");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        NsProcess {
            what: what.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// A UDP socket of this namespace bound to `local`, connected to `peer` if given, with
    /// `read_timeout` (a test's end of a flow; the socket stays in the namespace).
    pub fn udp(
        &self,
        local: SocketAddr,
        peer: Option<SocketAddr>,
        read_timeout: Duration,
    ) -> std::net::UdpSocket {
        self.run(|| {
            let s = std::net::UdpSocket::bind(local)?;
            if let Some(peer) = peer {
                s.connect(peer)?;
            }
            s.set_read_timeout(Some(read_timeout))?;
            Ok::<_, std::io::Error>(s)
        })
        .unwrap_or_else(|e| panic!("UDP socket on {local} in {}: {e}", self.name))
    }

    /// Runs `f` on a thread that has entered this namespace, and returns its result.
    /// For sockets a test opens itself (HTTP probes, raw frames).
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let file = File::open(self.path())
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.path().display()));
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns into {}: {e}", self.name));
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Switches IPv6 off for every interface created in this namespace from now on (and the
    /// existing ones), so that no router or multicast-listener chatter reaches counters a
    /// test checks exactly.
    pub fn disable_ipv6(&self) {
        for key in ["all", "default"] {
            self.exec(
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")],
            );
        }
    }

    /// Runs `f` on a new thread inside this namespace and returns at once (servers a test
    /// talks to). Join the handle to get the result.
    pub fn spawn_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::thread::JoinHandle<R> {
        let file = File::open(self.path())
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.path().display()));
        let name = self.name.clone();
        std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns into {name}: {e}"));
            f()
        })
    }

    /// Moves `dev`'s receive processing (its NAPI poll: XDP, and the stack above it) into a
    /// kernel thread of its own and pins that thread to `cpu`, so what happens to frames
    /// arriving on `dev` runs on that CPU alone. The device must have its NAPI instance
    /// already (on veth: an XDP program attached, or GRO on). Returns the thread's pid.
    pub fn pin_napi(&self, dev: &str, cpu: usize) -> u32 {
        let prefix = format!("napi/{dev}-");
        let before = napi_threads(&prefix);
        // sysfs shows a namespace's devices only when mounted from inside it: `ip netns exec`
        // does that for the one command.
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.name,
            "sh",
            "-c",
            &format!("echo 1 > /sys/class/net/{dev}/threaded"),
        ]));
        let pid = crate::wait_until_some(
            &format!("the NAPI thread of {dev} in {}", self.name),
            Duration::from_secs(5),
            || {
                napi_threads(&prefix)
                    .into_iter()
                    .find(|p| !before.contains(p))
            },
        );
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu)
            .unwrap_or_else(|e| panic!("CPU {cpu} for the NAPI thread of {dev}: {e}"));
        nix::sched::sched_setaffinity(Pid::from_raw(pid as i32), &set)
            .unwrap_or_else(|e| panic!("pinning the NAPI thread of {dev} to CPU {cpu}: {e}"));
        pid
    }

    /// Whether a TCP socket listens on `port` in the namespace. Asked of the kernel (`ss`),
    /// not by connecting: a probe connection is a client to the server (iperf3 serves one
    /// at a time, and a probe that connects and leaves can get the next client reset).
    pub fn tcp_listening(&self, port: u16) -> bool {
        let out = self.exec("ss", &["-Hltn", &format!("sport = :{port}")]);
        !out.stdout.is_empty()
    }

    /// Sets `dev` up.
    pub fn link_up(&self, dev: &str) {
        self.ip(&["link", "set", dev, "up"]);
    }

    /// Adds an address (`a.b.c.d/len`) to `dev`.
    pub fn addr_add(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev]);
    }

    /// Adds an IPv6 address (`a::b/len`) to `dev` without duplicate address detection, so
    /// it is usable at once.
    pub fn addr_add_nodad(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev, "nodad"]);
    }

    /// Sets a permanent neighbour entry: `ip` is at `mac` on `dev`.
    pub fn neigh_permanent(&self, ip: &str, mac: &str, dev: &str) {
        self.ip(&[
            "neigh",
            "replace",
            ip,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }

    /// Adds a route: `dest` (`default` or a prefix) via `gateway`.
    pub fn route_add(&self, dest: &str, gateway: &str) {
        self.ip(&["route", "add", dest, "via", gateway]);
    }

    /// Creates a Linux bridge `name` (up) and enslaves `ports` to it.
    pub fn bridge(&self, name: &str, ports: &[&str]) {
        self.ip(&["link", "add", name, "type", "bridge"]);
        for port in ports {
            self.ip(&["link", "set", port, "master", name]);
        }
        self.link_up(name);
    }

    /// Switches offloads off on `dev` with ethtool (e.g. `["tx", "off"]` so that frames
    /// leave with complete checksums, as on a real wire).
    pub fn ethtool_k(&self, dev: &str, features: &[&str]) {
        let mut args = vec!["-K", dev];
        args.extend_from_slice(features);
        self.exec("ethtool", &args);
    }

    /// The MAC address of `dev`.
    pub fn mac(&self, dev: &str) -> [u8; 6] {
        let out = self.ip(&["-br", "link", "show", "dev", dev]);
        let text = String::from_utf8_lossy(&out.stdout);
        // "<name> <state> <mac> <flags>"
        text.split_whitespace()
            .nth(2)
            .and_then(parse_mac)
            .unwrap_or_else(|| panic!("no MAC for {dev}: {text:?}"))
    }

    /// True when `dev` has an XDP program attached, in any mode.
    pub fn has_xdp(&self, dev: &str) -> bool {
        let out = self.ip(&["link", "show", dev]);
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }

    /// True when `dev` has an XDP program attached in native (driver) mode: `ip link`
    /// shows `prog/xdp id N` for it, `prog/xdpgeneric` for generic mode.
    pub fn has_native_xdp(&self, dev: &str) -> bool {
        let out = self.ip(&["link", "show", dev]);
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp id")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_netns(&self.name);
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The pids of the kernel threads whose name starts with `prefix`.
fn napi_threads(prefix: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.starts_with(prefix))
        })
        .collect()
}

/// Creates a veth pair with one end in each namespace (`a_dev` in `a`, `b_dev` in `b`), both
/// up. Created directly inside the namespaces, so names never clash with the host's.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) {
    ip(&[
        "link",
        "add",
        a_dev,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_dev,
        "netns",
        b.name(),
    ]);
    a.link_up(a_dev);
    b.link_up(b_dev);
}

/// A process started in a namespace; killed (and reaped) on drop.
pub struct NsProcess {
    what: String,
    child: Option<Child>,
    log: PathBuf,
}

impl NsProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Returns the exit status if the process has exited.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Panics with the process's log if it has exited (readiness probes call this so that a
    /// crashed daemon fails the test at once, with its log).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_exit() {
            panic!("{} exited early ({status}):\n{}", self.what, self.log());
        }
    }

    /// Leaves the process running when the guard goes (`cargo xtask lab --keep`); returns
    /// the path of its log.
    pub fn keep(mut self) -> PathBuf {
        self.child = None;
        std::mem::take(&mut self.log)
    }

    /// Kills the process with SIGKILL (a crash, `kill -9`) and reaps it.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns the status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = Pid::from_raw(self.pid() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        crate::wait_until_some(
            &format!("{} to exit after SIGTERM", self.what),
            timeout,
            || self.try_exit(),
        )
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.log.as_os_str().is_empty() {
            // kept: the log stays with the running process
        } else if std::thread::panicking() {
            eprintln!("{} log kept at {}", self.what, self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
