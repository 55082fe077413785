//! TR-069 CWMP engine: SOAP codec, session state machine and data-model tree, free of OS specifics.
//!
//! This increment holds the SOAP codec ([`soap`]) and the CWMP fault codes ([`fault`]). Like
//! the rest of the crate they do no I/O: bytes in, typed messages out, and back.

#![deny(unsafe_code)]

pub mod fault;
pub mod soap;
