//! Connection requests: Digest, rate limits, floods of unauthenticated requests and idle connections.

use super::*;

#[test]
fn connection_request_needs_digest_and_is_rate_limited() {
    let (acs, mut brgd, first) = setup("cwmp-cr", AcsConfig::default());
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let anonymous = http_get(&url, None).expect("GET");
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous.challenges.iter().any(|c| c.contains("SHA-256")),
        "{anonymous:?}"
    );
    assert!(
        anonymous.challenges.iter().any(|c| c.contains("MD5")),
        "{anonymous:?}"
    );
    assert_eq!(connection_request(&url, "cr-user", "wrong"), 401);
    assert_eq!(connection_request(&url, "someone", "cr-pass"), 401);
    let wrong_path = url
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/guess"))
        .expect("path");
    assert_eq!(http_get(&wrong_path, None).expect("GET").status, 404);

    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 200);
    let s = session(&acs, 2);
    assert_eq!(s.event_codes(), ["6 CONNECTION REQUEST"], "{s:?}");
    // Hammered: 503 within the rate-limit window.
    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 503);
    assert_eq!(
        acs.sessions().len(),
        2,
        "no session for a rate-limited request"
    );
    brgd.assert_running();
}

/// Issue 15: a flood of unauthenticated connection requests (about 10,000/s in the field)
/// locked the ACS out: every one was given a nonce in a table of 64, so the ACS's nonce was
/// gone before its answer came (9 of 10 answers got 401). With nonces that need no state
/// per challenge, every genuine request passes during the flood.
#[test]
fn connection_request_flood_does_not_lock_out_the_acs() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let acs = Acs::start(AcsConfig::default());
    let mut brgd = Brgd::new("cwmp-crflood").arg("--cr-min-interval").arg("0");
    brgd.start(&acs.url());
    let first = session(&acs, 1);
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let statuses = std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| cr_flood(&url, &stop, &answered, 200_000));
        }
        nerg_tests::wait_until("the flood to start", TIMEOUT, || {
            answered.load(Relaxed) > 500
        });
        let started = (std::time::Instant::now(), answered.load(Relaxed));
        // The ACS answers each challenge 50 ms later (a WAN round trip and its own work).
        let statuses: Vec<u16> = (0..20)
            .map(|_| {
                connection_request_after(&url, "cr-user", "cr-pass", Duration::from_millis(50))
            })
            .collect();
        let rate = (answered.load(Relaxed) - started.1) as f64 / started.0.elapsed().as_secs_f64();
        stop.store(true, Relaxed);
        (statuses, rate)
    });
    let (statuses, rate) = statuses;
    assert!(
        rate > 2000.0,
        "the flood reached only {rate:.0} requests/s: too weak to test anything"
    );
    let passed = statuses.iter().filter(|s| **s == 200).count();
    eprintln!(
        "genuine connection requests: {passed} of {} passed under {rate:.0} unauthenticated requests/s",
        statuses.len()
    );
    assert_eq!(
        passed,
        statuses.len(),
        "{passed} of {} genuine connection requests passed under a flood of {rate:.0} requests/s: {statuses:?}",
        statuses.len()
    );
    brgd.assert_running();
}

/// Idle connections to the CR server (a slowloris) cost brgd a bounded number of file
/// descriptors: past its limit it closes new ones at once, so its sessions and its storage
/// still find descriptors. Once they are gone, connection requests work again.
#[test]
fn idle_connection_flood_costs_bounded_descriptors() {
    let (acs, mut brgd, first) = setup("cwmp-crconns", AcsConfig::default());
    let url = first
        .param(&format!("{MS}ConnectionRequestURL"))
        .expect("CR URL")
        .to_owned();
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("CR address");
    let pid = brgd.child.as_ref().expect("running").id();
    let before = open_fds(pid);
    let idle: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    assert!(idle.len() >= 300, "{} connections opened", idle.len());
    // Every one is accepted (kept or closed) at once.
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(pid);
    let limit = brg::agent::cr::MAX_CONNECTIONS;
    assert!(
        during <= before + limit + 4,
        "{during} descriptors with {} idle connections ({before} before, limit {limit})",
        idle.len()
    );
    brgd.assert_running();
    drop(idle);
    nerg_tests::wait_until_some("an accepted connection request", TIMEOUT, || {
        (connection_request(&url, "cr-user", "cr-pass") == 200).then_some(())
    });
    let s = session(&acs, 2);
    assert_eq!(s.event_codes(), ["6 CONNECTION REQUEST"]);
}
