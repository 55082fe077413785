//! Options: the parameter request list, mandatory options, MTU, vendor options, sizes.

use super::*;

#[test]
fn parameter_request_list_order_is_followed() {
    let mut s = server_with("mtu = 1450");
    let mut c = Client::new(1);
    c.parameters = [28, 6, 26, 3, 15, 1, 42, 119]
        .map(OptionCode::from)
        .to_vec();
    let out = handle(&mut s, T0, &c.discover());
    let codes = option_codes(&reply(&out).1.payload);
    // Fixed head, then the list in the client's order (42 and 119 are not configured).
    assert_eq!(codes, vec![53, 54, 51, 58, 59, 28, 6, 26, 3, 15, 1]);
}

#[test]
fn mandatory_options_come_even_unasked() {
    let mut s = server();
    let mut c = Client::new(1);
    c.parameters = vec![OptionCode::from(15)];
    let out = handle(&mut s, T0, &c.discover());
    let codes = option_codes(&reply(&out).1.payload);
    assert_eq!(codes, vec![53, 54, 51, 58, 59, 15, 1, 3, 6, 28]);
}

#[test]
fn mtu_option_when_configured() {
    let mut s = server_with("mtu = 1450");
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(1).discover()));
    assert_eq!(get(&msg, 26), Some(&DhcpOption::InterfaceMtu(1450)));
    let mut s = server();
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(1).discover()));
    assert_eq!(get(&msg, 26), None);
}

#[derive(Debug)]
struct AcsHook;

impl VendorHook for AcsHook {
    fn vendor_options(&self, query: &VendorQuery<'_>) -> VendorOptions {
        // A TR-069 device identifies itself with option 60 "dslforum.org".
        if query.vendor_class != Some(b"dslforum.org") {
            return VendorOptions::default();
        }
        VendorOptions {
            vendor_specific: Some([&[1u8, 20][..], b"http://acs.example/x"].concat()),
            vi_vendor_specific: vec![ViVendorInfo {
                enterprise: 3561,
                data: vec![1, 3, b'a', b'b', b'c'],
            }],
        }
    }
}

#[test]
fn vendor_hook_adds_options_43_and_125() {
    let mut s = server();
    s.set_vendor_hook(Some(Arc::new(AcsHook)));
    let c = Client::new(1);
    let out = handle(
        &mut s,
        T0,
        &c.with(
            MessageType::Discover,
            Ipv4Addr::UNSPECIFIED,
            &[DhcpOption::ClassIdentifier(b"dslforum.org".to_vec())],
        ),
    );
    let (msg, _) = reply(&out);
    assert!(
        matches!(get(&msg, 43), Some(DhcpOption::VendorExtensions(v)) if v.ends_with(b"acs.example/x"))
    );
    match get(&msg, 125) {
        Some(DhcpOption::Unknown(opt)) => {
            assert_eq!(opt.data(), &[0, 0, 0x0d, 0xe9, 5, 1, 3, b'a', b'b', b'c'])
        }
        other => panic!("option 125 missing: {other:?}"),
    }
    // Other devices get neither.
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(2).discover()));
    assert!(get(&msg, 43).is_none() && get(&msg, 125).is_none());
    // Static options are there for homes that need no logic.
    s.set_vendor_hook(Some(Arc::new(StaticVendorOptions(VendorOptions {
        vendor_specific: Some(vec![1, 1, 1]),
        vi_vendor_specific: Vec::new(),
    }))));
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(3).discover()));
    assert_eq!(
        get(&msg, 43),
        Some(&DhcpOption::VendorExtensions(vec![1, 1, 1]))
    );
}

#[test]
fn maximum_message_size_is_respected() {
    let big = StaticVendorOptions(VendorOptions {
        vendor_specific: Some(vec![0xab; 400]),
        vi_vendor_specific: Vec::new(),
    });
    let mut s = server();
    s.set_vendor_hook(Some(Arc::new(big)));
    let mut c = Client::new(1);
    c.client_id = Some(vec![0xff; 40]);
    // No option 57: 576 bytes of IP datagram, 548 of DHCP. Option 43 does not fit.
    let out = handle(&mut s, T0, &c.discover());
    let (msg, r) = reply(&out);
    assert!(r.payload.len() <= 548, "{}", r.payload.len());
    assert!(get(&msg, 43).is_none());
    assert!(
        get(&msg, 61).is_some(),
        "the echoed client id is never squeezed out"
    );
    assert!(get(&msg, 1).is_some() && get(&msg, 3).is_some());
    // A client that accepts 1500 bytes gets it, split per RFC 3396.
    c.max_size = Some(1500);
    let out = handle(&mut s, T0, &c.discover());
    let (msg, r) = reply(&out);
    assert!(r.payload.len() <= 1472);
    assert_eq!(
        get(&msg, 43),
        Some(&DhcpOption::VendorExtensions(vec![0xab; 400]))
    );
    // A home with a small MTU caps it again.
    let mut s = server_with("mtu = 600");
    s.set_vendor_hook(Some(Arc::new(StaticVendorOptions(VendorOptions {
        vendor_specific: Some(vec![0xab; 400]),
        vi_vendor_specific: Vec::new(),
    }))));
    let out = handle(&mut s, T0, &c.discover());
    assert!(reply(&out).1.payload.len() <= 572);
    // A silly option 57 below 576 counts as 576.
    c.max_size = Some(100);
    let out = handle(&mut s, T0, &c.discover());
    assert!(reply(&out).0.opts().get(OptionCode::SubnetMask).is_some());
}
