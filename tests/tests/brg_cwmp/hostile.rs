//! A hostile or broken ACS: bounded input, faults for malformed requests, retries with backoff.

use super::*;

#[test]
fn hostile_acs_input_is_bounded_and_changes_nothing() {
    let acs = Acs::start(AcsConfig::default());
    let mut brgd = Brgd::new("cwmp-hostile").arg("--cr-min-interval").arg("1");
    brgd.start(&acs.url());
    let first = session(&acs, 1);
    acs.script(vec![spv(
        &[(
            "Device.DeviceInfo.ProvisioningCode",
            "BEFORE",
            ValueType::String,
        )],
        "h-0",
    )]);
    kick(&acs, &first, 2);
    // The snapshot and the journal of changes since (see brg::agent::store).
    let stored_model = || {
        ["model", "model.journal"].map(|f| {
            std::fs::read_to_string(brgd.state_file(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
        })
    };
    let stored = stored_model();

    let env = |body: &str| {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">h</cwmp:ID></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        )
        .into_bytes()
    };
    let spv_body = |value: &str| {
        format!(
            r#"<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.ProvisioningCode</Name><Value>{value}</Value></ParameterValueStruct></ParameterList><ParameterKey>evil</ParameterKey></cwmp:SetParameterValues>"#
        )
    };
    let entity = {
        let mut doc = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>"#.to_vec();
        doc.extend(env(&spv_body("&lol2;")));
        doc
    };
    let deep = env(&format!(
        "{}{}",
        "<a>".repeat(10_000),
        "</a>".repeat(10_000)
    ));
    let oversized = env(&spv_body(&"A".repeat(2 << 20)));
    let wrong_type = env(
        r#"<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>perhaps</NextLevel></cwmp:GetParameterNames>"#,
    );
    let wrong_struct = env(
        r#"<cwmp:ScheduleInform><DelaySeconds>-5</DelaySeconds><CommandKey>x</CommandKey></cwmp:ScheduleInform>"#,
    );

    // All in one session: an undecodable request is answered with a fault (9003, or 9004
    // for one over a limit) and the session goes on (see also
    // `malformed_acs_requests_are_answered_with_faults`); malformed arguments get 9003.
    let before = acs.sessions().len();
    let code = gpv(&["Device.DeviceInfo.ProvisioningCode"]);
    acs.script(vec![
        AcsRequest::Raw(entity),
        code.clone(),
        AcsRequest::Raw(deep),
        code.clone(),
        AcsRequest::Raw(oversized),
        AcsRequest::Raw(wrong_type),
        AcsRequest::Raw(wrong_struct),
    ]);
    let url = cr_url(&first);
    nerg_tests::wait_until_some("an accepted connection request", TIMEOUT, || {
        (connection_request(&url, "cr-user", "cr-pass") == 200).then_some(())
    });
    let s = session_ended_after(&acs, before + 1);
    assert_eq!(acs.sessions().len(), before + 1, "one session did it all");
    assert!(!brgd.log().contains("session failed"), "{}", brgd.log());
    let codes: Vec<Option<FaultCode>> = s
        .answers
        .iter()
        .map(|a| match &a.body {
            Body::Fault(f) => Some(f.code),
            _ => None,
        })
        .collect();
    use FaultCode::{InvalidArguments, ResourcesExceeded};
    assert_eq!(
        codes,
        [
            Some(InvalidArguments),
            None,
            Some(ResourcesExceeded),
            None,
            Some(ResourcesExceeded),
            Some(InvalidArguments),
            Some(InvalidArguments),
        ],
        "{s:?}"
    );
    assert_eq!(
        value_of(&s.answers[3].body, "Device.DeviceInfo.ProvisioningCode"),
        "BEFORE"
    );
    assert_eq!(
        stored_model(),
        stored,
        "hostile input changed the stored model"
    );
    brgd.assert_running();

    // The CR server bounds its input too.
    let url = cr_url(&first);
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("addr")
        .to_owned();
    let status = raw_http(
        &addr,
        &format!("POST /x HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100000000\r\n\r\n"),
    );
    assert!(status == Some(404) || status == Some(405), "{status:?}");
    let path = url.splitn(4, '/').nth(3).expect("path");
    let status = raw_http(
        &addr,
        &format!("GET /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100000000\r\n\r\n"),
    );
    assert_eq!(status, Some(413));
    let status = raw_http(
        &addr,
        &format!(
            "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Digest {}\r\n\r\n",
            "x=\"".repeat(2000)
        ),
    );
    assert_eq!(status, Some(401));
    brgd.assert_running();
}

/// Issue 15: an ACS whose answer to the Inform brgd cannot use (here: over the 1 MiB
/// limit) fails every session. brgd retries as TR-069 3.2.1.1 says (the n-th retry waits
/// m*k^(n-1) to m*k^n seconds, here m = 1 s and k = 2.0: 1-2, 2-4, 4-8 s), counts the
/// retries in the Informs' RetryCount, and logs the reason once, not at every retry.
#[test]
fn unusable_inform_response_is_retried_with_backoff_and_logged_once() {
    let oversized = raw_envelope(
        "x",
        &format!(
            "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes>{}</cwmp:InformResponse>",
            " ".repeat(2 << 20)
        ),
    );
    let acs = Acs::start(AcsConfig {
        inform_response: Some(oversized),
        ..AcsConfig::default()
    });
    let mut brgd = Brgd::new("cwmp-backoff");
    std::fs::write(
        brgd.dir.join("factory"),
        FACTORY.replace(
            "CWMPRetryIntervalMultiplier 1000",
            "CWMPRetryIntervalMultiplier 2000",
        ),
    )
    .expect("factory defaults");
    brgd.start(&acs.url());
    let sessions = nerg_tests::wait_until_some("four attempts", TIMEOUT, || {
        let s = acs.sessions();
        (s.len() >= 4).then_some(s)
    });
    brgd.assert_running();
    let counts: Vec<u32> = sessions.iter().map(|s| s.inform.retry_count).collect();
    assert_eq!(counts[..4], [0, 1, 2, 3], "RetryCount");
    let policy = cwmp::session::RetryPolicy {
        minimum_wait: 1,
        multiplier: 2000,
    };
    for (n, pair) in sessions[..4].windows(2).enumerate() {
        let retry = n as u32 + 1;
        let gap = pair[1]
            .started
            .duration_since(pair[0].started)
            .as_secs_f64();
        let range = policy.wait_range(retry);
        // The wait starts once the 1 MiB answer is read and refused; then an Inform.
        let (low, high) = (*range.start() as f64, *range.end() as f64 + 0.9);
        assert!(
            (low..=high).contains(&gap),
            "retry {retry}: {gap:.2} s after the attempt before, outside {range:?} s"
        );
    }
    let gaps: Vec<String> = sessions[..4]
        .windows(2)
        .map(|p| {
            format!(
                "{:.2}",
                p[1].started.duration_since(p[0].started).as_secs_f64()
            )
        })
        .collect();
    eprintln!("retry waits (s): {}", gaps.join(", "));
    let log = brgd.log();
    assert_eq!(
        log.matches("1048576 bytes").count(),
        1,
        "the reason is logged once, not at every retry:\n{log}"
    );
}

/// A request brgd cannot decode is answered with a CWMP fault within the session (9004 when
/// it exceeds a limit, else 9003), and the session goes on; a second one in a row ends the
/// session (a broken ACS gets no ping-pong of faults).
#[test]
fn malformed_acs_requests_are_answered_with_faults() {
    let acs = Acs::start(AcsConfig::default());
    let garbage = b"<html><body>502 Bad Gateway</body></html>".to_vec();
    let not_closed = raw_envelope("nc", "<cwmp:GetRPCMethods>");
    let too_many = raw_envelope(
        "tm",
        &format!(
            "<cwmp:GetParameterValues><ParameterNames>{}</ParameterNames></cwmp:GetParameterValues>",
            "<string>Device.</string>".repeat(10_000)
        ),
    );
    acs.script(vec![
        AcsRequest::Raw(garbage.clone()),
        gpv(&["Device.DeviceInfo.SerialNumber"]),
        AcsRequest::Raw(not_closed),
        AcsRequest::Raw(too_many.clone()),
    ]);
    acs.script(vec![gpv(&["Device.DeviceInfo.SerialNumber"])]);
    let mut brgd = Brgd::new("cwmp-malformed");
    brgd.start(&acs.url());
    // Session 1 is over when session 2 (its retry) has started.
    let s = nerg_tests::wait_until_some("a retry after session 1", TIMEOUT, || {
        let sessions = acs.sessions();
        (sessions.len() >= 2).then(|| sessions[0].clone())
    });
    assert!(!s.ended, "{s:?}");
    assert_eq!(s.answers.len(), 3, "{s:?}");
    assert_eq!(
        fault_of(&s.answers[0].body).code,
        FaultCode::InvalidArguments
    );
    assert_eq!(
        value_of(&s.answers[1].body, "Device.DeviceInfo.SerialNumber"),
        "TEST0001"
    );
    assert_eq!(
        fault_of(&s.answers[2].body).code,
        FaultCode::InvalidArguments
    );
    // The fourth, a second malformed request in a row, ended the session: no answer, and
    // the retry (1 s later) runs the next script.
    let s = nth_session_ended(&acs, 2);
    assert_eq!(s.inform.retry_count, 1, "{s:?}");
    assert_eq!(s.answers.len(), 1);
    // A request over a limit is 9004.
    acs.script(vec![AcsRequest::Raw(too_many)]);
    let url = cr_url(&s);
    assert_eq!(connection_request(&url, "cr-user", "cr-pass"), 200);
    let s = nth_session_ended(&acs, 3);
    assert_eq!(
        fault_of(&s.answers[0].body).code,
        FaultCode::ResourcesExceeded,
        "{s:?}"
    );
    brgd.assert_running();
}
