//! The responder end to end without a network: punted frames (built with smoltcp and the
//! `lsl` codecs, as a BRG puts them on the access network) in, reply frames, store
//! transactions and host-table changes out, in the order they happen.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::rc::Rc;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use lsl::encap::DecapOptions;
use lsl::smoltcp::phy::ChecksumCapabilities;
use lsl::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};
use lsl::{Encap, Vid};
use nerg_abi::{PuntHeader, PuntReason, SubscriberId};

use super::Punted;
use super::responder::{Batch, Commit, FrameSink, HostTable, Outcome, Responder, Stores};
use super::v6::{MemoryV6Table, NeighbourTable};
use crate::config::Config;
use crate::dhcp::{
    LeaseRecord, LeaseState, LeaseStore, MemoryStore, StoreError, StoreOp, UnixTime,
};

const T0: UnixTime = UnixTime(1_700_000_000);
const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 250);
const RELAY_MAC: [u8; 6] = [0x02, 0x52, 0x4c, 0, 0, 0xfa];

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, last)
}

/// Home `id` is on 802.1Q C-VID 100 + id.
fn encap_of(id: SubscriberId) -> Encap {
    Encap::Dot1q {
        c_vid: Vid::new(100 + id as u16).expect("VID"),
    }
}

mod v6;

/// What happened, in order, across the store, the host table and the sink.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// A store transaction with this many changes.
    Commit(usize),
    HostAdd(SubscriberId, Ipv4Addr, [u8; 6]),
    HostRemove(SubscriberId, Ipv4Addr),
    /// An IPv6 neighbour entry written (with its flags) or removed.
    Neigh(SubscriberId, std::net::Ipv6Addr, Option<u8>),
    /// A DELEGATED route written or removed.
    Route(ipnet::Ipv6Net, Option<std::net::Ipv6Addr>),
    Send,
}

type Log = Rc<RefCell<Vec<Step>>>;

/// A memory store that logs its transactions and can be made to fail (writes, reads).
struct TestStore {
    inner: Rc<MemoryStore>,
    inner6: Rc<crate::dhcp6::MemoryStore>,
    log: Log,
    fail_writes: Rc<Cell<bool>>,
    fail_loads: Rc<Cell<bool>>,
}

fn broken(what: &str) -> crate::dhcp::BoxError {
    format!("disk gone ({what})").into()
}

impl LeaseStore for TestStore {
    fn put(&self, record: &LeaseRecord) -> Result<(), StoreError> {
        self.apply(&[StoreOp::Put(record.clone())])
    }
    fn remove(&self, home: crate::dhcp::HomeId, ip: Ipv4Addr) -> Result<(), StoreError> {
        self.apply(&[StoreOp::Remove { home, ip }])
    }
    fn load(&self, home: crate::dhcp::HomeId) -> Result<Vec<LeaseRecord>, StoreError> {
        if self.fail_loads.get() {
            return Err(StoreError::Load {
                home,
                source: broken("load"),
            });
        }
        self.inner.load(home)
    }
    fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if self.fail_writes.get() {
            return Err(StoreError::Put {
                home: 0,
                ip: Ipv4Addr::UNSPECIFIED,
                source: broken("write"),
            });
        }
        self.inner.apply(ops)?;
        self.log.borrow_mut().push(Step::Commit(ops.len()));
        Ok(())
    }
}

impl crate::dhcp6::BindingStore for TestStore {
    fn put(&self, record: &crate::dhcp6::BindingRecord) -> Result<(), crate::dhcp6::StoreError> {
        crate::dhcp6::BindingStore::apply(self, &[crate::dhcp6::StoreOp::Put(record.clone())])
    }
    fn remove(
        &self,
        home: crate::dhcp::HomeId,
        lease: crate::dhcp6::Lease,
    ) -> Result<(), crate::dhcp6::StoreError> {
        crate::dhcp6::BindingStore::apply(self, &[crate::dhcp6::StoreOp::Remove { home, lease }])
    }
    fn load(
        &self,
        home: crate::dhcp::HomeId,
    ) -> Result<Vec<crate::dhcp6::BindingRecord>, crate::dhcp6::StoreError> {
        if self.fail_loads.get() {
            return Err(crate::dhcp6::StoreError::Load {
                home,
                source: broken("load"),
            });
        }
        self.inner6.load(home)
    }
    fn apply(&self, ops: &[crate::dhcp6::StoreOp]) -> Result<(), crate::dhcp6::StoreError> {
        self.apply_all(&[], ops)
            .map_err(|e| crate::dhcp6::StoreError::Load {
                home: 0,
                source: e.into(),
            })
    }
}

impl Stores for TestStore {
    /// Both kinds in one logged transaction, as the redb store does.
    fn apply_all(&self, v4: &[StoreOp], v6: &[crate::dhcp6::StoreOp]) -> Result<(), String> {
        if self.fail_writes.get() {
            return Err("disk gone (write)".into());
        }
        self.inner.apply(v4).map_err(|e| e.to_string())?;
        crate::dhcp6::BindingStore::apply(&*self.inner6, v6).map_err(|e| e.to_string())?;
        self.log
            .borrow_mut()
            .push(Step::Commit(v4.len() + v6.len()));
        Ok(())
    }
}

/// The host tables, logged.
struct TestHosts {
    map: BTreeMap<(SubscriberId, Ipv4Addr), [u8; 6]>,
    v6: MemoryV6Table,
    log: Log,
}

impl NeighbourTable for TestHosts {
    fn set_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: std::net::Ipv6Addr,
        entry: nerg_abi::V6Neigh,
    ) -> Result<(), String> {
        self.log
            .borrow_mut()
            .push(Step::Neigh(sub, addr, Some(entry.flags)));
        self.v6.set_neighbour(sub, addr, entry)
    }
    fn remove_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: std::net::Ipv6Addr,
    ) -> Result<(), String> {
        self.log.borrow_mut().push(Step::Neigh(sub, addr, None));
        self.v6.remove_neighbour(sub, addr)
    }
    fn all_neighbours(&self) -> Vec<(SubscriberId, std::net::Ipv6Addr, nerg_abi::V6Neigh)> {
        self.v6.all_neighbours()
    }
    fn set_delegated(
        &mut self,
        sub: SubscriberId,
        prefix: ipnet::Ipv6Net,
        via: std::net::Ipv6Addr,
    ) -> Result<(), String> {
        self.log.borrow_mut().push(Step::Route(prefix, Some(via)));
        self.v6.set_delegated(sub, prefix, via)
    }
    fn remove_delegated(
        &mut self,
        sub: SubscriberId,
        prefix: ipnet::Ipv6Net,
    ) -> Result<(), String> {
        self.log.borrow_mut().push(Step::Route(prefix, None));
        self.v6.remove_delegated(sub, prefix)
    }
    fn all_delegated(&self) -> Vec<(SubscriberId, ipnet::Ipv6Net, std::net::Ipv6Addr)> {
        self.v6.all_delegated()
    }
}

impl HostTable for TestHosts {
    fn add(&mut self, sub: SubscriberId, ip: Ipv4Addr, mac: [u8; 6]) -> Result<(), String> {
        self.log.borrow_mut().push(Step::HostAdd(sub, ip, mac));
        self.map.insert((sub, ip), mac);
        Ok(())
    }
    fn remove(&mut self, sub: SubscriberId, ip: Ipv4Addr) -> Result<(), String> {
        self.log.borrow_mut().push(Step::HostRemove(sub, ip));
        self.map.remove(&(sub, ip));
        Ok(())
    }
}

/// The sink, logged.
struct TestSink {
    frames: Vec<Vec<u8>>,
    log: Log,
}

impl FrameSink for TestSink {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.log.borrow_mut().push(Step::Send);
        self.frames.push(frame.to_vec());
        Ok(())
    }
}

/// A responder and the handles to watch and break it.
struct Rig {
    responder: Responder<TestSink, TestStore, TestHosts>,
    log: Log,
    fail_writes: Rc<Cell<bool>>,
    fail_loads: Rc<Cell<bool>>,
    now_ms: u64,
    config: Config,
}

impl Rig {
    /// Homes 1 and 2 on VLANs 101 and 102 with `extra` TOML (top-level sections) and `home1`
    /// keys for home 1; the slow-path limit is out of the way unless `extra` sets it.
    fn new(extra: &str, home1: &str) -> Rig {
        let limit = if extra.contains("[slowpath]") {
            ""
        } else {
            "[slowpath]\nper_home_pps = 100000\nper_home_burst = 100000\n"
        };
        let text = format!(
            "{limit}{extra}\n[[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n{home1}\n\
             [[subscriber]]\nid = 2\nlsl = \"vlan:102\"\n"
        );
        Rig::from_toml(
            &text,
            Rc::default(),
            Rc::default(),
            MemoryV6Table::default(),
        )
    }

    /// A responder for the configuration `text`, on the stores and IPv6 table given (a
    /// restart keeps them: the store's file and the pinned maps).
    fn from_toml(
        text: &str,
        leases: Rc<MemoryStore>,
        leases6: Rc<crate::dhcp6::MemoryStore>,
        v6: MemoryV6Table,
    ) -> Rig {
        let config = Config::from_toml(text).expect("test config");
        let log: Log = Rc::default();
        let fail_writes = Rc::new(Cell::new(false));
        let fail_loads = Rc::new(Cell::new(false));
        let store = TestStore {
            inner: leases,
            inner6: leases6,
            log: Rc::clone(&log),
            fail_writes: Rc::clone(&fail_writes),
            fail_loads: Rc::clone(&fail_loads),
        };
        let hosts = TestHosts {
            map: BTreeMap::new(),
            v6,
            log: Rc::clone(&log),
        };
        let sink = TestSink {
            frames: Vec::new(),
            log: Rc::clone(&log),
        };
        let responder = Responder::new(&config, sink, store, hosts, T0);
        Rig {
            responder,
            log,
            fail_writes,
            fail_loads,
            now_ms: 1_000,
            config,
        }
    }

    /// Runs one batch; returns it and the frames it sent.
    fn batch(&mut self, frames: &[Punted]) -> (Batch, Vec<Vec<u8>>) {
        self.log.borrow_mut().clear();
        let before = self.responder.sink().frames.len();
        self.now_ms += 10;
        let batch = self.responder.handle_batch(frames, self.now_ms, T0);
        assert_eq!(batch.outcomes.len(), frames.len(), "one outcome per frame");
        let sent = self.responder.sink().frames[before..].to_vec();
        (batch, sent)
    }

    fn steps(&self) -> Vec<Step> {
        self.log.borrow().clone()
    }

    fn hosts(&self) -> &BTreeMap<(SubscriberId, Ipv4Addr), [u8; 6]> {
        &self.responder.hosts().map
    }

    fn stored(&self, home: SubscriberId) -> Vec<LeaseRecord> {
        self.responder
            .store()
            .inner
            .load(home)
            .expect("memory store")
    }

    /// DISCOVER then REQUEST for `client` in home `home`, each its own batch; the address.
    fn dora(&mut self, home: SubscriberId, client: &Client) -> Ipv4Addr {
        let (_, sent) = self.batch(&[client.discover(home)]);
        let offer = only_reply(&sent);
        assert_eq!(offer.msg.opts().msg_type(), Some(MessageType::Offer));
        let yiaddr = offer.msg.yiaddr();
        let (batch, sent) = self.batch(&[client.select(home, yiaddr)]);
        assert!(
            matches!(batch.commit, Commit::Committed { .. }),
            "{batch:?}"
        );
        let ack = only_reply(&sent);
        assert_eq!(ack.msg.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.msg.yiaddr(), yiaddr);
        yiaddr
    }
}

/// A DHCP client behind a BRG: its own MAC, or a relay's when `relay` is set.
#[derive(Clone, Copy, Debug)]
struct Client {
    mac: [u8; 6],
    xid: u32,
    relay: Option<(Ipv4Addr, [u8; 6])>,
}

impl Client {
    fn new(n: u8) -> Client {
        Client {
            mac: [0x02, 0xc1, 0, 0, 0, n],
            xid: 0x5000 + u32::from(n),
            relay: None,
        }
    }

    fn relayed(n: u8, giaddr: Ipv4Addr) -> Client {
        Client {
            relay: Some((giaddr, RELAY_MAC)),
            ..Client::new(n)
        }
    }

    fn message(&self, kind: MessageType, opts: &[DhcpOption]) -> Vec<u8> {
        let any = Ipv4Addr::UNSPECIFIED;
        let giaddr = self.relay.map_or(any, |(ip, _)| ip);
        let mut msg = Message::new_with_id(self.xid, any, any, any, giaddr, &self.mac);
        msg.set_flags(Flags::default().set_broadcast());
        msg.opts_mut().insert(DhcpOption::MessageType(kind));
        msg.opts_mut()
            .insert(DhcpOption::ParameterRequestList(vec![OptionCode::Router]));
        for o in opts {
            msg.opts_mut().insert(o.clone());
        }
        let mut buf = Vec::new();
        msg.encode(&mut Encoder::new(&mut buf)).expect("encodes");
        buf
    }

    /// The frame as it reaches the vG: from the client (68) or its relay (67, from the
    /// relay's address and MAC), broadcast to port 67, in home `home`'s LSL.
    fn frame(&self, home: SubscriberId, kind: MessageType, opts: &[DhcpOption]) -> Punted {
        let payload = self.message(kind, opts);
        let (src_mac, src, sport) = match self.relay {
            Some((giaddr, mac)) => (mac, giaddr, 67),
            None => (self.mac, Ipv4Addr::UNSPECIFIED, 68),
        };
        let inner = udp_frame(
            EthernetAddress(src_mac),
            EthernetAddress::BROADCAST,
            (src, sport),
            (Ipv4Addr::BROADCAST, 67),
            &payload,
        );
        punted(home, PuntReason::Dhcp, &inner)
    }

    fn discover(&self, home: SubscriberId) -> Punted {
        self.frame(home, MessageType::Discover, &[])
    }

    fn select(&self, home: SubscriberId, want: Ipv4Addr) -> Punted {
        self.frame(
            home,
            MessageType::Request,
            &[
                DhcpOption::ServerIdentifier(GW),
                DhcpOption::RequestedIpAddress(want),
            ],
        )
    }
}

fn udp_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &caps);
    udp.emit(
        &mut UdpPacket::new_unchecked(packet.payload_mut()),
        &src.0.into(),
        &dst.0.into(),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &caps,
    );
    buf
}

/// An ARP request for the gateway from `sender` (a host of the LAN).
fn arp_for_gateway(home: SubscriberId, sender: Ipv4Addr) -> Punted {
    let mac = EthernetAddress([0x02, 0xa7, 0, 0, 0, 1]);
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: sender,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: GW,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0; eth.buffer_len() + repr.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    punted(home, PuntReason::Arp, &buf)
}

fn punted(home: SubscriberId, reason: PuntReason, inner: &[u8]) -> Punted {
    let frame = encap_of(home).encapsulate(inner).expect("encapsulates");
    let len = u16::try_from(frame.len()).expect("short frame");
    Punted {
        header: PuntHeader {
            sub: home,
            ifindex: 2,
            reason: reason.index() as u16,
            len,
            wire_len: len,
            mtu: 0,
        },
        reason: Some(reason),
        frame,
    }
}

/// A DHCP reply frame as sent, taken apart.
#[derive(Debug)]
struct SentReply {
    vid: Option<u16>,
    eth_dst: [u8; 6],
    ip_dst: Ipv4Addr,
    ports: (u16, u16),
    msg: Message,
}

fn parse_reply(frame: &[u8]) -> Option<SentReply> {
    let d = lsl::decapsulate(frame, &DecapOptions::default()).ok()?;
    let vid = match d.lsl {
        Some(lsl::LslId::Vlan { c_vid, .. }) => Some(c_vid.get()),
        _ => None,
    };
    let eth = EthernetFrame::new_checked(&d.inner[..]).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    assert!(
        udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()),
        "UDP checksum"
    );
    assert_eq!(ip.src_addr(), GW, "from the gateway");
    let msg = Message::decode(&mut Decoder::new(udp.payload())).ok()?;
    Some(SentReply {
        vid,
        eth_dst: eth.dst_addr().0,
        ip_dst: ip.dst_addr(),
        ports: (udp.src_port(), udp.dst_port()),
        msg,
    })
}

fn only_reply(sent: &[Vec<u8>]) -> SentReply {
    assert_eq!(sent.len(), 1, "one frame sent");
    parse_reply(&sent[0]).expect("a DHCP reply")
}

fn dhcp_outcome(o: &Outcome) -> (&'static str, &'static str) {
    match *o {
        Outcome::Dhcp { request, reply } => (request, reply),
        other => panic!("not a DHCP outcome: {other:?}"),
    }
}

// ---- group commit -------------------------------------------------------------------------

#[test]
fn a_batch_commits_once_then_updates_hosts_then_replies_in_order() {
    let mut rig = Rig::new("", "");
    let clients: Vec<(SubscriberId, Client)> = vec![
        (1, Client::new(1)),
        (2, Client::new(2)),
        (1, Client::new(3)),
    ];

    // DISCOVERs (and an ARP in the middle): offers are not durable, nothing is stored.
    let mut frames: Vec<Punted> = clients.iter().map(|(h, c)| c.discover(*h)).collect();
    frames.insert(1, arp_for_gateway(2, ip(20)));
    let (batch, sent) = rig.batch(&frames);
    assert_eq!(batch.commit, Commit::Nothing);
    assert_eq!(batch.outcomes[1], Outcome::Replied("arp_reply"));
    assert_eq!(sent.len(), 4);
    assert!(
        parse_reply(&sent[1]).is_none(),
        "the ARP reply, in its place"
    );
    let offers: Vec<SentReply> = [0, 2, 3]
        .iter()
        .map(|&i| parse_reply(&sent[i]).expect("an offer"))
        .collect();
    for (offer, (home, client)) in offers.iter().zip(&clients) {
        assert_eq!(
            offer.msg.xid(),
            client.xid,
            "replies keep the frames' order"
        );
        assert_eq!(offer.vid, Some(100 + *home as u16), "in the home's LSL");
        assert_eq!(offer.msg.opts().msg_type(), Some(MessageType::Offer));
    }

    // The REQUESTs: one transaction with the three leases, then the hosts, then the ACKs.
    let frames: Vec<Punted> = clients
        .iter()
        .zip(&offers)
        .map(|((h, c), o)| c.select(*h, o.msg.yiaddr()))
        .collect();
    let (batch, sent) = rig.batch(&frames);
    assert_eq!(batch.commit.ops(), Some(3));
    let mut expected = vec![Step::Commit(3)];
    for ((home, client), offer) in clients.iter().zip(&offers) {
        expected.push(Step::HostAdd(*home, offer.msg.yiaddr(), client.mac));
    }
    expected.extend([Step::Send, Step::Send, Step::Send]);
    assert_eq!(rig.steps(), expected);
    for (i, (frame, (_, client))) in sent.iter().zip(&clients).enumerate() {
        let ack = parse_reply(frame).expect("an ACK");
        assert_eq!(ack.msg.xid(), client.xid);
        assert_eq!(ack.msg.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(dhcp_outcome(&batch.outcomes[i]), ("request", "ack"));
    }
    assert_eq!(rig.stored(1).len(), 2);
    assert_eq!(rig.stored(2).len(), 1);
    assert_eq!(rig.hosts().len(), 3);
}

#[test]
fn a_single_frame_is_a_batch_of_one() {
    let mut rig = Rig::new("", "");
    let c = Client::new(1);
    rig.log.borrow_mut().clear();
    let outcome = rig.responder.handle(&c.discover(1), 5, T0);
    assert_eq!(
        outcome,
        Outcome::Dhcp {
            request: "discover",
            reply: "offer"
        }
    );
    let offered = only_reply(&rig.responder.sink().frames).msg.yiaddr();
    rig.log.borrow_mut().clear();
    let outcome = rig.responder.handle(&c.select(1, offered), 6, T0);
    assert_eq!(
        outcome,
        Outcome::Dhcp {
            request: "request",
            reply: "ack"
        }
    );
    assert_eq!(
        rig.steps(),
        vec![
            Step::Commit(1),
            Step::HostAdd(1, offered, c.mac),
            Step::Send
        ]
    );
}

#[test]
fn a_failed_commit_sends_no_dhcp_reply_and_forgets_what_the_store_lacks() {
    // One address in the pool: whoever the engine thinks holds it decides everything.
    let mut rig = Rig::new(
        "",
        "dhcp = { range_start = \"192.168.1.100\", range_end = \"192.168.1.100\" }",
    );
    let (a, b) = (Client::new(1), Client::new(2));
    let (_, sent) = rig.batch(&[a.discover(1)]);
    assert_eq!(only_reply(&sent).msg.yiaddr(), ip(100));

    rig.fail_writes.set(true);
    let (batch, sent) = rig.batch(&[a.select(1, ip(100)), arp_for_gateway(1, ip(30))]);
    assert_eq!(batch.commit, Commit::Failed);
    assert_eq!(
        dhcp_outcome(&batch.outcomes[0]),
        ("request", "store_failed")
    );
    assert_eq!(
        batch.outcomes[1],
        Outcome::Replied("arp_reply"),
        "the gateway's ARP does not depend on the store"
    );
    assert_eq!(sent.len(), 1, "no ACK");
    assert!(parse_reply(&sent[0]).is_none());
    assert!(
        rig.hosts().is_empty(),
        "no host for a lease that is not durable"
    );
    let server = rig.responder.dhcp_server(1).expect("home 1");
    assert_eq!(
        server.lease(ip(100)),
        None,
        "the engine holds what the store holds, and the store has nothing"
    );
    assert!(!rig.responder.is_stale(1), "the reload worked");

    // The store is back. The address went to nobody: B can have it, and then A cannot.
    rig.fail_writes.set(false);
    assert_eq!(rig.dora(1, &b), ip(100));
    let (batch, sent) = rig.batch(&[a.select(1, ip(100))]);
    assert_eq!(dhcp_outcome(&batch.outcomes[0]), ("request", "nak"));
    assert_eq!(
        only_reply(&sent).msg.opts().msg_type(),
        Some(MessageType::Nak)
    );
    let stored = rig.stored(1);
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].ip, stored[0].mac.0), (ip(100), b.mac));
    assert_eq!(rig.hosts().get(&(1, ip(100))), Some(&b.mac));
}

#[test]
fn a_failed_commit_does_not_free_an_address_its_client_still_holds() {
    let mut rig = Rig::new(
        "",
        "dhcp = { range_start = \"192.168.1.100\", range_end = \"192.168.1.102\" }",
    );
    let a = Client::new(1);
    assert_eq!(rig.dora(1, &a), ip(100));

    // The operator reserves .101 for A: A's running lease on .100 stays until A moves.
    let mut sub = rig.config.subscribers[&1].clone();
    let text = format!(
        "range_start = \"192.168.1.100\"\nrange_end = \"192.168.1.102\"\n\
         reservations = [{{ mac = \"{}\", ip = \"192.168.1.101\" }}]\n",
        crate::dhcp::MacAddr(a.mac)
    );
    let wire: crate::dhcp::DhcpConfigWire = toml::from_str(&text).expect("dhcp config");
    sub.dhcp = crate::dhcp::DhcpConfig::try_from(wire).expect("valid");
    rig.responder.update_home(&sub, T0);
    assert_eq!(
        rig.responder
            .dhcp_server(1)
            .and_then(|s| s.lease(ip(100)))
            .map(|r| r.state),
        Some(LeaseState::Bound)
    );

    // A asks for its reservation; granting it would revoke .100, but the commit fails: A
    // hears nothing and still holds .100.
    rig.fail_writes.set(true);
    let (batch, sent) = rig.batch(&[a.select(1, ip(101))]);
    assert_eq!(batch.commit, Commit::Failed);
    assert!(sent.is_empty());
    rig.fail_writes.set(false);

    // So nobody else may get .100 now.
    let b = Client::new(2);
    let got = rig.dora(1, &b);
    assert_ne!(got, ip(100), "A's address was handed to B while A holds it");
    let holders: Vec<(Ipv4Addr, [u8; 6])> = rig
        .stored(1)
        .iter()
        .filter(|r| r.state == LeaseState::Bound)
        .map(|r| (r.ip, r.mac.0))
        .collect();
    assert_eq!(holders, vec![(ip(100), a.mac), (got, b.mac)]);
}

#[test]
fn a_home_whose_leases_cannot_be_reloaded_is_not_served_until_they_can() {
    let mut rig = Rig::new("", "");
    let a = Client::new(1);
    let (_, sent) = rig.batch(&[a.discover(1)]);
    let offered = only_reply(&sent).msg.yiaddr();
    rig.fail_writes.set(true);
    rig.fail_loads.set(true);
    let (batch, _) = rig.batch(&[a.select(1, offered)]);
    assert_eq!(batch.commit, Commit::Failed);
    assert!(rig.responder.is_stale(1));
    assert!(
        !rig.responder.is_stale(2),
        "the other home was not in the batch"
    );

    // Stale: no answer, no engine work, while the store is down.
    let (batch, sent) = rig.batch(&[a.discover(1), Client::new(9).discover(2)]);
    assert_eq!(
        dhcp_outcome(&batch.outcomes[0]),
        ("discover", "store_failed")
    );
    assert_eq!(dhcp_outcome(&batch.outcomes[1]), ("discover", "offer"));
    assert_eq!(sent.len(), 1, "home 2 is served");
    assert_eq!(rig.responder.tick(T0), Commit::Nothing);
    assert!(rig.responder.is_stale(1), "still down");

    rig.fail_writes.set(false);
    rig.fail_loads.set(false);
    let _ = rig.responder.tick(T0);
    assert!(!rig.responder.is_stale(1));
    assert_eq!(rig.dora(1, &a), offered);
}

#[test]
fn a_stale_home_decides_nothing_until_it_is_reloaded() {
    let mut rig = Rig::new("[dhcp]\nlease_time_secs = 60\n", "");
    let a = Client::new(1);
    let ip_a = rig.dora(1, &a);
    // The store breaks: A's renewal is not stored and home 1 cannot be reloaded.
    rig.fail_writes.set(true);
    rig.fail_loads.set(true);
    let (batch, sent) = rig.batch(&[a.select(1, ip_a)]);
    assert_eq!(batch.commit, Commit::Failed);
    assert!(sent.is_empty());
    assert!(rig.responder.is_stale(1));

    // Writes work again, reads do not: the lease ran out, but the stale engine (which has
    // state the store lacks) expires nothing.
    rig.fail_writes.set(false);
    rig.log.borrow_mut().clear();
    assert_eq!(rig.responder.tick(T0.plus(61)), Commit::Nothing);
    assert!(rig.steps().is_empty(), "{:?}", rig.steps());
    assert!(rig.responder.is_stale(1));
    assert_eq!(rig.stored(1)[0].state, LeaseState::Bound);
    assert_eq!(rig.hosts().get(&(1, ip_a)), Some(&a.mac));

    // Reads work: the reload finds the lease ran out and ends it.
    rig.fail_loads.set(false);
    let _ = rig.responder.tick(T0.plus(62));
    assert!(!rig.responder.is_stale(1));
    assert_eq!(rig.stored(1)[0].state, LeaseState::Expired);
    assert!(rig.hosts().is_empty());
}

#[test]
fn expiry_ticks_commit_every_home_at_once() {
    let mut rig = Rig::new("[dhcp]\nlease_time_secs = 60\n", "");
    let (a, b) = (Client::new(1), Client::new(2));
    let ip_a = rig.dora(1, &a);
    let ip_b = rig.dora(2, &b);
    assert_eq!(rig.hosts().len(), 2);

    // Due, but the store fails: the hosts stay (the store still has the leases).
    rig.fail_writes.set(true);
    rig.log.borrow_mut().clear();
    assert_eq!(rig.responder.tick(T0.plus(61)), Commit::Failed);
    assert_eq!(rig.hosts().len(), 2);
    assert!(rig.steps().is_empty());
    assert!(rig.responder.is_stale(1) && rig.responder.is_stale(2));

    rig.fail_writes.set(false);
    rig.log.borrow_mut().clear();
    let _ = rig.responder.tick(T0.plus(62));
    assert!(rig.hosts().is_empty(), "{:?}", rig.steps());
    assert!(!rig.responder.is_stale(1) && !rig.responder.is_stale(2));
    for (home, ip) in [(1, ip_a), (2, ip_b)] {
        let stored = rig.stored(home);
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].ip, stored[0].state), (ip, LeaseState::Expired));
    }

    // Two more leases expiring together: one transaction for both homes.
    let (c, d) = (Client::new(3), Client::new(4));
    rig.dora(1, &c);
    rig.dora(2, &d);
    rig.log.borrow_mut().clear();
    // The leases were granted at T0 (the rig's clock for frames).
    assert_eq!(rig.responder.tick(T0.plus(200)).ops(), Some(2));
    let commits: Vec<Step> = rig
        .steps()
        .into_iter()
        .filter(|s| matches!(s, Step::Commit(_)))
        .collect();
    assert_eq!(commits, vec![Step::Commit(2)]);
}

// ---- relayed DHCP ---------------------------------------------------------------------------

#[test]
fn relayed_messages_are_served_through_the_relay_when_the_home_says_so() {
    let mut rig = Rig::new("", "dhcp = { relayed = \"serve\" }");
    let c = Client::relayed(1, RELAY);
    let (batch, sent) = rig.batch(&[c.discover(1)]);
    assert_eq!(dhcp_outcome(&batch.outcomes[0]), ("discover", "offer"));
    let offer = only_reply(&sent);
    assert_eq!(offer.vid, Some(101), "through the home's LSL");
    assert_eq!(offer.eth_dst, RELAY_MAC, "to the request's Ethernet source");
    assert_eq!(offer.ip_dst, RELAY, "unicast to giaddr");
    assert_eq!(
        offer.ports,
        (67, 67),
        "server port to server port (RFC 2131 4.1)"
    );
    assert_eq!(offer.msg.giaddr(), RELAY, "giaddr kept");
    assert_eq!(offer.msg.chaddr(), &c.mac);

    let (batch, sent) = rig.batch(&[c.select(1, offer.msg.yiaddr())]);
    assert_eq!(batch.commit.ops(), Some(1));
    let ack = only_reply(&sent);
    assert_eq!(ack.msg.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(
        (ack.eth_dst, ack.ip_dst, ack.ports),
        (RELAY_MAC, RELAY, (67, 67))
    );
    // The lease and the host entry are the client's (chaddr), not the relay's.
    assert_eq!(rig.hosts().get(&(1, ack.msg.yiaddr())), Some(&c.mac));
    let stored = rig.stored(1);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].mac.0, c.mac);
}

#[test]
fn relayed_messages_are_dropped_by_default_and_bad_relays_always() {
    let mut rig = Rig::new("", "dhcp = { relayed = \"serve\" }");
    // Home 2 keeps the default.
    let (batch, sent) = rig.batch(&[Client::relayed(1, RELAY).discover(2)]);
    assert_eq!(batch.outcomes, vec![Outcome::Ignored("relayed")]);
    assert!(sent.is_empty());
    // Home 1 serves relays, but only inside its own LAN and not at the gateway.
    for giaddr in [Ipv4Addr::new(10, 1, 2, 3), GW, ip(255)] {
        let (batch, sent) = rig.batch(&[Client::relayed(2, giaddr).discover(1)]);
        assert_eq!(
            batch.outcomes,
            vec![Outcome::Ignored("giaddr_not_in_home")],
            "giaddr {giaddr}"
        );
        assert!(sent.is_empty());
    }
    assert!(rig.stored(1).is_empty() && rig.hosts().is_empty());
}

#[test]
fn the_per_home_limit_comes_from_the_configuration() {
    let mut rig = Rig::new("[slowpath]\nper_home_pps = 1\nper_home_burst = 2\n", "");
    let c = Client::new(1);
    let frames = [c.discover(1), c.discover(1), c.discover(1), c.discover(2)];
    let (batch, sent) = rig.batch(&frames);
    assert_eq!(dhcp_outcome(&batch.outcomes[0]).1, "offer");
    assert_eq!(dhcp_outcome(&batch.outcomes[1]).1, "offer");
    assert_eq!(batch.outcomes[2], Outcome::Ignored("rate_limited"));
    assert_eq!(
        dhcp_outcome(&batch.outcomes[3]).1,
        "offer",
        "another home has its own bucket"
    );
    assert_eq!(sent.len(), 3);
}

#[test]
fn answers_that_change_nothing_durable_leave_before_the_commit() {
    let mut rig = Rig::new("", "");
    let (a, b, c) = (Client::new(1), Client::new(2), Client::new(3));
    let (_, sent) = rig.batch(&[a.discover(1)]);
    let offered = only_reply(&sent).msg.yiaddr();

    // Home 1's REQUEST needs the commit; home 2's DISCOVER does not (its OFFER leaves at
    // once); home 1's own DISCOVER after its REQUEST waits: its home has a change pending.
    let (batch, sent) = rig.batch(&[a.select(1, offered), b.discover(2), c.discover(1)]);
    assert_eq!(batch.commit.ops(), Some(1));
    assert_eq!(
        rig.steps(),
        vec![
            Step::Send,
            Step::Commit(1),
            Step::HostAdd(1, offered, a.mac),
            Step::Send,
            Step::Send
        ]
    );
    let kinds: Vec<(u32, Option<MessageType>)> = sent
        .iter()
        .map(|f| {
            let r = parse_reply(f).expect("a DHCP reply");
            (r.msg.xid(), r.msg.opts().msg_type())
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (b.xid, Some(MessageType::Offer)),
            (a.xid, Some(MessageType::Ack)),
            (c.xid, Some(MessageType::Offer)),
        ]
    );

    // A failed commit withholds the ACK, not the OFFER that did not depend on it.
    let d = Client::new(4);
    let (_, sent) = rig.batch(&[d.discover(1)]);
    let offered = only_reply(&sent).msg.yiaddr();
    rig.fail_writes.set(true);
    let e = Client::new(5);
    let (batch, sent) = rig.batch(&[d.select(1, offered), e.discover(2)]);
    assert_eq!(batch.commit, Commit::Failed);
    assert_eq!(
        dhcp_outcome(&batch.outcomes[0]),
        ("request", "store_failed")
    );
    assert_eq!(dhcp_outcome(&batch.outcomes[1]), ("discover", "offer"));
    let only = only_reply(&sent);
    assert_eq!(
        (only.msg.xid(), only.msg.opts().msg_type()),
        (e.xid, Some(MessageType::Offer))
    );
}
