//! The NERG BRG agent: TR-181 bridging objects on the CWMP engine, applied to Linux.

pub mod apply;
pub mod tagger;
