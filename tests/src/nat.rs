//! NAT table entries written the way the control plane writes them, for tests that drive
//! the fast path without vgd.

use std::{net::Ipv4Addr, path::Path};

use nerg_abi::SubscriberId;
use vg::fastpath::maps::{PinnedMaps, StaticMapping};

/// A port forward of home `sub`: `public` (its address and a port of its blocks) to the
/// home host's `private` address and port, for `proto`; the static mapping pair vgd writes
/// ([`PinnedMaps::insert_static`]) in the pinned NAT tables of `pin_dir`. The host's MAC
/// comes from the host table at forwarding time.
pub fn port_forward(
    pin_dir: &Path,
    sub: SubscriberId,
    public: (Ipv4Addr, u16),
    private: (Ipv4Addr, u16),
    proto: u8,
) {
    let mapping = StaticMapping::new(sub, proto, public.0, public.1, private.0, private.1);
    PinnedMaps::open(pin_dir)
        .expect("opening the pinned maps")
        .insert_static(&mapping)
        .expect("writing the static mapping pair");
}
