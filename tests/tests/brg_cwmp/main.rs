//! brgd against the test ACS (`nerg_tests::acs`) over loopback: sessions, RPCs, persistence,
//! connection requests, authentication, HTTPS, Reboot/Download and hostile input.
//!
//! Each test runs its own brgd process with its own state directory and its own ACS on a
//! free loopback port, so the tests run in parallel.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cwmp::fault::FaultCode;
use cwmp::soap::{
    AddObject, Body, DeleteObject, Download, GetParameterAttributes, GetParameterNames,
    GetParameterValues, Notification, ParameterValue, Reboot, SetParameterAttribute,
    SetParameterAttributes, SetParameterValues, Status, ValueType,
};
use nerg_tests::acs::{
    Acs, AcsAuth, AcsConfig, AcsRequest, SessionLog, connection_request, connection_request_after,
    http_get,
};
use nerg_tests::{bin, wait_until};

const TIMEOUT: Duration = Duration::from_secs(30);
const MS: &str = "Device.ManagementServer.";

/// Factory defaults for the tests: no periodic informs, 1 s minimum retry wait, CR creds.
const FACTORY: &str = "cwmp-model 1
V Device.ManagementServer.PeriodicInformEnable false
V Device.ManagementServer.CWMPRetryMinimumWaitInterval 1
V Device.ManagementServer.CWMPRetryIntervalMultiplier 1000
V Device.ManagementServer.ConnectionRequestUsername cr-user
V Device.ManagementServer.ConnectionRequestPassword cr-pass
";

/// A brgd process with its own directory (state, factory defaults, log, scripts).
struct Brgd {
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    starts: u32,
    /// The Connection Request port, kept across restarts (a new port is a value change).
    cr_port: u16,
    /// Where brgd runs and applies the model to Linux; `None`: on the host's loopback with
    /// `--apply log` (the TR-069 side only).
    netns: Option<String>,
    /// `--log`.
    log_level: &'static str,
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Brgd {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(nerg_tests::netns::unique_name(tag));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test directory");
        std::fs::write(dir.join("factory"), FACTORY).expect("factory defaults");
        Self {
            dir,
            child: None,
            extra: Vec::new(),
            starts: 0,
            cr_port: free_port(),
            netns: None,
            log_level: "debug",
        }
    }

    /// brgd inside `ns`, applying the model to that namespace's Linux (`--apply linux`).
    fn in_netns(mut self, ns: &nerg_tests::Netns) -> Self {
        self.netns = Some(ns.name().to_owned());
        self
    }

    /// `--log level` instead of debug.
    fn log_level(mut self, level: &'static str) -> Self {
        self.log_level = level;
        self
    }

    fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.to_owned());
        self
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.dir.join("state").join(name)
    }

    /// Writes an executable shell script into the test directory.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn start(&mut self, acs_url: &str) {
        assert!(self.child.is_none(), "brgd already running");
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("brgd.{}.log", self.starts)))
            .expect("log file");
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin("brgd"));
                c
            }
            None => Command::new(bin("brgd")),
        };
        let apply = if self.netns.is_some() { "linux" } else { "log" };
        if !acs_url.is_empty() {
            command.arg("--acs-url").arg(acs_url);
        }
        let child = command
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--factory-defaults")
            .arg(self.dir.join("factory"))
            .arg("--cr-listen")
            .arg(format!("127.0.0.1:{}", self.cr_port))
            .args(["--log", self.log_level, "--serial-number", "TEST0001"])
            // On the host's loopback: the TR-069 side only, the box left alone.
            .args(["--apply", apply])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning brgd");
        self.child = Some(child);
    }

    fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.join(format!("brgd.{n}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    fn assert_running(&mut self) {
        let log = self.log();
        let child = self.child.as_mut().expect("brgd started");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("brgd exited ({status}):\n{log}");
        }
    }

    /// Waits for brgd to exit by itself (Reboot); returns its status code.
    fn wait_exit(&mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("brgd started");
        let status = nerg_tests::wait_until_some("brgd to exit", TIMEOUT, || {
            child.try_wait().expect("try_wait")
        });
        self.child = None;
        status.code()
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Brgd {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("brgd log ({}):\n{}", self.dir.display(), self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn rpc(body: Body) -> AcsRequest {
    AcsRequest::Rpc(body)
}

fn gpv(names: &[&str]) -> AcsRequest {
    rpc(Body::GetParameterValues(GetParameterValues {
        parameter_names: names.iter().map(|n| (*n).to_owned()).collect(),
    }))
}

fn spv(values: &[(&str, &str, ValueType)], key: &str) -> AcsRequest {
    rpc(Body::SetParameterValues(SetParameterValues {
        parameter_list: values
            .iter()
            .map(|(n, v, t)| ParameterValue::new(*n, *v, t.clone()))
            .collect(),
        parameter_key: key.to_owned(),
    }))
}

/// The values of a GetParameterValuesResponse answer.
fn values(answer: &Body) -> Vec<(String, String)> {
    match answer {
        Body::GetParameterValuesResponse(r) => r
            .parameter_list
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect(),
        other => panic!("expected GetParameterValuesResponse, got {other:?}"),
    }
}

fn value_of(answer: &Body, name: &str) -> String {
    values(answer)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing from {answer:?}"))
        .1
}

fn fault_of(answer: &Body) -> &cwmp::fault::Fault {
    match answer {
        Body::Fault(f) => f,
        other => panic!("expected a Fault, got {other:?}"),
    }
}

/// Starts an ACS and brgd, waits for the first (BOOTSTRAP) session.
fn setup(tag: &str, config: AcsConfig) -> (Acs, Brgd, SessionLog) {
    let acs = Acs::start(config);
    let mut brgd = Brgd::new(tag);
    brgd.start(&acs.url());
    let first = acs.wait_sessions(1, TIMEOUT).remove(0);
    brgd.assert_running();
    (acs, brgd, first)
}

/// Waits for session number `n` (1-based) to end and returns it.
fn session(acs: &Acs, n: usize) -> SessionLog {
    acs.wait_sessions(n, TIMEOUT).remove(n - 1)
}

/// The connection-request URL the CPE informed in session `s`.
fn cr_url(s: &SessionLog) -> String {
    s.param(&format!("{MS}ConnectionRequestURL"))
        .expect("the CR URL is informed")
        .to_owned()
}

/// Opens a session by connection request and returns its log (the `n`-th session).
fn kick(acs: &Acs, first: &SessionLog, n: usize) -> SessionLog {
    let url = cr_url(first);
    // The CPE rate-limits connection requests: retry a 503 until the window has passed.
    nerg_tests::wait_until_some("an accepted connection request", TIMEOUT, || {
        match connection_request(&url, "cr-user", "cr-pass") {
            200 | 204 => Some(()),
            503 => None,
            other => panic!("connection request answered {other}"),
        }
    });
    session(acs, n)
}

fn notify(name: &str, notification: Notification) -> AcsRequest {
    rpc(Body::SetParameterAttributes(SetParameterAttributes {
        parameter_list: vec![SetParameterAttribute {
            name: name.into(),
            notification_change: true,
            notification,
            access_list_change: false,
            access_list: Vec::new(),
        }],
    }))
}

fn notification_of(answer: &Body) -> Notification {
    match answer {
        Body::GetParameterAttributesResponse(r) => {
            assert_eq!(r.parameter_list.len(), 1, "{r:?}");
            r.parameter_list[0].notification
        }
        other => panic!("GetParameterAttributes answer: {other:?}"),
    }
}

/// Sends unauthenticated GETs to `url` over keep-alive connections until `stop` (or
/// `max` answered in all), counting the 401s in `answered`.
fn cr_flood(
    url: &str,
    stop: &std::sync::atomic::AtomicBool,
    answered: &std::sync::atomic::AtomicU64,
    max: u64,
) {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::Ordering::Relaxed;
    let rest = url.strip_prefix("http://").expect("http URL");
    let (addr, path) = rest.split_at(rest.find('/').expect("a path"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    while !stop.load(Relaxed) && answered.load(Relaxed) < max {
        let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 4096];
        // Up to 100 requests per connection; every answer is a bodiless 401.
        for _ in 0..100 {
            if stop.load(Relaxed) || stream.write_all(request.as_bytes()).is_err() {
                break;
            }
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            if !head.starts_with(b"HTTP/1.1 401") {
                break;
            }
            answered.fetch_add(1, Relaxed);
        }
    }
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn auth_roundtrip(tag: &str, auth: AcsAuth, user: &str, pass: &str) {
    let acs = Acs::start(AcsConfig {
        auth,
        ..AcsConfig::default()
    });
    acs.script(vec![gpv(&["Device.DeviceInfo.SerialNumber"])]);
    let mut brgd = Brgd::new(tag)
        .arg("--acs-username")
        .arg(user)
        .arg("--acs-password")
        .arg(pass);
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(
        value_of(&s.answers[0].body, "Device.DeviceInfo.SerialNumber"),
        "TEST0001"
    );
    assert_eq!(
        acs.auth_rejections(),
        1,
        "one challenge, then every request authenticated"
    );
    assert_eq!(acs.missing_cookies(), 0);
    assert_eq!(
        acs.connections(),
        1,
        "the challenge is answered on the same connection"
    );
    brgd.assert_running();
}

fn download(url: String, size: u32, key: &str) -> AcsRequest {
    rpc(Body::Download(Download {
        command_key: key.into(),
        file_type: "1 Firmware Upgrade Image".into(),
        url,
        file_size: size,
        ..Download::default()
    }))
}

fn transfer_fault(s: &SessionLog) -> Option<u32> {
    match s.cpe_requests.first() {
        Some(Body::TransferComplete(t)) => t.fault.as_ref().map(|f| f.code.code()),
        other => panic!("expected a TransferComplete, got {other:?}"),
    }
}

/// A SOAP envelope around `body`, with `cwmp:ID` `id` (hostile-input tests).
fn raw_envelope(id: &str, body: &str) -> Vec<u8> {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">{id}</cwmp:ID></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
    .into_bytes()
}

/// Waits for session number `n` (1-based, counting failed ones) to end; returns it.
fn nth_session_ended(acs: &Acs, n: usize) -> SessionLog {
    nerg_tests::wait_until_some(&format!("session {n} to end"), TIMEOUT, || {
        acs.sessions().get(n - 1).filter(|s| s.ended).cloned()
    })
}

/// Waits for the first session numbered `n` or later to end; returns it.
fn session_ended_after(acs: &Acs, n: usize) -> SessionLog {
    nerg_tests::wait_until_some(&format!("session {n} to end"), TIMEOUT, || {
        acs.sessions()
            .into_iter()
            .skip(n - 1)
            .find(|s| s.ended && !s.answers.is_empty())
    })
}

/// Sends raw bytes, returns the status of the answer.
fn raw_http(addr: &str, request: &str) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

mod acs;
mod connection_requests;
mod hostile;
mod live;
mod model;
mod sessions;
