//! The vgd container image (`cargo xtask image`, `deploy/container/Containerfile`): built
//! with podman from the binaries these tests run, `FROM scratch`; vgd runs from it in the
//! vG's namespace of a whole topology as the image's non-root user with exactly
//! [`container::CAPABILITIES`], and homes on every LSL kind get leases and reach the
//! internet through its NAT (what `cargo xtask lab --container` shows).

use std::{path::Path, process::Command, time::Duration};

use nerg_tests::{
    bin, container, http,
    topology::{DhcpClient, HomeLsl, HomeSpec, Naming, SERVER, Topology, WEB_PAGE},
};

const HOMES: [HomeSpec; 3] = [
    HomeSpec {
        id: 1,
        lsl: HomeLsl::Vlan(101),
        client: DhcpClient::Dhclient,
    },
    HomeSpec {
        id: 2,
        lsl: HomeLsl::Qinq(10, 102),
        client: DhcpClient::Udhcpc,
    },
    HomeSpec {
        id: 3,
        lsl: HomeLsl::Vxlan(5003),
        client: DhcpClient::Dhcpcd,
    },
];

/// Where the test's images go (tagged with the test's unique name).
const REPOSITORY: &str = "localhost/nerg/vgd";

/// The image the issue sizes vgd's image against.
const MAX_IMAGE_MIB: f64 = 40.0;

/// A test image, removed on drop.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = container::podman()
            .args(["rmi", "--force", &self.0])
            .output();
    }
}

/// Builds the image with `cargo xtask image` from the binaries beside the tests.
fn build_image(tag: &str) -> Image {
    let bin_dir = bin("vgd").parent().expect("bin dir").to_owned();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    nerg_tests::run(
        Command::new(env!("CARGO"))
            .args([
                "run",
                "--quiet",
                "--package",
                "xtask",
                "--",
                "image",
                "--tag",
                tag,
            ])
            .arg("--bin-dir")
            .arg(&bin_dir)
            .current_dir(root),
    );
    Image(tag.to_owned())
}

/// The capability names in a `/proc/<pid>/status` capability mask.
fn capability_set(hex: &str) -> Vec<&'static str> {
    // include/uapi/linux/capability.h
    let names: &[(u32, &str)] = &[
        (12, "CAP_NET_ADMIN"),
        (13, "CAP_NET_RAW"),
        (21, "CAP_SYS_ADMIN"),
        (38, "CAP_PERFMON"),
        (39, "CAP_BPF"),
    ];
    let mask = u64::from_str_radix(hex.trim(), 16).expect("capability mask");
    let known: u64 = names.iter().map(|(bit, _)| 1u64 << bit).sum();
    assert_eq!(
        mask & !known,
        0,
        "vgd holds capabilities beyond those the image grants: {hex}"
    );
    names
        .iter()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

#[test]
fn vgd_from_its_image_serves_homes() {
    nerg_tests::require_root();
    assert!(
        Command::new("podman").arg("--version").output().is_ok(),
        "podman is missing: run `cargo xtask setup` (it installs podman and runc)"
    );
    container::sweep_leftover_images(REPOSITORY);
    let instance = nerg_tests::netns::unique_name("ctr");
    let image = build_image(&format!("{REPOSITORY}:{instance}"));

    let size = container::podman()
        .args(["image", "inspect", "--format", "{{.Size}}", &image.0])
        .output()
        .expect("podman image inspect");
    let bytes: f64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .expect("image size");
    let mib = bytes / (1024.0 * 1024.0);
    eprintln!("image {}: {mib:.1} MiB", image.0);
    assert!(
        mib <= MAX_IMAGE_MIB,
        "the image is {mib:.1} MiB, over {MAX_IMAGE_MIB}"
    );

    let topo =
        Topology::build_in_container(Naming::Test("ctr".into()), &HOMES, &instance, &image.0);
    let vgd_pid = topo
        .container
        .as_ref()
        .and_then(container::Container::pid)
        .expect("vgd's container runs");

    // vgd runs as the image's user, with exactly the capabilities it is given.
    let status = std::fs::read_to_string(format!("/proc/{vgd_pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in vgd's status"))
            .trim()
            .to_owned()
    };
    let uid = container::VGD_UID.to_string();
    assert!(
        field("Uid:").split_whitespace().all(|u| u == uid),
        "vgd runs as uid {}, not {uid}",
        field("Uid:")
    );
    let mut expected = container::CAPABILITIES.to_vec();
    expected.sort_unstable();
    let mut effective = capability_set(&field("CapEff:"));
    effective.sort_unstable();
    assert_eq!(effective, expected, "vgd's effective capabilities");

    let _servers = topo.start_servers();
    let leases = topo.dhcp(Duration::from_secs(30));
    for (home, lease) in topo.homes.iter().zip(&leases) {
        if let Err(out) = lease {
            panic!(
                "home {} ({}) got no lease from the containerised vgd:\n{out}\nvgd:\n{}",
                home.spec.id,
                home.lsl_text(),
                topo.vgd.log()
            );
        }
        // Through the XDP NAT to the internet and back.
        let page = home
            .host
            .run(|| http::get((SERVER, 80).into(), "/"))
            .map(|(code, body)| (code, body == WEB_PAGE));
        assert_eq!(
            page,
            Some((200, true)),
            "home {} ({}): HTTP through the NAT; vgd:\n{}",
            home.spec.id,
            home.lsl_text(),
            topo.vgd.log()
        );
    }
}
