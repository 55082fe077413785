//! The slow path's dispatcher: for each punted frame, find the home, apply its rate limit,
//! and send the gateway's answer (ARP, ICMP echo, ICMP errors) back out on the home's LSL.
//! DHCP goes to the DHCP engine (wired by the control plane); everything else is counted.

use std::collections::HashMap;

use lsl::encap::DecapOptions;
use nerg_abi::{PuntReason, SubscriberId};

use super::{
    Punted,
    reply::{self, Answer, HomeLimiter, IcmpError, RateLimit},
};
use crate::config::Config;

/// Where reply frames go (the access interface's packet socket; a `Vec` in tests).
pub trait FrameSink {
    /// Sends one complete frame.
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()>;
}

impl FrameSink for super::packet_socket::PacketSocket {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        super::packet_socket::PacketSocket::send(self, frame)
    }
}

impl FrameSink for Vec<Vec<u8>> {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.push(frame.to_vec());
        Ok(())
    }
}

/// What happened to one punted frame: a stable label for the `vg_slowpath_*` metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A reply was sent; the label names its kind.
    Replied(&'static str),
    /// A DHCP request, for the DHCP engine.
    Dhcp,
    /// Not answered; the label says why.
    Ignored(&'static str),
    /// The reply could not be sent.
    SendFailed,
}

/// Answers punted frames on behalf of every home's gateway.
pub struct Responder<S> {
    homes: HashMap<SubscriberId, reply::Home>,
    limiter: HomeLimiter,
    options: DecapOptions,
    sink: S,
}

impl<S: FrameSink> Responder<S> {
    /// A responder for the homes of `config`, sending through `sink`.
    pub fn new(config: &Config, sink: S) -> Self {
        Self {
            homes: config
                .subscribers
                .values()
                .map(|s| (s.id, reply::Home::from(s)))
                .collect(),
            limiter: HomeLimiter::new(RateLimit::default()),
            options: DecapOptions {
                vxlan_port: config.fastpath.vxlan_port,
                ..DecapOptions::default()
            },
            sink,
        }
    }

    /// The sink (tests read what was sent).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Handles one punted frame at `now_ms` (a monotonic millisecond clock).
    pub fn handle(&mut self, punted: &Punted, now_ms: u64) -> Outcome {
        let sub = punted.header.sub;
        let Some(home) = self.homes.get(&sub) else {
            return Outcome::Ignored("unknown_home");
        };
        if let Err(why) = self.limiter.admit(sub, now_ms) {
            return Outcome::Ignored(why.label());
        }
        let answered = if punted.reason == Some(PuntReason::TtlExceeded) {
            reply::icmp_error(home, &punted.frame, &self.options, IcmpError::TimeExceeded)
                .map(Answer::Reply)
        } else {
            reply::answer(home, &punted.frame, &self.options)
        };
        match answered {
            Ok(Answer::Reply(reply)) => match self.sink.send(&reply.frame) {
                Ok(()) => Outcome::Replied(reply.kind.label()),
                Err(err) => {
                    tracing::warn!(sub, error = %err, "sending a slow-path reply failed");
                    Outcome::SendFailed
                }
            },
            Ok(Answer::Dhcp(_)) => Outcome::Dhcp,
            Err(why) => Outcome::Ignored(why.label()),
        }
    }
}
