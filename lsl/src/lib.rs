//! Logical Subscriber Links: the LSL model and its wire formats, shared by vG, BRG and tests.
//!
//! - [`model`]: who a frame belongs to: [`LslId`] (802.1Q / QinQ / VXLAN) with validated
//!   [`Vid`] and [`Vni`], and the compact text form used by config, API and logs.
//! - [`wire`]: zero-copy `Packet`/`Repr` codecs for VLAN tags ([`wire::vlan`]) and the VXLAN
//!   header ([`wire::vxlan`]), in smoltcp's style.
//! - [`set`]: which LSLs can share an access interface ([`LslSet`]): one fast-path key
//!   ([`LslId::fast_path_key`]) per LSL, no LSL whose tags begin another's.
//! - [`encap`]: whole encapsulations around an inner Ethernet frame: [`Encap::encapsulate`]
//!   and [`decapsulate`], for tests and the vG slow path.
//! - [`offload`]: a Linux device's VLAN offloads switched off, so that tags stay in-line
//!   (the vG's access interface, a BRG's uplink).
//!
//! [`smoltcp`] is re-exported so that users build outer headers with the same version.

pub mod encap;
pub mod model;
pub mod offload;
pub mod set;
pub mod wire;

#[cfg(test)]
mod fixtures;

pub use encap::{Decapsulated, Encap, VxlanEncap, decapsulate};
pub use model::{FastPathKey, LslId, STag, Vid, Vni};
pub use set::{Clash, ClashKind, LslSet};
pub use smoltcp;
