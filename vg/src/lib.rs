//! The NERG virtual Gateway: fast-path loader, control plane, API and metrics.

pub mod api;
pub mod blocklog;
pub mod config;
pub mod control;
pub mod dhcp;
pub mod fastpath;
pub mod http;
pub mod metrics;
pub mod nat;
pub mod slowpath;
pub mod store;
