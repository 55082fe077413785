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
        }
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
        let child = Command::new(bin("brgd"))
            .arg("--acs-url")
            .arg(acs_url)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--factory-defaults")
            .arg(self.dir.join("factory"))
            .arg("--cr-listen")
            .arg(format!("127.0.0.1:{}", self.cr_port))
            .args(["--log", "debug", "--serial-number", "TEST0001"])
            // These tests run on the host's loopback: the TR-069 side only, the box alone.
            .args(["--apply", "log"])
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

/// Opens a session by connection request and returns its log (the `n`-th session).
fn kick(acs: &Acs, first: &SessionLog, n: usize) -> SessionLog {
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL informed")
        .to_owned();
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

#[test]
fn bootstrap_inform_then_boot_on_restart() {
    let (acs, mut brgd, first) = setup("cwmp-boot", AcsConfig::default());
    assert_eq!(first.event_codes(), ["0 BOOTSTRAP", "1 BOOT"], "{first:?}");
    assert_eq!(first.inform.device_id.serial_number, "TEST0001");
    assert_eq!(first.inform.device_id.manufacturer, "NERG");
    for forced in [
        "Device.RootDataModelVersion",
        "Device.DeviceInfo.SoftwareVersion",
        "Device.DeviceInfo.HardwareVersion",
        "Device.ManagementServer.ParameterKey",
        "Device.ManagementServer.ConnectionRequestURL",
    ] {
        assert!(
            first.param(forced).is_some(),
            "{forced} not in the Inform: {first:?}"
        );
    }
    assert!(first.ended);
    assert_eq!(acs.missing_cookies(), 0);

    // SIGTERM-free restart (kill -9): the next start is a BOOT, not a BOOTSTRAP.
    brgd.kill9();
    brgd.start(&acs.url());
    let second = session(&acs, 2);
    assert_eq!(second.event_codes(), ["1 BOOT"], "{second:?}");
    assert_eq!(second.inform.retry_count, 0);
}

#[test]
fn discovery_with_empty_path_and_partial_path_values() {
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        rpc(Body::GetParameterNames(GetParameterNames {
            parameter_path: String::new(),
            next_level: false,
        })),
        rpc(Body::GetParameterNames(GetParameterNames {
            parameter_path: "Device.".into(),
            next_level: true,
        })),
        gpv(&["Device.ManagementServer."]),
        gpv(&["Device.DeviceInfo.SerialNumber", "Device.DeviceInfo.UpTime"]),
        gpv(&["Device.NoSuchThing."]),
    ]);
    let mut brgd = Brgd::new("cwmp-disc");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(s.answers.len(), 5, "{s:?}");

    let Body::GetParameterNamesResponse(all) = &s.answers[0].body else {
        panic!("GPN answer: {:?}", s.answers[0])
    };
    let names: Vec<&str> = all.parameter_list.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "Device.",
        "Device.DeviceInfo.SerialNumber",
        "Device.ManagementServer.URL",
        "Device.Bridging.Bridge.",
        "Device.VXLAN.Tunnel.",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from the whole-tree GPN"
        );
    }
    let url = all
        .parameter_list
        .iter()
        .find(|p| p.name == "Device.ManagementServer.URL")
        .expect("URL");
    assert!(url.writable);
    let serial = all
        .parameter_list
        .iter()
        .find(|p| p.name == "Device.DeviceInfo.SerialNumber")
        .expect("SerialNumber");
    assert!(!serial.writable);

    let Body::GetParameterNamesResponse(top) = &s.answers[1].body else {
        panic!("GPN answer: {:?}", s.answers[1])
    };
    let top: Vec<&str> = top.parameter_list.iter().map(|p| p.name.as_str()).collect();
    assert!(top.contains(&"Device.ManagementServer."), "{top:?}");
    assert!(
        !top.iter().any(|n| n.matches('.').count() > 2),
        "NextLevel lists only children: {top:?}"
    );

    let ms = values(&s.answers[2].body);
    assert!(ms.iter().all(|(n, _)| n.starts_with(MS)), "{ms:?}");
    assert!(
        ms.iter()
            .any(|(n, v)| n == &format!("{MS}URL") && *v == acs.url()),
        "{ms:?}"
    );
    assert!(
        ms.iter()
            .any(|(n, v)| n == &format!("{MS}ConnectionRequestPassword") && v.is_empty()),
        "hidden password reads empty: {ms:?}"
    );
    assert_eq!(
        value_of(&s.answers[3].body, "Device.DeviceInfo.SerialNumber"),
        "TEST0001"
    );
    assert_eq!(
        fault_of(&s.answers[4].body).code,
        FaultCode::InvalidParameterName
    );
    assert!(s.ended);
}

#[test]
fn set_parameter_values_is_atomic_with_per_parameter_faults() {
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        spv(
            &[
                (
                    &format!("{MS}PeriodicInformInterval"),
                    "300",
                    ValueType::UnsignedInt,
                ),
                (
                    "Device.DeviceInfo.ProvisioningCode",
                    "HOME-1",
                    ValueType::String,
                ),
            ],
            "key-1",
        ),
        gpv(&[
            &format!("{MS}ParameterKey"),
            &format!("{MS}PeriodicInformInterval"),
        ]),
        // One good value and four bad ones: nothing is applied.
        spv(
            &[
                (
                    "Device.DeviceInfo.ProvisioningCode",
                    "HOME-2",
                    ValueType::String,
                ),
                (
                    &format!("{MS}PeriodicInformInterval"),
                    "0",
                    ValueType::UnsignedInt,
                ),
                ("Device.DeviceInfo.SerialNumber", "X", ValueType::String),
                (
                    &format!("{MS}PeriodicInformEnable"),
                    "1",
                    ValueType::DateTime,
                ),
                ("Device.NoSuch.Param", "1", ValueType::String),
            ],
            "key-2",
        ),
        gpv(&[
            &format!("{MS}ParameterKey"),
            "Device.DeviceInfo.ProvisioningCode",
        ]),
    ]);
    let mut brgd = Brgd::new("cwmp-spv");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(s.answers.len(), 4, "{s:?}");
    match &s.answers[0].body {
        Body::SetParameterValuesResponse(r) => assert_eq!(r.status, Status::Applied),
        other => panic!("SPV answer: {other:?}"),
    }
    assert_eq!(
        value_of(&s.answers[1].body, &format!("{MS}ParameterKey")),
        "key-1"
    );
    assert_eq!(
        value_of(&s.answers[1].body, &format!("{MS}PeriodicInformInterval")),
        "300"
    );

    let fault = fault_of(&s.answers[2].body);
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    let per: Vec<(String, u32)> = fault
        .set_parameter_values_faults
        .iter()
        .map(|f| (f.parameter_name.clone(), f.code.code()))
        .collect();
    for expected in [
        (format!("{MS}PeriodicInformInterval"), 9007),
        ("Device.DeviceInfo.SerialNumber".to_owned(), 9008),
        (format!("{MS}PeriodicInformEnable"), 9006),
        ("Device.NoSuch.Param".to_owned(), 9005),
    ] {
        assert!(per.contains(&expected), "{expected:?} missing from {per:?}");
    }
    assert_eq!(
        value_of(&s.answers[3].body, &format!("{MS}ParameterKey")),
        "key-1"
    );
    assert_eq!(
        value_of(&s.answers[3].body, "Device.DeviceInfo.ProvisioningCode"),
        "HOME-1"
    );
    brgd.assert_running();
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

/// The Connection Request URL is set by the device (a new port after each restart here):
/// with notification off its change goes unreported, with active notification the next
/// Inform carries `4 VALUE CHANGE`.
#[test]
fn attributes_with_active_notification_raise_value_change() {
    let cr_url = format!("{MS}ConnectionRequestURL");
    let gpa = || {
        rpc(Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec![cr_url.clone()],
        }))
    };
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        gpa(),
        notify(&cr_url, Notification::Off),
        gpa(),
        notify("Device.DeviceInfo.UpTime", Notification::Active),
        rpc(Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec!["Device.Nope".into()],
        })),
    ]);
    let mut brgd = Brgd::new("cwmp-attr");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(
        notification_of(&s.answers[0].body),
        Notification::Active,
        "TR-181 default"
    );
    assert!(
        matches!(s.answers[1].body, Body::SetParameterAttributesResponse),
        "{s:?}"
    );
    assert_eq!(notification_of(&s.answers[2].body), Notification::Off);
    assert_eq!(
        fault_of(&s.answers[3].body).code,
        FaultCode::NotificationRequestRejected
    );
    assert_eq!(
        fault_of(&s.answers[4].body).code,
        FaultCode::InvalidParameterName
    );

    brgd.kill9();
    brgd.cr_port = free_port();
    brgd.start(&acs.url());
    let quiet = session(&acs, 2);
    assert_ne!(quiet.param(&cr_url), s.param(&cr_url), "a new CR port");
    assert_eq!(
        quiet.event_codes(),
        ["1 BOOT"],
        "notification off: no VALUE CHANGE"
    );

    acs.script(vec![notify(&cr_url, Notification::Active), gpa()]);
    let s = kick(&acs, &quiet, 3);
    assert_eq!(notification_of(&s.answers[1].body), Notification::Active);
    brgd.kill9();
    brgd.cr_port = free_port();
    brgd.start(&acs.url());
    let vc = session(&acs, 4);
    assert_eq!(vc.event_codes(), ["1 BOOT", "4 VALUE CHANGE"], "{vc:?}");
    assert_ne!(vc.param(&cr_url), quiet.param(&cr_url));
    brgd.assert_running();
}

#[test]
fn add_and_delete_objects() {
    let acs = Acs::start(AcsConfig::default());
    let bridges = "Device.Bridging.Bridge.";
    acs.script(vec![
        rpc(Body::AddObject(AddObject {
            object_name: bridges.into(),
            parameter_key: "add-1".into(),
        })),
        rpc(Body::AddObject(AddObject {
            object_name: bridges.into(),
            parameter_key: "add-2".into(),
        })),
        rpc(Body::DeleteObject(DeleteObject {
            object_name: "Device.Bridging.Bridge.1.".into(),
            parameter_key: "del-1".into(),
        })),
        rpc(Body::DeleteObject(DeleteObject {
            object_name: "Device.Bridging.Bridge.1.".into(),
            parameter_key: "del-again".into(),
        })),
        rpc(Body::AddObject(AddObject {
            object_name: "Device.DeviceInfo.".into(),
            parameter_key: "bad".into(),
        })),
        gpv(&[
            "Device.Bridging.BridgeNumberOfEntries",
            &format!("{MS}ParameterKey"),
        ]),
        rpc(Body::GetParameterNames(GetParameterNames {
            parameter_path: bridges.into(),
            next_level: true,
        })),
    ]);
    let mut brgd = Brgd::new("cwmp-obj");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    let instance = |i: usize| match &s.answers[i].body {
        Body::AddObjectResponse(r) => r.instance_number,
        other => panic!("AddObject answer: {other:?}"),
    };
    assert_eq!((instance(0), instance(1)), (1, 2));
    assert!(
        matches!(s.answers[2].body, Body::DeleteObjectResponse(_)),
        "{:?}",
        s.answers[2]
    );
    assert_eq!(
        fault_of(&s.answers[3].body).code,
        FaultCode::InvalidParameterName
    );
    assert_eq!(
        fault_of(&s.answers[4].body).code,
        FaultCode::InvalidParameterName
    );
    assert_eq!(
        value_of(&s.answers[5].body, "Device.Bridging.BridgeNumberOfEntries"),
        "1"
    );
    assert_eq!(
        value_of(&s.answers[5].body, &format!("{MS}ParameterKey")),
        "del-1"
    );
    let Body::GetParameterNamesResponse(names) = &s.answers[6].body else {
        panic!("GPN answer: {:?}", s.answers[6])
    };
    let names: Vec<&str> = names
        .parameter_list
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["Device.Bridging.Bridge.2."]);
}

/// An ACS that adds bridges without end (issue 15: 42,000 bridges in 282 s) gets 9004
/// (Resources exceeded) once the table holds `MaxBridgeEntries`; the count stays there, also
/// across a `kill -9` and restart.
#[test]
fn add_object_beyond_the_table_limit_is_9004() {
    let max = cwmp::tr181::MAX_BRIDGES as usize;
    let acs = Acs::start(AcsConfig::default());
    let add = |key: usize| {
        rpc(Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: format!("add-{key}"),
        }))
    };
    let mut script: Vec<AcsRequest> = (1..=max + 3).map(add).collect();
    script.push(gpv(&[
        "Device.Bridging.BridgeNumberOfEntries",
        "Device.Bridging.MaxBridgeEntries",
        &format!("{MS}ParameterKey"),
    ]));
    acs.script(script);
    let mut brgd = Brgd::new("cwmp-max");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(s.answers.len(), max + 4, "{s:?}");
    for (i, answer) in s.answers[..max].iter().enumerate() {
        assert!(
            matches!(&answer.body, Body::AddObjectResponse(r) if r.instance_number as usize == i + 1),
            "AddObject {} within the limit: {answer:?}",
            i + 1
        );
    }
    for answer in &s.answers[max..max + 3] {
        assert_eq!(
            fault_of(&answer.body).code,
            FaultCode::ResourcesExceeded,
            "{answer:?}"
        );
    }
    let counts = &s.answers[max + 3].body;
    let max_text = max.to_string();
    assert_eq!(
        value_of(counts, "Device.Bridging.BridgeNumberOfEntries"),
        max_text
    );
    assert_eq!(
        value_of(counts, "Device.Bridging.MaxBridgeEntries"),
        max_text
    );
    assert_eq!(
        value_of(counts, &format!("{MS}ParameterKey")),
        format!("add-{max}"),
        "a refused AddObject leaves the ParameterKey"
    );

    brgd.kill9();
    acs.script(vec![
        add(0),
        gpv(&["Device.Bridging.BridgeNumberOfEntries"]),
    ]);
    brgd.start(&acs.url());
    let s = session(&acs, 2);
    assert_eq!(
        fault_of(&s.answers[0].body).code,
        FaultCode::ResourcesExceeded
    );
    assert_eq!(
        value_of(&s.answers[1].body, "Device.Bridging.BridgeNumberOfEntries"),
        max_text
    );
    brgd.assert_running();
}

#[test]
fn value_set_survives_kill9_and_restart() {
    let (acs, mut brgd, first) = setup("cwmp-persist", AcsConfig::default());
    acs.script(vec![
        spv(
            &[(
                "Device.DeviceInfo.ProvisioningCode",
                "PERSIST-ME",
                ValueType::String,
            )],
            "p-1",
        ),
        rpc(Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: "p-2".into(),
        })),
    ]);
    let s = kick(&acs, &first, 2);
    assert_eq!(s.answers.len(), 2, "{s:?}");
    brgd.kill9();
    brgd.start(&acs.url());
    let boot = session(&acs, 3);
    assert_eq!(boot.event_codes(), ["1 BOOT"]);
    assert_eq!(
        boot.param("Device.DeviceInfo.ProvisioningCode"),
        Some("PERSIST-ME")
    );
    assert_eq!(boot.param(&format!("{MS}ParameterKey")), Some("p-2"));
    acs.script(vec![
        gpv(&["Device.Bridging.BridgeNumberOfEntries"]),
        // A new instance after the restart must not reuse number 1.
        rpc(Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: "p-3".into(),
        })),
    ]);
    let s = kick(&acs, &boot, 4);
    assert_eq!(
        value_of(&s.answers[0].body, "Device.Bridging.BridgeNumberOfEntries"),
        "1"
    );
    assert!(
        matches!(s.answers[1].body, Body::AddObjectResponse(r) if r.instance_number == 2),
        "{:?}",
        s.answers[1]
    );
}

#[test]
fn corrupt_stored_model_falls_back_to_factory_defaults() {
    let (acs, mut brgd, first) = setup("cwmp-corrupt", AcsConfig::default());
    acs.script(vec![spv(
        &[(
            "Device.DeviceInfo.ProvisioningCode",
            "SET",
            ValueType::String,
        )],
        "c-1",
    )]);
    kick(&acs, &first, 2);
    brgd.kill9();
    std::fs::write(brgd.state_file("model"), "garbage\nV Device.X 1\n")
        .expect("corrupting the model");
    brgd.start(&acs.url());
    let s = session(&acs, 3);
    assert_eq!(
        s.event_codes(),
        ["1 BOOT"],
        "a corrupt model is not a first start: {s:?}"
    );
    assert_eq!(s.param("Device.DeviceInfo.ProvisioningCode"), Some(""));
    assert_eq!(s.param(&format!("{MS}ParameterKey")), Some(""));
    brgd.assert_running();
    assert!(
        brgd.log().contains("falling back to factory defaults"),
        "{}",
        brgd.log()
    );
}

#[test]
fn connection_request_needs_digest_and_is_rate_limited() {
    let (acs, mut brgd, first) = setup("cwmp-cr", AcsConfig::default());
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let anonymous = http_get(&url, None).expect("GET");
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous.challenges.iter().any(|c| c.contains("SHA-256")),
        "{anonymous:?}"
    );
    assert!(
        anonymous.challenges.iter().any(|c| c.contains("MD5")),
        "{anonymous:?}"
    );
    assert_eq!(connection_request(&url, "cr-user", "wrong"), 401);
    assert_eq!(connection_request(&url, "someone", "cr-pass"), 401);
    let wrong_path = url
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/guess"))
        .expect("path");
    assert_eq!(http_get(&wrong_path, None).expect("GET").status, 404);

    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 200);
    let s = session(&acs, 2);
    assert_eq!(s.event_codes(), ["6 CONNECTION REQUEST"], "{s:?}");
    // Hammered: 503 within the rate-limit window.
    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 503);
    assert_eq!(
        acs.sessions().len(),
        2,
        "no session for a rate-limited request"
    );
    brgd.assert_running();
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

/// Issue 15: a flood of unauthenticated connection requests (about 10,000/s in the field)
/// locked the ACS out: every one was given a nonce in a table of 64, so the ACS's nonce was
/// gone before its answer came (9 of 10 answers got 401). With nonces that need no state
/// per challenge, every genuine request passes during the flood.
#[test]
fn connection_request_flood_does_not_lock_out_the_acs() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let acs = Acs::start(AcsConfig::default());
    let mut brgd = Brgd::new("cwmp-crflood").arg("--cr-min-interval").arg("0");
    brgd.start(&acs.url());
    let first = session(&acs, 1);
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let statuses = std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| cr_flood(&url, &stop, &answered, 200_000));
        }
        nerg_tests::wait_until("the flood to start", TIMEOUT, || {
            answered.load(Relaxed) > 500
        });
        let started = (std::time::Instant::now(), answered.load(Relaxed));
        // The ACS answers each challenge 50 ms later (a WAN round trip and its own work).
        let statuses: Vec<u16> = (0..20)
            .map(|_| {
                connection_request_after(&url, "cr-user", "cr-pass", Duration::from_millis(50))
            })
            .collect();
        let rate = (answered.load(Relaxed) - started.1) as f64 / started.0.elapsed().as_secs_f64();
        stop.store(true, Relaxed);
        (statuses, rate)
    });
    let (statuses, rate) = statuses;
    assert!(
        rate > 2000.0,
        "the flood reached only {rate:.0} requests/s: too weak to test anything"
    );
    let passed = statuses.iter().filter(|s| **s == 200).count();
    eprintln!(
        "genuine connection requests: {passed} of {} passed under {rate:.0} unauthenticated requests/s",
        statuses.len()
    );
    assert_eq!(
        passed,
        statuses.len(),
        "{passed} of {} genuine connection requests passed under a flood of {rate:.0} requests/s: {statuses:?}",
        statuses.len()
    );
    brgd.assert_running();
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Idle connections to the CR server (a slowloris) cost brgd a bounded number of file
/// descriptors: past its limit it closes new ones at once, so its sessions and its storage
/// still find descriptors. Once they are gone, connection requests work again.
#[test]
fn idle_connection_flood_costs_bounded_descriptors() {
    let (acs, mut brgd, first) = setup("cwmp-crconns", AcsConfig::default());
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("CR address");
    let pid = brgd.child.as_ref().expect("running").id();
    let before = open_fds(pid);
    let idle: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    assert!(idle.len() >= 300, "{} connections opened", idle.len());
    // Every one is accepted (kept or closed) at once.
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(pid);
    let limit = brg::agent::cr::MAX_CONNECTIONS;
    assert!(
        during <= before + limit + 4,
        "{during} descriptors with {} idle connections ({before} before, limit {limit})",
        idle.len()
    );
    brgd.assert_running();
    drop(idle);
    nerg_tests::wait_until_some("an accepted connection request", TIMEOUT, || {
        (connection_request(&url, "cr-user", "cr-pass") == 200).then_some(())
    });
    let s = session(&acs, 2);
    assert_eq!(s.event_codes(), ["6 CONNECTION REQUEST"]);
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

#[test]
fn basic_auth_towards_the_acs() {
    auth_roundtrip(
        "cwmp-basic",
        AcsAuth::Basic {
            username: "cpe".into(),
            password: "secret".into(),
        },
        "cpe",
        "secret",
    );
}

#[test]
fn digest_md5_towards_the_acs() {
    auth_roundtrip(
        "cwmp-md5",
        AcsAuth::Digest {
            username: "cpe".into(),
            password: "secret".into(),
            algorithm: brg::agent::digest::Algorithm::Md5,
        },
        "cpe",
        "secret",
    );
}

#[test]
fn digest_sha256_towards_the_acs() {
    auth_roundtrip(
        "cwmp-sha256",
        AcsAuth::Digest {
            username: "cpe".into(),
            password: "secret".into(),
            algorithm: brg::agent::digest::Algorithm::Sha256,
        },
        "cpe",
        "secret",
    );
}

#[test]
fn wrong_acs_password_fails_and_is_retried_with_backoff() {
    let acs = Acs::start(AcsConfig {
        auth: AcsAuth::Digest {
            username: "cpe".into(),
            password: "secret".into(),
            algorithm: brg::agent::digest::Algorithm::Md5,
        },
        ..AcsConfig::default()
    });
    let mut brgd = Brgd::new("cwmp-badpw")
        .arg("--acs-username")
        .arg("cpe")
        .arg("--acs-password")
        .arg("nope");
    brgd.start(&acs.url());
    wait_until("two failed attempts", TIMEOUT, || {
        acs.auth_rejections() >= 4
    });
    assert!(acs.sessions().is_empty());
    brgd.assert_running();
    assert!(brgd.log().contains("session failed"), "{}", brgd.log());
}

#[test]
fn undelivered_events_are_retried_after_the_acs_comes_back() {
    let acs = Acs::start(AcsConfig::default());
    let addr = acs.addr();
    let url = acs.url();
    drop(acs); // the ACS is down
    let mut brgd = Brgd::new("cwmp-retry");
    brgd.start(&url);
    wait_until("a failed session attempt", TIMEOUT, || {
        brgd.log().contains("session failed")
    });
    // Restart brgd while the ACS is still down: BOOTSTRAP must survive.
    brgd.kill9();
    brgd.start(&url);
    wait_until("a failed session attempt after restart", TIMEOUT, || {
        brgd.log()
            .split("--- restart ---")
            .nth(1)
            .is_some_and(|l| l.contains("session failed"))
    });
    let acs = Acs::start_at(addr, AcsConfig::default());
    let s = session(&acs, 1);
    assert_eq!(s.event_codes(), ["0 BOOTSTRAP", "1 BOOT"], "{s:?}");
    assert!(
        s.inform.retry_count >= 1,
        "RetryCount counts the failures: {s:?}"
    );
}

#[test]
fn reboot_runs_the_command_then_informs_boot_and_m_reboot() {
    let mut brgd = Brgd::new("cwmp-reboot");
    let marker = brgd.dir.join("rebooted");
    let cmd = brgd.script("reboot.sh", &format!("echo done > {}", marker.display()));
    brgd = brgd
        .arg("--reboot-command")
        .arg(cmd.to_str().expect("path"));
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![rpc(Body::Reboot(Reboot {
        command_key: "reboot-42".into(),
    }))]);
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(matches!(s.answers[0].body, Body::RebootResponse), "{s:?}");
    assert_eq!(brgd.wait_exit(), Some(0));
    assert!(marker.exists(), "the reboot command ran");
    brgd.start(&acs.url());
    let after = session(&acs, 2);
    assert!(after.has_event("1 BOOT", None), "{after:?}");
    assert!(after.has_event("M Reboot", Some("reboot-42")), "{after:?}");
    assert!(!after.has_event("0 BOOTSTRAP", None), "{after:?}");
}

#[test]
fn factory_reset_restores_defaults_and_bootstraps() {
    let (acs, brgd, first) = setup("cwmp-reset", AcsConfig::default());
    acs.script(vec![
        spv(
            &[(
                "Device.DeviceInfo.ProvisioningCode",
                "CHANGED",
                ValueType::String,
            )],
            "r-1",
        ),
        rpc(Body::FactoryReset),
    ]);
    let s = kick(&acs, &first, 2);
    assert!(
        matches!(s.answers[1].body, Body::FactoryResetResponse),
        "{s:?}"
    );
    let after = session(&acs, 3);
    assert!(after.has_event("0 BOOTSTRAP", None), "{after:?}");
    assert_eq!(after.param("Device.DeviceInfo.ProvisioningCode"), Some(""));
    assert_eq!(after.param(&format!("{MS}ParameterKey")), Some(""));
    drop(brgd);
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

#[test]
fn download_then_transfer_complete() {
    let mut brgd = Brgd::new("cwmp-dl");
    let applied = brgd.dir.join("applied");
    let cmd = brgd.script(
        "firmware.sh",
        &format!(
            "grep -q NERG-FIRMWARE \"$1\" || {{ echo bad image >&2; exit 3; }}\ncp \"$1\" {}",
            applied.display()
        ),
    );
    brgd = brgd
        .arg("--firmware-command")
        .arg(cmd.to_str().expect("path"))
        .arg("--cr-min-interval")
        .arg("1");
    let acs = Acs::start(AcsConfig::default());
    let image = b"NERG-FIRMWARE v2\n".repeat(100);
    acs.serve_file("/fw.bin", image.clone());
    acs.serve_file("/junk.bin", vec![b'x'; 64]);
    let base = format!("http://{}", acs.addr());
    acs.script(vec![download(
        format!("{base}/fw.bin"),
        image.len() as u32,
        "dl-ok",
    )]);
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    match &s.answers[0].body {
        Body::DownloadResponse(r) => assert_eq!(r.status, Status::Pending),
        other => panic!("Download answer: {other:?}"),
    }
    let tc = session(&acs, 2);
    assert!(tc.has_event("7 TRANSFER COMPLETE", None), "{tc:?}");
    assert!(tc.has_event("M Download", Some("dl-ok")), "{tc:?}");
    assert_eq!(transfer_fault(&tc), None, "{tc:?}");
    assert_eq!(
        std::fs::read(&applied).expect("the firmware command ran"),
        image
    );

    // Failures: wrong size (9017 short / 9018 long), missing file (9016), refused image (9018).
    for (n, (path, size, code)) in [
        ("/fw.bin", image.len() as u32 + 10, 9017),
        ("/fw.bin", 100, 9018),
        ("/missing.bin", 0, 9016),
        ("/junk.bin", 64, 9018),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("dl-{n}");
        acs.script(vec![download(format!("{base}{path}"), size, &key)]);
        let sessions_before = acs.sessions().len();
        let first = acs.sessions()[0].clone();
        kick(&acs, &first, sessions_before + 1);
        let tc = session(&acs, sessions_before + 2);
        assert!(tc.has_event("M Download", Some(&key)), "{tc:?}");
        assert_eq!(
            transfer_fault(&tc),
            Some(code),
            "{path} size {size}: {tc:?}"
        );
    }
    brgd.assert_running();
}

#[test]
fn https_with_a_test_ca() {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "NERG test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");

    let acs = Acs::start(AcsConfig {
        tls: Some((cert.pem(), key.serialize_pem())),
        ..AcsConfig::default()
    });
    assert!(acs.url().starts_with("https://"));
    acs.script(vec![gpv(&["Device.DeviceInfo.SerialNumber"])]);
    let mut brgd = Brgd::new("cwmp-tls");
    let ca_file = brgd.dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("CA file");
    brgd = brgd.arg("--acs-ca").arg(ca_file.to_str().expect("path"));
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(
        value_of(&s.answers[0].body, "Device.DeviceInfo.SerialNumber"),
        "TEST0001"
    );

    // Without the CA the handshake fails: no session, brgd keeps retrying.
    let mut untrusting = Brgd::new("cwmp-tls-untrusted");
    untrusting.start(&acs.url());
    wait_until("a failed TLS session", TIMEOUT, || {
        untrusting.log().contains("TLS handshake")
    });
    assert_eq!(acs.sessions().len(), 1);
    untrusting.assert_running();
}

#[test]
fn hostile_acs_input_is_bounded_and_changes_nothing() {
    let acs = Acs::start(AcsConfig::default());
    let mut brgd = Brgd::new("cwmp-hostile").arg("--cr-min-interval").arg("1");
    brgd.start(&acs.url());
    let first = session(&acs, 1);
    acs.script(vec![spv(
        &[(
            "Device.DeviceInfo.ProvisioningCode",
            "BEFORE",
            ValueType::String,
        )],
        "h-0",
    )]);
    kick(&acs, &first, 2);
    // The snapshot and the journal of changes since (see brg::agent::store).
    let stored_model = || {
        ["model", "model.journal"].map(|f| {
            std::fs::read_to_string(brgd.state_file(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
        })
    };
    let stored = stored_model();

    let env = |body: &str| {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">h</cwmp:ID></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        )
        .into_bytes()
    };
    let spv_body = |value: &str| {
        format!(
            r#"<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.ProvisioningCode</Name><Value>{value}</Value></ParameterValueStruct></ParameterList><ParameterKey>evil</ParameterKey></cwmp:SetParameterValues>"#
        )
    };
    let entity = {
        let mut doc = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>"#.to_vec();
        doc.extend(env(&spv_body("&lol2;")));
        doc
    };
    let deep = env(&format!(
        "{}{}",
        "<a>".repeat(10_000),
        "</a>".repeat(10_000)
    ));
    let oversized = env(&spv_body(&"A".repeat(2 << 20)));
    let wrong_type = env(
        r#"<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>perhaps</NextLevel></cwmp:GetParameterNames>"#,
    );
    let wrong_struct = env(
        r#"<cwmp:ScheduleInform><DelaySeconds>-5</DelaySeconds><CommandKey>x</CommandKey></cwmp:ScheduleInform>"#,
    );

    // All in one session: an undecodable request is answered with a fault (9003, or 9004
    // for one over a limit) and the session goes on (see also
    // `malformed_acs_requests_are_answered_with_faults`); malformed arguments get 9003.
    let before = acs.sessions().len();
    let code = gpv(&["Device.DeviceInfo.ProvisioningCode"]);
    acs.script(vec![
        AcsRequest::Raw(entity),
        code.clone(),
        AcsRequest::Raw(deep),
        code.clone(),
        AcsRequest::Raw(oversized),
        AcsRequest::Raw(wrong_type),
        AcsRequest::Raw(wrong_struct),
    ]);
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    nerg_tests::wait_until_some("an accepted connection request", TIMEOUT, || {
        (connection_request(&url, "cr-user", "cr-pass") == 200).then_some(())
    });
    let s = session_ended_after(&acs, before + 1);
    assert_eq!(acs.sessions().len(), before + 1, "one session did it all");
    assert!(!brgd.log().contains("session failed"), "{}", brgd.log());
    let codes: Vec<Option<FaultCode>> = s
        .answers
        .iter()
        .map(|a| match &a.body {
            Body::Fault(f) => Some(f.code),
            _ => None,
        })
        .collect();
    use FaultCode::{InvalidArguments, ResourcesExceeded};
    assert_eq!(
        codes,
        [
            Some(InvalidArguments),
            None,
            Some(ResourcesExceeded),
            None,
            Some(ResourcesExceeded),
            Some(InvalidArguments),
            Some(InvalidArguments),
        ],
        "{s:?}"
    );
    assert_eq!(
        value_of(&s.answers[3].body, "Device.DeviceInfo.ProvisioningCode"),
        "BEFORE"
    );
    assert_eq!(
        stored_model(),
        stored,
        "hostile input changed the stored model"
    );
    brgd.assert_running();

    // The CR server bounds its input too.
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("addr")
        .to_owned();
    let status = raw_http(
        &addr,
        &format!("POST /x HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100000000\r\n\r\n"),
    );
    assert!(status == Some(404) || status == Some(405), "{status:?}");
    let path = url.splitn(4, '/').nth(3).expect("path");
    let status = raw_http(
        &addr,
        &format!("GET /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100000000\r\n\r\n"),
    );
    assert_eq!(status, Some(413));
    let status = raw_http(
        &addr,
        &format!(
            "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Digest {}\r\n\r\n",
            "x=\"".repeat(2000)
        ),
    );
    assert_eq!(status, Some(401));
    brgd.assert_running();
}

/// A SOAP envelope around `body`, with `cwmp:ID` `id` (hostile-input tests).
fn raw_envelope(id: &str, body: &str) -> Vec<u8> {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">{id}</cwmp:ID></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
    .into_bytes()
}

/// Issue 15: an ACS whose answer to the Inform brgd cannot use (here: over the 1 MiB
/// limit) fails every session. brgd retries as TR-069 3.2.1.1 says (the n-th retry waits
/// m*k^(n-1) to m*k^n seconds, here m = 1 s and k = 2.0: 1-2, 2-4, 4-8 s), counts the
/// retries in the Informs' RetryCount, and logs the reason once, not at every retry.
#[test]
fn unusable_inform_response_is_retried_with_backoff_and_logged_once() {
    let oversized = raw_envelope(
        "x",
        &format!(
            "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes>{}</cwmp:InformResponse>",
            " ".repeat(2 << 20)
        ),
    );
    let acs = Acs::start(AcsConfig {
        inform_response: Some(oversized),
        ..AcsConfig::default()
    });
    let mut brgd = Brgd::new("cwmp-backoff");
    std::fs::write(
        brgd.dir.join("factory"),
        FACTORY.replace(
            "CWMPRetryIntervalMultiplier 1000",
            "CWMPRetryIntervalMultiplier 2000",
        ),
    )
    .expect("factory defaults");
    brgd.start(&acs.url());
    let sessions = nerg_tests::wait_until_some("four attempts", TIMEOUT, || {
        let s = acs.sessions();
        (s.len() >= 4).then_some(s)
    });
    brgd.assert_running();
    let counts: Vec<u32> = sessions.iter().map(|s| s.inform.retry_count).collect();
    assert_eq!(counts[..4], [0, 1, 2, 3], "RetryCount");
    let policy = cwmp::session::RetryPolicy {
        minimum_wait: 1,
        multiplier: 2000,
    };
    for (n, pair) in sessions[..4].windows(2).enumerate() {
        let retry = n as u32 + 1;
        let gap = pair[1]
            .started
            .duration_since(pair[0].started)
            .as_secs_f64();
        let range = policy.wait_range(retry);
        // The wait starts once the 1 MiB answer is read and refused; then an Inform.
        let (low, high) = (*range.start() as f64, *range.end() as f64 + 0.9);
        assert!(
            (low..=high).contains(&gap),
            "retry {retry}: {gap:.2} s after the attempt before, outside {range:?} s"
        );
    }
    let gaps: Vec<String> = sessions[..4]
        .windows(2)
        .map(|p| {
            format!(
                "{:.2}",
                p[1].started.duration_since(p[0].started).as_secs_f64()
            )
        })
        .collect();
    eprintln!("retry waits (s): {}", gaps.join(", "));
    let log = brgd.log();
    assert_eq!(
        log.matches("1048576 bytes").count(),
        1,
        "the reason is logged once, not at every retry:\n{log}"
    );
}

/// A request brgd cannot decode is answered with a CWMP fault within the session (9004 when
/// it exceeds a limit, else 9003), and the session goes on; a second one in a row ends the
/// session (a broken ACS gets no ping-pong of faults).
#[test]
fn malformed_acs_requests_are_answered_with_faults() {
    let acs = Acs::start(AcsConfig::default());
    let garbage = b"<html><body>502 Bad Gateway</body></html>".to_vec();
    let not_closed = raw_envelope("nc", "<cwmp:GetRPCMethods>");
    let too_many = raw_envelope(
        "tm",
        &format!(
            "<cwmp:GetParameterValues><ParameterNames>{}</ParameterNames></cwmp:GetParameterValues>",
            "<string>Device.</string>".repeat(10_000)
        ),
    );
    acs.script(vec![
        AcsRequest::Raw(garbage.clone()),
        gpv(&["Device.DeviceInfo.SerialNumber"]),
        AcsRequest::Raw(not_closed),
        AcsRequest::Raw(too_many.clone()),
    ]);
    acs.script(vec![gpv(&["Device.DeviceInfo.SerialNumber"])]);
    let mut brgd = Brgd::new("cwmp-malformed");
    brgd.start(&acs.url());
    // Session 1 is over when session 2 (its retry) has started.
    let s = nerg_tests::wait_until_some("a retry after session 1", TIMEOUT, || {
        let sessions = acs.sessions();
        (sessions.len() >= 2).then(|| sessions[0].clone())
    });
    assert!(!s.ended, "{s:?}");
    assert_eq!(s.answers.len(), 3, "{s:?}");
    assert_eq!(
        fault_of(&s.answers[0].body).code,
        FaultCode::InvalidArguments
    );
    assert_eq!(
        value_of(&s.answers[1].body, "Device.DeviceInfo.SerialNumber"),
        "TEST0001"
    );
    assert_eq!(
        fault_of(&s.answers[2].body).code,
        FaultCode::InvalidArguments
    );
    // The fourth, a second malformed request in a row, ended the session: no answer, and
    // the retry (1 s later) runs the next script.
    let s = nth_session_ended(&acs, 2);
    assert_eq!(s.inform.retry_count, 1, "{s:?}");
    assert_eq!(s.answers.len(), 1);
    // A request over a limit is 9004.
    acs.script(vec![AcsRequest::Raw(too_many)]);
    let url = s
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 200);
    let s = nth_session_ended(&acs, 3);
    assert_eq!(
        fault_of(&s.answers[0].body).code,
        FaultCode::ResourcesExceeded,
        "{s:?}"
    );
    brgd.assert_running();
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

#[test]
fn periodic_and_scheduled_informs() {
    let mut brgd = Brgd::new("cwmp-periodic");
    std::fs::write(
        brgd.dir.join("factory"),
        FACTORY.replace("PeriodicInformEnable false", "PeriodicInformEnable true")
            + "V Device.ManagementServer.PeriodicInformInterval 2\n",
    )
    .expect("factory defaults");
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        rpc(Body::ScheduleInform(cwmp::soap::ScheduleInform {
            delay_seconds: 1,
            command_key: "sched-1".into(),
        })),
        // DelaySeconds 0 is invalid (TR-069 A.4.1.1).
        rpc(Body::ScheduleInform(cwmp::soap::ScheduleInform {
            delay_seconds: 0,
            command_key: "sched-0".into(),
        })),
    ]);
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(
        matches!(s.answers[0].body, Body::ScheduleInformResponse),
        "{s:?}"
    );
    assert_eq!(
        fault_of(&s.answers[1].body).code,
        FaultCode::InvalidArguments
    );
    let sessions =
        nerg_tests::wait_until_some("a scheduled and two periodic informs", TIMEOUT, || {
            let all = acs.sessions();
            let scheduled = all.iter().any(|s| {
                s.has_event("3 SCHEDULED", None) && s.has_event("M ScheduleInform", Some("sched-1"))
            });
            let periodic = all
                .iter()
                .filter(|s| s.has_event("2 PERIODIC", None))
                .count();
            (scheduled && periodic >= 2).then_some(all)
        });
    assert!(
        !sessions
            .iter()
            .any(|s| s.has_event("M ScheduleInform", Some("sched-0")))
    );
    brgd.assert_running();
}

/// ACSs answer in the namespace they speak (cwmp-1-0 .. cwmp-1-3 in the field): brgd answers
/// each request in the request's namespace.
#[test]
fn answers_in_the_namespace_of_the_request() {
    for ns in [cwmp::soap::CwmpVersion::V1_0, cwmp::soap::CwmpVersion::V1_3] {
        let acs = Acs::start(AcsConfig {
            request_ns: Some(ns),
            ..AcsConfig::default()
        });
        acs.script(vec![
            rpc(Body::GetParameterNames(GetParameterNames {
                parameter_path: String::new(),
                next_level: true,
            })),
            gpv(&["Device.DeviceInfo.SerialNumber"]),
        ]);
        let mut brgd = Brgd::new("cwmp-ns");
        brgd.start(&acs.url());
        let s = session(&acs, 1);
        assert_eq!(s.answers.len(), 2, "{s:?}");
        for a in &s.answers {
            assert_eq!(a.ns, ns, "{a:?}");
        }
        let Body::GetParameterNamesResponse(r) = &s.answers[0].body else {
            panic!("GPN answer: {:?}", s.answers[0])
        };
        let names: Vec<&str> = r.parameter_list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["Device."],
            "empty path with NextLevel true names the root"
        );
        assert_eq!(
            value_of(&s.answers[1].body, "Device.DeviceInfo.SerialNumber"),
            "TEST0001"
        );
    }
}

/// An ACS that hands the CPE over to another one: the new URL gets `0 BOOTSTRAP`.
#[test]
fn acs_url_change_bootstraps_the_new_acs() {
    let old = Acs::start(AcsConfig::default());
    let new = Acs::start(AcsConfig::default());
    old.script(vec![spv(
        &[(&format!("{MS}URL"), &new.url(), ValueType::String)],
        "move",
    )]);
    let mut brgd = Brgd::new("cwmp-move");
    brgd.start(&old.url());
    session(&old, 1);
    let s = session(&new, 1);
    assert!(s.has_event("0 BOOTSTRAP", None), "{s:?}");
    assert_eq!(s.param(&format!("{MS}ParameterKey")), Some("move"));
    assert_eq!(old.sessions().len(), 1);
    brgd.assert_running();
}

/// Footprint guard: brgd's resident memory after a session stays small (a release build
/// idles at about 7 MiB; this debug build is allowed far more, but not a runaway).
#[test]
fn idle_memory_after_a_session_is_bounded() {
    let (_acs, mut brgd, _) = setup("cwmp-rss", AcsConfig::default());
    let pid = brgd.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    eprintln!("brgd idle VmRSS: {rss_kib} KiB");
    assert!(
        rss_kib > 0 && rss_kib < 48 * 1024,
        "brgd idles at {rss_kib} KiB"
    );
    brgd.assert_running();
}

/// A download cut short by a crash is still reported: TransferComplete with 9010 after the
/// restart, with `7 TRANSFER COMPLETE` and `M Download`.
#[test]
fn interrupted_download_is_reported_after_restart() {
    // The ACS ends its session 2 s after the DownloadResponse; brgd is killed in between
    // (the download was lost when its marker came only after the session).
    let acs = Acs::start(AcsConfig {
        end_delay: Some(Duration::from_secs(2)),
        ..AcsConfig::default()
    });
    acs.serve_file("/fw.bin", b"NERG-FIRMWARE".to_vec());
    acs.script(vec![rpc(Body::Download(Download {
        command_key: "dl-crash".into(),
        file_type: "1 Firmware Upgrade Image".into(),
        url: format!("http://{}/fw.bin", acs.addr()),
        delay_seconds: 3600,
        ..Download::default()
    }))]);
    let mut brgd = Brgd::new("cwmp-dl-crash");
    brgd.start(&acs.url());
    let s = nerg_tests::wait_until_some("the DownloadResponse", TIMEOUT, || {
        acs.sessions()
            .into_iter()
            .next()
            .filter(|s| !s.answers.is_empty())
    });
    assert!(
        matches!(s.answers[0].body, Body::DownloadResponse(_)),
        "{s:?}"
    );
    assert!(!s.ended);
    brgd.kill9();
    brgd.start(&acs.url());
    let after = nth_session_ended(&acs, 2);
    assert!(after.has_event("1 BOOT", None), "{after:?}");
    assert!(after.has_event("7 TRANSFER COMPLETE", None), "{after:?}");
    assert!(after.has_event("M Download", Some("dl-crash")), "{after:?}");
    assert_eq!(transfer_fault(&after), Some(9010), "{after:?}");
    // Acknowledged: not reported again.
    brgd.kill9();
    brgd.start(&acs.url());
    let third = nth_session_ended(&acs, 3);
    assert_eq!(third.event_codes(), ["1 BOOT"], "{third:?}");
    assert!(third.cpe_requests.is_empty());
}

/// An ACS that accepts the connection and never answers: the request times out
/// (`--acs-timeout`), the session fails and is retried; brgd keeps running. Also checks the
/// JSON log format.
#[test]
fn silent_acs_times_out_and_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let url = format!("http://{}/acs", listener.local_addr().expect("addr"));
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                held.lock().expect("lock").push(stream); // accepted, never answered
            }
        });
    }
    let mut brgd = Brgd::new("cwmp-silent")
        .arg("--acs-timeout")
        .arg("1")
        .arg("--log-format")
        .arg("json");
    brgd.start(&url);
    // A new connection per attempt.
    wait_until("three attempts", TIMEOUT, || {
        held.lock().expect("lock").len() >= 3
    });
    wait_until("the third to time out", TIMEOUT, || {
        brgd.log().matches("session failed again").count() >= 2
    });
    assert_eq!(
        brgd.log()
            .matches("timed out waiting for the response")
            .count(),
        1,
        "the reason logged once"
    );
    brgd.assert_running();
    for line in brgd.log().lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains("\"level\""),
            "not a JSON log line: {line}"
        );
    }
}

/// TR-069 3.4.5: an ACS (or its load balancer) redirects the Inform; the whole session runs
/// at the new location, the configured URL stays (no BOOTSTRAP at the next session).
#[test]
fn inform_follows_a_redirect() {
    let target = Acs::start(AcsConfig::default());
    let front = Acs::start(AcsConfig {
        redirect: Some(target.url()),
        ..AcsConfig::default()
    });
    target.script(vec![gpv(&[&format!("{MS}URL")])]);
    let mut brgd = Brgd::new("cwmp-redirect");
    brgd.start(&front.url());
    let s = session(&target, 1);
    assert_eq!(s.event_codes(), ["0 BOOTSTRAP", "1 BOOT"], "{s:?}");
    assert_eq!(
        value_of(&s.answers[0].body, &format!("{MS}URL")),
        front.url()
    );
    assert_eq!(front.redirected(), 1);
    assert!(front.sessions().is_empty());
    brgd.assert_running();
}

/// A ScheduleInform survives a restart: the scheduled session still comes, with
/// `3 SCHEDULED` and `M ScheduleInform`.
#[test]
fn scheduled_inform_survives_a_restart() {
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![rpc(Body::ScheduleInform(
        cwmp::soap::ScheduleInform {
            delay_seconds: 2,
            command_key: "after-restart".into(),
        },
    ))]);
    let mut brgd = Brgd::new("cwmp-sched");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(
        matches!(s.answers[0].body, Body::ScheduleInformResponse),
        "{s:?}"
    );
    brgd.kill9();
    brgd.start(&acs.url());
    let scheduled = nerg_tests::wait_until_some("the scheduled inform", TIMEOUT, || {
        acs.sessions()
            .into_iter()
            .find(|s| s.has_event("M ScheduleInform", Some("after-restart")))
    });
    assert!(scheduled.has_event("3 SCHEDULED", None), "{scheduled:?}");
    brgd.assert_running();
}
