//! Connection requests: Digest, rate limits, floods of unauthenticated requests and idle connections.

use super::*;

#[test]
fn connection_request_needs_digest_and_is_rate_limited() {
    let (acs, mut brgd, first) = setup("cwmp-cr", AcsConfig::default());
    let url = cr_url(&first);
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
    // Again within the rate-limit window: accepted, served by a session when it ends.
    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 200);
    assert_eq!(
        acs.sessions().len(),
        2,
        "no session inside the rate-limit window"
    );
    let s = session(&acs, 3);
    assert_eq!(s.event_codes(), ["6 CONNECTION REQUEST"], "{s:?}");
    brgd.assert_running();
}

/// Issue 17, item 5: with the default 5 s rate limit, five connection requests 0.75 s
/// apart are all answered 200 and all served: one session at once, one when the window
/// ends (none waits for a periodic Inform), and no more than that.
#[test]
fn five_connection_requests_in_three_seconds_are_all_served() {
    let (acs, mut brgd, first) = setup("cwmp-cr5", AcsConfig::default());
    let url = cr_url(&first);
    let mut sent = Vec::new();
    for n in 0..5 {
        if n > 0 {
            // The pace of the requests is the test's input, not a wait for readiness.
            std::thread::sleep(Duration::from_millis(750));
        }
        sent.push(std::time::Instant::now());
        assert_eq!(
            connection_request(&url, "cr-user", "cr-pass"),
            200,
            "connection request {n}"
        );
    }
    let last = *sent.last().expect("five");
    let served = nerg_tests::wait_until_some("a session after the last request", TIMEOUT, || {
        acs.sessions()
            .into_iter()
            .find(|s| s.started >= last && s.ended)
    });
    assert_eq!(served.event_codes(), ["6 CONNECTION REQUEST"], "{served:?}");
    let window = Duration::from_secs(5);
    assert!(
        served.started >= sent[0] + window - Duration::from_millis(100),
        "the deferred session came before the rate-limit window ended"
    );
    let sessions = acs.sessions();
    assert_eq!(
        sessions.len(),
        3,
        "bootstrap, one session at once, one at the end of the window: {sessions:?}"
    );
    for (n, at) in sent.iter().enumerate() {
        assert!(
            sessions
                .iter()
                .any(|s| s.started >= *at && s.event_codes() == ["6 CONNECTION REQUEST"]),
            "connection request {n} was not followed by a session"
        );
    }
    brgd.assert_running();
}

/// Issue 17, item 6: the challenges come in a deliberate order, SHA-256 first and MD5 last,
/// and an ACS that joins them into one header is let in whichever `algorithm=` it keeps:
/// the last (MD5, answered with MD5) or the first (an MD5 hash labelled SHA-256).
#[test]
fn digest_challenge_order_and_joined_headers() {
    use brg::agent::digest::{self, Algorithm, Challenge};
    let acs = Acs::start(AcsConfig::default());
    let mut brgd = Brgd::new("cwmp-crorder").arg("--cr-min-interval").arg("0");
    brgd.start(&acs.url());
    let first = session(&acs, 1);
    let url = cr_url(&first);
    let path = url
        .trim_start_matches("http://")
        .split_once('/')
        .map(|(_, p)| format!("/{p}"))
        .expect("a path");
    let challenged = || {
        let r = http_get(&url, None).expect("GET");
        assert_eq!(r.status, 401);
        r.challenges
    };
    let headers = challenged();
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert!(headers[0].contains("algorithm=SHA-256"), "{headers:?}");
    assert!(headers[1].contains("algorithm=MD5"), "{headers:?}");
    // What an MD5-only ACS that joins the headers computes; `label` is the algorithm= it
    // kept.
    let joined_answer = |label: &str, password: &str| {
        let joined = challenged().join(", ");
        let Some(Challenge::Digest(c)) = digest::pick_challenge([joined.as_str()]) else {
            panic!("no Digest challenge in {joined}");
        };
        let md5 = digest::DigestChallenge {
            algorithm: Algorithm::Md5,
            ..c
        };
        digest::digest_authorization(&md5, "cr-user", password, "GET", &path, 1, "0a4f113b")
            .replace("algorithm=MD5", &format!("algorithm={label}"))
    };
    let mut sessions = 1;
    for label in ["MD5", "SHA-256"] {
        let answer = joined_answer(label, "cr-pass");
        let status = http_get(&url, Some(&answer)).expect("GET").status;
        assert_eq!(status, 200, "an MD5 answer labelled {label}: {answer}");
        sessions += 1;
        let s = session(&acs, sessions);
        assert_eq!(s.event_codes(), ["6 CONNECTION REQUEST"]);
    }
    // The strongest, as a careful ACS answers.
    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 200);
    // A wrong password under either label is still refused.
    for label in ["MD5", "SHA-256"] {
        let wrong = joined_answer(label, "not-the-password");
        assert_eq!(
            http_get(&url, Some(&wrong)).expect("GET").status,
            401,
            "{label}"
        );
    }
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
    let url = cr_url(&first);
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
    let url = cr_url(&first);
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
