//! A device's VLAN offloads switched off through the kernel's ethtool interface
//! (`lsl::offload`), checked with Debian's `ethtool -k` on a veth in a test namespace.

use nerg_tests::{Netns, netns::veth, require_root};

/// `ethtool -k dev`'s state of `feature` ("on" or "off", with any "[fixed]" note cut).
/// `ethtool` shows two of the kernel's feature names by their older aliases.
fn ethtool_k(ns: &Netns, dev: &str, feature: &str) -> String {
    let feature = match feature {
        "rx-vlan-hw-parse" => "rx-vlan-offload",
        "tx-vlan-hw-insert" => "tx-vlan-offload",
        other => other,
    };
    let out = String::from_utf8_lossy(&ns.exec("ethtool", &["-k", dev]).stdout).into_owned();
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{feature}:")))
        .unwrap_or_else(|| panic!("ethtool -k {dev} shows no {feature}:\n{out}"));
    line.split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn vlan_offloads_are_switched_off_as_ethtool_sees_them() {
    require_root();
    let a = Netns::new("offl-a");
    let b = Netns::new("offl-b");
    veth(&a, "t0", &b, "t1");
    // A veth parses and inserts tags by default: the starting point the call must change.
    for f in lsl::offload::RECEIVE_VLAN
        .iter()
        .chain(lsl::offload::TRANSMIT_VLAN)
    {
        assert_eq!(ethtool_k(&a, "t0", f), "on", "{f} before");
    }
    let done = a
        .run(|| lsl::offload::switch_off("t0", lsl::offload::RECEIVE_VLAN))
        .expect("switching receive offloads off");
    assert_eq!(done.off, lsl::offload::RECEIVE_VLAN);
    assert!(done.absent.is_empty());
    for f in lsl::offload::RECEIVE_VLAN {
        assert_eq!(ethtool_k(&a, "t0", f), "off", "{f} after");
        assert_eq!(a.run(|| lsl::offload::is_on("t0", f)).unwrap(), Some(false));
    }
    // The transmit side was left alone; then it goes too.
    for f in lsl::offload::TRANSMIT_VLAN {
        assert_eq!(ethtool_k(&a, "t0", f), "on", "{f} untouched");
    }
    a.run(|| lsl::offload::switch_off("t0", lsl::offload::TRANSMIT_VLAN))
        .expect("switching transmit offloads off");
    for f in lsl::offload::TRANSMIT_VLAN {
        assert_eq!(ethtool_k(&a, "t0", f), "off", "{f} after");
    }
    // Idempotent, and a feature no device has is reported, not an error.
    let again = a
        .run(|| lsl::offload::switch_off("t0", &["rx-vlan-hw-parse", "no-such-feature"]))
        .unwrap();
    assert_eq!(again.off, ["rx-vlan-hw-parse"]);
    assert_eq!(again.absent, ["no-such-feature"]);
    // The peer in the other namespace was never touched.
    assert_eq!(ethtool_k(&b, "t1", "rx-vlan-hw-parse"), "on");
    // A device that is not in the caller's namespace is an error naming it.
    let err = a.run(|| lsl::offload::switch_off("t1", lsl::offload::RECEIVE_VLAN));
    assert!(
        matches!(&err, Err(lsl::offload::OffloadError::Call { dev, .. }) if dev == "t1"),
        "{err:?}"
    );
}
