//! Benchmark 3, DHCPv6: the engine alone (`dhcpv6_engine_leases_per_s`), run with the
//! DHCPv4 engine figure ([`super::dhcp::engine`]).
//!
//! Full four-message exchanges (Solicit, Advertise, Request, Reply; one IA_NA each) through
//! `vg::dhcp6::Homes` (decode, state machine, encode) with the in-memory store, every Reply's
//! binding committed before it counts. Only the server's work is timed; the clients'
//! messages are built and the Advertises read outside the clock.

use std::{
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use dhcproto::{
    Decodable, Decoder, Encodable, Encoder,
    v6::{DhcpOption, DhcpOptions, IAAddr, IANA, Message, MessageType},
};
use vg::dhcp::{HomeId, MacAddr, UnixTime};
use vg::dhcp6::{Dhcp6Config, Dhcp6Settings, HomeServer, Homes, MemoryStore, Peer};

/// Clients per home.
const CLIENTS: u32 = 100;

/// A client message: Client-ID, Server-ID if given, Elapsed Time, one IA_NA (IAID 1)
/// listing `addr` if given.
fn client_msg(
    kind: MessageType,
    duid: &[u8],
    xid: [u8; 3],
    server: Option<&[u8]>,
    addr: Option<Ipv6Addr>,
) -> anyhow::Result<Vec<u8>> {
    let mut msg = Message::new_with_id(kind, xid);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::ClientId(duid.to_vec()));
    if let Some(server) = server {
        opts.insert(DhcpOption::ServerId(server.to_vec()));
    }
    opts.insert(DhcpOption::ElapsedTime(0));
    let mut ia = DhcpOptions::new();
    if let Some(addr) = addr {
        ia.insert(DhcpOption::IAAddr(IAAddr {
            addr,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    opts.insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: ia,
    }));
    let mut buf = Vec::new();
    msg.encode(&mut Encoder::new(&mut buf))
        .context("encoding a DHCPv6 message")?;
    Ok(buf)
}

/// The server DUID and the address of an Advertise.
fn read_advertise(payload: &[u8]) -> anyhow::Result<(Vec<u8>, Ipv6Addr)> {
    let msg = Message::decode(&mut Decoder::new(payload)).context("decoding the Advertise")?;
    if msg.msg_type() != MessageType::Advertise {
        bail!("Solicit answered with {:?}", msg.msg_type());
    }
    let Some(DhcpOption::ServerId(server)) = msg.opts().get(dhcproto::v6::OptionCode::ServerId)
    else {
        bail!("Advertise without a Server-ID");
    };
    let addr = msg
        .opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IANA(ia) => ia.opts.iter().find_map(|a| match a {
                DhcpOption::IAAddr(a) => Some(a.addr),
                _ => None,
            }),
            _ => None,
        })
        .context("Advertise without an address")?;
    Ok((server.clone(), addr))
}

/// Four-message exchanges per second for `homes` x [`CLIENTS`] new clients, timing the
/// server side only (handle + commit).
pub fn engine_rate(homes: u32, now: UnixTime) -> anyhow::Result<f64> {
    let store = MemoryStore::new();
    let mut engine = Homes::new();
    for h in 0..homes {
        let lan = format!("2001:db8:{h:x}::/64").parse()?;
        let gateway = MacAddr([0x02, 0, 0x5e, (h >> 8) as u8, h as u8, 1]);
        let config = Dhcp6Config::try_from(Dhcp6Settings::new(lan, None, gateway))?;
        engine.insert(HomeServer::new(HomeId::from(h + 1), config));
    }
    let mut busy = Duration::ZERO;
    let mut leases = 0u64;
    for h in 0..homes {
        let home = HomeId::from(h + 1);
        for c in 0..CLIENTS {
            let mac = [0x52, 0x54, (h >> 8) as u8, h as u8, 0, c as u8];
            let peer = Peer {
                mac: MacAddr(mac),
                link_local: Ipv6Addr::new(
                    0xfe80,
                    0,
                    0,
                    0,
                    0x5054,
                    0xff,
                    0xfe00 | h as u16,
                    c as u16,
                ),
            };
            let mut duid = vec![0, 3, 0, 1];
            duid.extend_from_slice(&mac);
            let xid = [h as u8, (c >> 8) as u8, c as u8];
            let solicit = client_msg(MessageType::Solicit, &duid, xid, None, None)?;
            let t = Instant::now();
            let advertise = engine
                .handle_bytes(home, now, peer, &solicit)
                .map_err(|e| anyhow::anyhow!("Solicit dropped: {e:?}"))?
                .commit(&store)?
                .reply
                .context("no Advertise")?;
            busy += t.elapsed();
            let (server, addr) = read_advertise(&advertise.payload)?;
            let request = client_msg(MessageType::Request, &duid, xid, Some(&server), Some(addr))?;
            let t = Instant::now();
            let reply = engine
                .handle_bytes(home, now, peer, &request)
                .map_err(|e| anyhow::anyhow!("Request dropped: {e:?}"))?
                .commit(&store)?
                .reply
                .context("no Reply")?;
            busy += t.elapsed();
            if reply.message_type != MessageType::Reply {
                bail!("Request answered with {:?}", reply.message_type);
            }
            leases += 1;
        }
    }
    if store.len() as u64 != leases {
        bail!("{leases} exchanges but {} bindings stored", store.len());
    }
    Ok(leases as f64 / busy.as_secs_f64())
}
