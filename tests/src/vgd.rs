//! Running `vgd` inside a test namespace and waiting until it is ready.

use std::{net::SocketAddr, time::Duration};

use crate::{Netns, NsProcess, bin, http, wait_until};

/// Where each test's vgd listens, inside its own namespace (so it never clashes).
pub const LISTEN: &str = "127.0.0.1:9180";

/// The REST API token every test vgd gets (`--api-token-file`).
pub const API_TOKEN: &str = "nerg-test-api-token-0123456789";

/// How long vgd may take to load, attach and answer `/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `vgd` in `ns` on `access_iface` as `instance` (maps pinned in
/// `<bpffs>/nerg/<instance>`), and waits until `/ready` answers 200 (fails at once, with
/// vgd's log, if it exits instead).
pub fn start(ns: &Netns, access_iface: &str, instance: &str) -> NsProcess {
    start_with_config(ns, access_iface, instance, None)
}

/// [`start`] with a configuration file.
pub fn start_with_config(
    ns: &Netns,
    access_iface: &str,
    instance: &str,
    config: Option<&std::path::Path>,
) -> NsProcess {
    start_with_config_and_core(ns, access_iface, None, instance, config)
}

/// [`start`] with a core interface (downstream NAT) and a configuration file.
pub fn start_with_config_and_core(
    ns: &Netns,
    access_iface: &str,
    core_iface: Option<&str>,
    instance: &str,
    config: Option<&std::path::Path>,
) -> NsProcess {
    start_via(
        ns,
        ns.command(bin("vgd")),
        access_iface,
        core_iface,
        instance,
        config,
    )
}

/// [`start_with_config_and_core`] through the launcher `cmd`, which runs vgd inside `ns`
/// (vgd's own arguments are appended): `nsenter --net` normally, `ip netns exec` to see what
/// vgd does in a private mount namespace.
pub fn start_via(
    ns: &Netns,
    mut cmd: std::process::Command,
    access_iface: &str,
    core_iface: Option<&str>,
    instance: &str,
    config: Option<&std::path::Path>,
) -> NsProcess {
    let state = state_dir(instance);
    std::fs::create_dir_all(&state).expect("vgd state dir");
    let token = state.join("api-token");
    std::fs::write(&token, API_TOKEN).expect("API token file");
    cmd.arg("--state-dir").arg(&state);
    cmd.arg("--api-token-file").arg(&token);
    if let Some(core) = core_iface {
        cmd.args(["--core-iface", core]);
    }
    cmd.args([
        "--access-iface",
        access_iface,
        "--instance",
        instance,
        "--listen",
        LISTEN,
    ]);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let mut vgd = ns.spawn("vgd", &mut cmd);
    let addr = listen_addr();
    wait_until("vgd to answer /ready", READY_TIMEOUT, || {
        vgd.assert_running();
        ns.run(|| http::get(addr, "/ready"))
            .is_some_and(|(code, _)| code == 200)
    });
    vgd
}

/// Where a test vgd of `instance` keeps its state (the lease store): under the temp dir, so
/// that a restarted vgd finds it and tests never touch /var/lib. Removed with the instance's
/// pins ([`crate::PinDir`], [`crate::topology::Topology`]).
pub fn state_dir(instance: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{instance}.state"))
}

/// The address vgd listens on inside the test namespace.
pub fn listen_addr() -> SocketAddr {
    LISTEN.parse().expect("valid listen address")
}

/// GETs `/metrics` from the vgd in `ns`.
pub fn metrics(ns: &Netns) -> String {
    let (code, body) = ns
        .run(|| http::get(listen_addr(), "/metrics"))
        .expect("vgd answers /metrics");
    assert_eq!(code, 200, "/metrics: {body}");
    body
}

/// Calls vgd's REST API in `ns` with the test token: `method path` with a JSON `body`;
/// returns status and body.
pub fn api(ns: &Netns, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let auth = format!("Bearer {API_TOKEN}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    ns.run(|| {
        http::request(
            listen_addr(),
            method,
            path,
            &headers,
            body.unwrap_or("").as_bytes(),
        )
    })
    .unwrap_or_else(|| panic!("vgd does not answer {method} {path}"))
}

/// Gives home `id` (on `lsl`) the speed tier `down`/`up` (e.g. `"100M"`; `None`: no limit)
/// through the API of the vgd in `ns`, as an operator would at run time; status and body.
pub fn put_tier(
    ns: &Netns,
    id: u32,
    lsl: &str,
    down: Option<&str>,
    up: Option<&str>,
) -> (u16, String) {
    let body = serde_json::json!({ "id": id, "lsl": lsl, "qos": { "down": down, "up": up } });
    api(
        ns,
        "PUT",
        &format!("/api/v1/subscribers/{id}"),
        Some(&body.to_string()),
    )
}
