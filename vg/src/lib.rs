//! The NERG virtual Gateway: fast-path loader, control plane, API and metrics.

pub mod fastpath;
pub mod metrics;
pub mod dhcp;
pub mod nat;
