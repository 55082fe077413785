//! The NERG BRG agent: TR-181 bridging objects on the CWMP engine, applied to Linux.
//!
//! - [`agent`]: the TR-069 CPE (ACS sessions over HTTP(S), connection requests,
//!   persistence, Reboot/FactoryReset/Download), generic over the model's backend.
//! - [`apply`]: the TR-181 model applied to Linux (bridge, vxlan device, tagger) through
//!   rtnetlink: the model's backend.
//! - [`tagger`]: the eBPF 802.1Q/QinQ tagger on the LSL uplink.
//! - [`durable`]: the atomic file replace and the durable append every stored file uses.

pub mod agent;
pub mod apply;
pub mod durable;
pub mod tagger;
