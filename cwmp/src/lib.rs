//! TR-069 CWMP engine: SOAP codec, session state machine and data-model tree, free of OS specifics.
//!
//! - [`soap`]: CWMP envelopes to and from bytes; [`fault`]: fault codes.
//! - [`model`]: the typed data-model tree with attributes, ParameterKey, atomic writes,
//!   value-change tracking and a journal of its persistent changes, over a
//!   [`model::Schema`] and a [`model::Backend`] the embedding application provides.
//! - [`tr181`]: the TR-181 Device:2 objects a bridged gateway exposes, checked against the
//!   Broadband Forum's XML, and a reader for that XML.
//! - [`session`]: the CPE side of a CWMP session as an I/O-free state machine, with the
//!   event queue and the retry backoff.
//! - [`time`]: `xsd:dateTime` helpers.
//!
//! Nothing here does I/O or reads a clock: bytes and times go in, bytes and actions come out.

#![deny(unsafe_code)]

pub mod fault;
pub mod model;
pub mod session;
pub mod soap;
pub mod time;
pub mod tr181;
