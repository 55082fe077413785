//! The BRG firmware builds (`cargo xtask firmware`, which `cargo xtask test` runs first):
//! their size and linking; the aarch64 `brgd` under qemu-user through a whole CWMP session
//! with the test ACS (BOOTSTRAP, the lab's zero-touch provisioning of the bridge and a QinQ
//! LSL, a Digest-authenticated connection request, the provisioned values read back in the
//! session it opens), with `--apply log`; the same binary as the BRG of a VXLAN home in a
//! lab topology, applying to Linux; and the OpenWrt recipe's init script.
//!
//! What qemu-user 7.2 cannot run: `bpf(2)` ("Unknown syscall", ENOSYS), so an 802.1Q or
//! QinQ BRG, whose tagger is a tc eBPF program, is not emulated; rtnetlink (bridge, vxlan
//! device) is translated and works.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cwmp::soap::{Body, GetParameterValues};
use nerg_tests::acs::{Acs, AcsConfig, AcsRequest, SessionLog, connection_request};
use nerg_tests::provision;
use nerg_tests::topology::HomeLsl;

/// The issue's bound on a stripped firmware binary: 2.5 MB.
const MAX_BYTES: u64 = 2_500_000;
/// qemu-user translates every instruction: a session takes longer than native.
const TIMEOUT: Duration = Duration::from_secs(60);
const QEMU: &str = "qemu-aarch64-static";

fn firmware(cpu: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/brg-firmware")
        .join(format!("brgd-{cpu}"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask firmware` (cargo xtask test does)",
        path.display()
    );
    path
}

/// `readelf` on `path`, which must succeed.
fn readelf(args: &[&str], path: &Path) -> String {
    let out = Command::new("readelf")
        .args(args)
        .arg(path)
        .output()
        .expect("readelf (binutils) is needed: cargo xtask setup installs it");
    assert!(out.status.success(), "readelf {args:?} {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn firmware_binaries_are_small_static_and_for_their_cpu() {
    for (cpu, machine) in [("aarch64", "AArch64"), ("armv7", "ARM")] {
        let path = firmware(cpu);
        let size = std::fs::metadata(&path).expect("stat").len();
        assert!(
            size <= MAX_BYTES,
            "brgd-{cpu} is {size} bytes, over the {MAX_BYTES} of the firmware target"
        );
        let header = readelf(&["-h"], &path);
        assert!(
            header
                .lines()
                .any(|l| l.contains("Machine:") && l.contains(machine)),
            "brgd-{cpu} is not for {machine}:\n{header}"
        );
        let segments = readelf(&["-lW"], &path);
        assert!(
            !segments.contains("INTERP") && !segments.contains("DYNAMIC"),
            "brgd-{cpu} is not statically linked:\n{segments}"
        );
        let sections = readelf(&["-SW"], &path);
        assert!(!sections.contains(".symtab"), "brgd-{cpu} is not stripped");
    }
}

/// brgd (aarch64) under qemu-user, with its own state directory; killed on drop.
struct EmulatedBrgd {
    dir: PathBuf,
    child: Child,
}

impl EmulatedBrgd {
    fn start(acs_url: &str, cr_port: u16, serial: &str) -> Self {
        let dir = std::env::temp_dir().join(nerg_tests::netns::unique_name("fw-qemu"));
        std::fs::create_dir_all(&dir).expect("test directory");
        // Factory defaults as a fresh box has them: no periodic informs (the test drives
        // every session), quick retries.
        std::fs::write(
            dir.join("factory"),
            "cwmp-model 1\nV Device.ManagementServer.PeriodicInformEnable false\n\
             V Device.ManagementServer.CWMPRetryMinimumWaitInterval 1\n",
        )
        .expect("factory defaults");
        let log = std::fs::File::create(dir.join("brgd.log")).expect("log file");
        let child = Command::new(QEMU)
            .arg(firmware("aarch64"))
            .arg("--acs-url")
            .arg(acs_url)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--factory-defaults")
            .arg(dir.join("factory"))
            .args(["--interface", "lan0", "--interface", "lsl0"])
            .arg("--cr-listen")
            .arg(format!("127.0.0.1:{cr_port}"))
            .args(["--apply", "log", "--log", "info", "--serial-number", serial])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {QEMU} ({e}): cargo xtask setup installs qemu-user-static")
            });
        Self { dir, child }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("brgd.log")).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("brgd under qemu exited ({status}):\n{}", self.log());
        }
    }
}

impl Drop for EmulatedBrgd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("brgd (qemu) log:\n{}", self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits for session `n` (1-based) to end, with brgd still running.
fn ended_session(acs: &Acs, brgd: &mut EmulatedBrgd, n: usize) -> SessionLog {
    nerg_tests::wait_until_some(&format!("CWMP session {n} to end"), TIMEOUT, || {
        brgd.assert_running();
        acs.sessions().into_iter().nth(n - 1).filter(|s| s.ended)
    })
}

#[test]
fn aarch64_brgd_under_qemu_user_bootstraps_is_provisioned_and_answers_a_connection_request() {
    let serial = "FWQEMU0001";
    let lsl = HomeLsl::Qinq(10, 102);
    let acs = Acs::start(AcsConfig::default());
    acs.script_for(
        serial,
        provision::brg_script(serial, lsl, std::net::Ipv4Addr::new(10, 255, 0, 1)),
    );
    let cr_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut brgd = EmulatedBrgd::start(&acs.url(), cr_port, serial);

    // 1. BOOTSTRAP, and the whole provisioning answered without a fault.
    let first = ended_session(&acs, &mut brgd, 1);
    assert!(first.has_event("0 BOOTSTRAP", None), "{first:?}");
    assert_eq!(
        first.inform.device_id.serial_number, serial,
        "the Inform's DeviceId"
    );
    assert!(!first.faulted(), "a provisioning step faulted: {first:?}");
    let provisioned = provision::brg_script(serial, lsl, std::net::Ipv4Addr::new(10, 255, 0, 1));
    assert_eq!(
        first.answers.len(),
        provisioned.len(),
        "an answer to every provisioning request"
    );
    let url = first
        .param("Device.ManagementServer.ConnectionRequestURL")
        .expect("ConnectionRequestURL in the Inform")
        .to_owned();

    // 2. The ACS knocks with the credentials it provisioned (Digest), and reads back the
    //    bridge and LSL objects in the session that opens.
    let vt = "Device.Ethernet.VLANTermination.";
    acs.script_for(
        serial,
        vec![AcsRequest::Rpc(Body::GetParameterValues(
            GetParameterValues {
                parameter_names: vec![
                    "Device.Bridging.Bridge.1.Port.3.LowerLayers".into(),
                    format!("{vt}1.VLANID"),
                    format!("{vt}2.VLANID"),
                    format!("{vt}2.TPID"),
                ],
            },
        ))],
    );
    let status = connection_request(
        &url,
        &provision::cr_username(serial),
        &provision::cr_password(serial),
    );
    assert_eq!(status, 200, "the connection request's answer");
    let second = ended_session(&acs, &mut brgd, 2);
    assert!(second.has_event("6 CONNECTION REQUEST", None), "{second:?}");
    let Body::GetParameterValuesResponse(values) = &second.answers[0].body else {
        panic!("expected GetParameterValuesResponse: {second:?}");
    };
    let got: Vec<(&str, &str)> = values
        .parameter_list
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    for expected in [
        (
            "Device.Bridging.Bridge.1.Port.3.LowerLayers",
            "Device.Ethernet.VLANTermination.1",
        ),
        ("Device.Ethernet.VLANTermination.1.VLANID", "102"),
        ("Device.Ethernet.VLANTermination.2.VLANID", "10"),
        ("Device.Ethernet.VLANTermination.2.TPID", "34984"),
    ] {
        assert!(got.contains(&expected), "{expected:?} not in {got:?}");
    }
    brgd.assert_running();
}

/// The OpenWrt recipe's procd init script (`deploy/openwrt`), run by a POSIX shell with
/// stand-ins for OpenWrt's uci and procd shell functions reading the recipe's own
/// `/etc/config/brgd`: it starts brgd with a flag per option, the interfaces in order, and
/// every flag it passes is one brgd has.
#[test]
fn openwrt_init_script_maps_uci_options_to_brgd_flags() {
    let files = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/openwrt/nerg-brgd/files");
    let harness = r#"
CONF="$1/brgd.config"
value() { awk -v k="$1" -v n="$2" '$1==k && $2==n { $1=""; $2=""; sub(/^ +/, ""); gsub(/\047/, ""); print }' "$CONF"; }
config_load() { :; }
config_foreach() { "$1" main; }
config_get() { __v=$(value option "$3"); [ -n "$__v" ] || __v="$4"; eval "$1=\$__v"; }
config_get_bool() { config_get "$@"; }
config_list_foreach() { for __i in $(value list "$2"); do "$3" "$__i"; done; }
procd_open_instance() { CMD=""; }
procd_set_param() { [ "$1" = command ] && { shift; CMD="$*"; }; return 0; }
procd_append_param() { shift; CMD="$CMD $*"; }
procd_close_instance() { echo "$CMD"; }
procd_add_reload_trigger() { :; }
mkdir() { :; }
. "$1/brgd.init"
start_service
"#;
    let out = Command::new("sh")
        .args(["-c", harness, "sh"])
        .arg(&files)
        .output()
        .expect("sh");
    let command = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !command.is_empty(),
        "init script: {command}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "/usr/sbin/brgd", "{command}");
    for pair in [
        ["--acs-url", "https://acs.example.invalid:7547/"],
        ["--state-dir", "/etc/brgd/state"],
        ["--mgmt-interface", "wan.mgmt"],
        ["--cr-listen", "0.0.0.0:7547"],
        ["--log", "info"],
    ] {
        assert!(
            words.windows(2).any(|w| w == pair),
            "{pair:?} missing from {command}"
        );
    }
    let interfaces: Vec<&str> = words
        .windows(2)
        .filter(|w| w[0] == "--interface")
        .map(|w| w[1])
        .collect();
    assert_eq!(interfaces, ["lan1", "wan"], "{command}");
    assert!(
        !command.contains("--acs-username"),
        "a commented-out option became a flag: {command}"
    );
    let help = Command::new(nerg_tests::bin("brgd"))
        .arg("--help")
        .output()
        .expect("brgd --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in words.iter().filter(|w| w.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}=")),
            "the init script passes {flag}, which brgd does not have"
        );
    }
}

/// The aarch64 firmware under qemu-user as a BRG of the lab, for a VXLAN home: the lab's
/// ACS provisions it (zero touch), brgd makes the bridge and the kernel vxlan device
/// through rtnetlink (which qemu-user translates), and the home's DHCP client gets its
/// lease through it and reaches the internet through the vG. An 802.1Q or QinQ home cannot
/// run under emulation: its tagger is loaded with `bpf(2)`, which qemu-user 7.2 does not
/// implement (ENOSYS, "Unknown syscall").
#[test]
fn aarch64_brgd_under_qemu_user_is_a_vxlan_brg_of_the_lab() {
    use nerg_tests::topology::{
        BrgdProgram, DhcpClient, GATEWAY, HomeSpec, Naming, SERVER, Topology, WEB_PAGE,
    };
    let home = HomeSpec {
        id: 1,
        lsl: HomeLsl::Vxlan(5001),
        client: DhcpClient::Dhclient,
    };
    let program = BrgdProgram::Command(vec![QEMU.into(), firmware("aarch64").into()]);
    let instance = nerg_tests::netns::unique_name("fwlab");
    let topo =
        Topology::build_with_brgd(Naming::Test("fwlab".into()), &[home], &instance, &program);
    let _servers = topo.start_servers();
    let lease = topo.dhcp(TIMEOUT).remove(0);
    let lease = lease.unwrap_or_else(|e| panic!("no lease through the emulated BRG: {e}"));
    assert_eq!(lease.octets()[..3], [192, 168, 1], "{lease}");
    let h = &topo.homes[0];
    let ping = h
        .host
        .command("ping")
        .args(["-c", "2", "-i", "0.2", "-W", "2", &GATEWAY.to_string()])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping of the gateway through the emulated BRG"
    );
    let page = h
        .host
        .run(|| nerg_tests::http::get((SERVER, 80).into(), "/"));
    assert_eq!(
        page,
        Some((200, WEB_PAGE.to_owned())),
        "HTTP through the emulated BRG and the vG's NAT"
    );
}
