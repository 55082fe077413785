//! The NERG virtual Gateway: fast-path loader, control plane, API and metrics.

pub mod api;
pub mod blocklog;
pub mod control;
pub mod fastpath;
pub mod http;
pub mod metrics;
pub mod slowpath;
pub mod store;

pub use vg_engines::{config, dhcp, nat};
