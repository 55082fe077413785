//! Messages laid out as real clients send them, and many homes' exchanges at once.

use super::*;

/// A raw BOOTREQUEST: header fields as given, then `options` verbatim, padded to `pad_to`.
fn raw_request(xid: u32, flags: u16, mac: [u8; 6], options: &[u8], pad_to: usize) -> Vec<u8> {
    let mut b = vec![1, 1, 6, 0];
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&[0, 0]); // secs
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&[0; 16]); // ciaddr, yiaddr, siaddr, giaddr
    b.extend_from_slice(&mac);
    b.extend_from_slice(&[0; 10 + 64 + 128]); // chaddr padding, sname, file
    b.extend_from_slice(&MAGIC_COOKIE);
    b.extend_from_slice(options);
    if b.len() < pad_to {
        b.resize(pad_to, 0);
    }
    b
}

const DHCLIENT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const UDHCPC_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0x0b, 0x0c, 0x0d];
const DHCPCD_MAC: [u8; 6] = [0xb8, 0x27, 0xeb, 0x01, 0x02, 0x03];

/// ISC dhclient 4.4 (Debian 12) DISCOVER: no client identifier, hostname, the Debian
/// `request` list, padded to 300 bytes.
pub(super) fn dhclient_discover() -> Vec<u8> {
    let mut o = vec![53, 1, 1];
    o.extend_from_slice(&[12, 6]);
    o.extend_from_slice(b"debian");
    o.extend_from_slice(&[55, 13, 1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]);
    o.push(255);
    raw_request(0x3903_f326, 0, DHCLIENT_MAC, &o, 300)
}

/// busybox udhcpc 1.36 DISCOVER: client id type 1 + MAC, max size 576, vendor class,
/// its default request list.
pub(super) fn udhcpc_discover() -> Vec<u8> {
    let mut o = vec![53, 1, 1, 61, 7, 1];
    o.extend_from_slice(&UDHCPC_MAC);
    o.extend_from_slice(&[57, 2, 0x02, 0x40]);
    o.extend_from_slice(&[60, 12]);
    o.extend_from_slice(b"udhcp 1.36.1");
    o.extend_from_slice(&[55, 7, 1, 3, 6, 12, 15, 28, 42]);
    o.push(255);
    raw_request(0x7c1a_2b3d, 0, UDHCPC_MAC, &o, 300)
}

/// dhcpcd 10 DISCOVER: RFC 4361 client id (0xff, IAID, DUID-LLT), max size 1472, vendor
/// class, hostname, option 145 (forcerenew nonce, which we do not read), its request list.
pub(super) fn dhcpcd_discover() -> Vec<u8> {
    let mut o = vec![
        53, 1, 1, 61, 19, 0xff, 0xeb, 0x01, 0x02, 0x03, 0, 1, 0, 1, 0x2c, 0x4a, 0x1b, 0x0e,
    ];
    o.extend_from_slice(&DHCPCD_MAC);
    o.extend_from_slice(&[57, 2, 0x05, 0xc0]);
    let vendor = b"dhcpcd-10.0.6:Linux-6.1.0-18-arm64:aarch64:BCM2835";
    o.extend_from_slice(&[60, vendor.len() as u8]);
    o.extend_from_slice(vendor);
    o.extend_from_slice(&[12, 4]);
    o.extend_from_slice(b"rpi4");
    o.extend_from_slice(&[145, 1, 1]);
    o.extend_from_slice(&[55, 13, 1, 121, 33, 3, 6, 28, 51, 58, 59, 15, 26, 119, 42]);
    o.push(255);
    raw_request(0x5c7b_0a11, 0, DHCPCD_MAC, &o, 300)
}

/// The REQUEST the same client sends in SELECTING: the DISCOVER's options with 53 = 3 and
/// options 50 and 54 inserted after the message type, as all three clients do.
fn selecting_from(discover: &[u8], want: Ipv4Addr) -> Vec<u8> {
    let mut b = discover[..MIN_MESSAGE_LEN].to_vec();
    b.extend_from_slice(&[53, 1, 3, 50, 4]);
    b.extend_from_slice(&want.octets());
    b.extend_from_slice(&[54, 4]);
    b.extend_from_slice(&GW.octets());
    b.extend_from_slice(&discover[MIN_MESSAGE_LEN + 3..]);
    b
}

#[test]
fn real_client_layouts_get_leases() {
    let mut s = server_with("mtu = 1450");
    let cases = [
        (
            "dhclient",
            dhclient_discover(),
            DHCLIENT_MAC,
            Some("debian"),
        ),
        ("udhcpc", udhcpc_discover(), UDHCPC_MAC, None),
        ("dhcpcd", dhcpcd_discover(), DHCPCD_MAC, Some("rpi4")),
    ];
    for (i, (name, discover, mac, hostname)) in cases.into_iter().enumerate() {
        let offer = handle(&mut s, T0, &discover);
        let (msg, r) = reply(&offer);
        let want = ip(100 + i as u8);
        assert_eq!(msg.yiaddr(), want, "{name}");
        assert_eq!(
            r.dst,
            Destination::Unicast {
                ip: want,
                mac: MacAddr(mac)
            },
            "{name}"
        );
        assert_eq!(
            get(&msg, 26),
            Some(&DhcpOption::InterfaceMtu(1450)),
            "{name}"
        );
        let ack = handle(&mut s, T0, &selecting_from(&discover, want));
        assert_eq!(granted(&ack), Some((want, false)), "{name}");
        let record = s.lease(want).expect("bound");
        assert_eq!(record.mac, MacAddr(mac), "{name}");
        assert_eq!(record.hostname.as_deref(), hostname, "{name}");
    }
    // udhcpc's type-1 identifier is its MAC identity; dhcpcd's DUID is opaque and echoed.
    assert_eq!(
        s.lease(ip(101)).map(|r| r.client_id.clone()),
        Some(ClientId::Mac(MacAddr(UDHCPC_MAC)))
    );
    assert!(
        matches!(s.lease(ip(102)).map(|r| &r.client_id), Some(ClientId::Opaque(id)) if id[0] == 0xff)
    );
    let (msg, _) = reply(&handle(&mut s, T0, &dhcpcd_discover()));
    assert!(matches!(get(&msg, 61), Some(DhcpOption::ClientIdentifier(id)) if id.len() == 19));
    // dhclient's order: 1, 28, 3, 15, 6, 26 of what it asked for and we have.
    let out = handle(&mut s, T0, &dhclient_discover());
    assert_eq!(
        option_codes(&reply(&out).1.payload),
        vec![53, 54, 51, 58, 59, 1, 28, 3, 15, 6, 26]
    );
}

// Throughput.

/// Many homes' DORA exchanges through the bytes API (store ops produced, not applied),
/// small enough for every run; it prints the rate. The benchmark runs the same load big.
#[test]
fn dora_many_homes() {
    dora_rate(50, 20);
}

/// `homes` homes with `clients_per_home` clients each do DORA; prints the exchanges per second.
fn dora_rate(homes_n: u32, clients_per_home: u8) {
    let mut homes = Homes::new();
    for home in 0..homes_n {
        homes.insert(HomeServer::new(home, DhcpConfig::default()));
    }
    let clients: Vec<Client> = (1..=clients_per_home).map(Client::new).collect();
    let discovers: Vec<Vec<u8>> = clients.iter().map(Client::discover).collect();
    let requests: Vec<Vec<u8>> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| c.select(GW, ip(100 + i as u8)))
        .collect();
    let start = std::time::Instant::now();
    let mut acks = 0u64;
    for home in 0..homes_n {
        for i in 0..usize::from(clients_per_home) {
            let offer = homes
                .handle_bytes(home, T0, &discovers[i])
                .expect("accepted");
            assert!(offer.reply.is_some());
            let ack = homes
                .handle_bytes(home, T0, &requests[i])
                .expect("accepted");
            acks += u64::from(ack.reply.is_some());
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(acks, u64::from(homes_n) * u64::from(clients_per_home));
    let rate = acks as f64 / elapsed.as_secs_f64();
    println!("{acks} DORA exchanges in {elapsed:?}: {rate:.0} per second (one core)");
}
