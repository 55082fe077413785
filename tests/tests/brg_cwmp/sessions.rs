//! Sessions over time: periodic and scheduled informs, namespaces, a new ACS URL, memory, interrupted downloads, silent ACSs, redirects.

use super::*;

#[test]
fn periodic_and_scheduled_informs() {
    let mut brgd = Brgd::new("cwmp-periodic");
    std::fs::write(
        brgd.dir.join("factory"),
        FACTORY.replace("PeriodicInformEnable false", "PeriodicInformEnable true")
            + "V Device.ManagementServer.PeriodicInformInterval 2\n",
    )
    .expect("factory defaults");
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        rpc(Body::ScheduleInform(cwmp::soap::ScheduleInform {
            delay_seconds: 1,
            command_key: "sched-1".into(),
        })),
        // DelaySeconds 0 is invalid (TR-069 A.4.1.1).
        rpc(Body::ScheduleInform(cwmp::soap::ScheduleInform {
            delay_seconds: 0,
            command_key: "sched-0".into(),
        })),
    ]);
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(
        matches!(s.answers[0].body, Body::ScheduleInformResponse),
        "{s:?}"
    );
    assert_eq!(
        fault_of(&s.answers[1].body).code,
        FaultCode::InvalidArguments
    );
    let sessions =
        nerg_tests::wait_until_some("a scheduled and two periodic informs", TIMEOUT, || {
            let all = acs.sessions();
            let scheduled = all.iter().any(|s| {
                s.has_event("3 SCHEDULED", None) && s.has_event("M ScheduleInform", Some("sched-1"))
            });
            let periodic = all
                .iter()
                .filter(|s| s.has_event("2 PERIODIC", None))
                .count();
            (scheduled && periodic >= 2).then_some(all)
        });
    assert!(
        !sessions
            .iter()
            .any(|s| s.has_event("M ScheduleInform", Some("sched-0")))
    );
    brgd.assert_running();
}

/// ACSs answer in the namespace they speak (cwmp-1-0 .. cwmp-1-3 in the field): brgd answers
/// each request in the request's namespace.
#[test]
fn answers_in_the_namespace_of_the_request() {
    for ns in [cwmp::soap::CwmpVersion::V1_0, cwmp::soap::CwmpVersion::V1_3] {
        let acs = Acs::start(AcsConfig {
            request_ns: Some(ns),
            ..AcsConfig::default()
        });
        acs.script(vec![
            rpc(Body::GetParameterNames(GetParameterNames {
                parameter_path: String::new(),
                next_level: true,
            })),
            gpv(&["Device.DeviceInfo.SerialNumber"]),
        ]);
        let mut brgd = Brgd::new("cwmp-ns");
        brgd.start(&acs.url());
        let s = session(&acs, 1);
        assert_eq!(s.answers.len(), 2, "{s:?}");
        for a in &s.answers {
            assert_eq!(a.ns, ns, "{a:?}");
        }
        let Body::GetParameterNamesResponse(r) = &s.answers[0].body else {
            panic!("GPN answer: {:?}", s.answers[0])
        };
        let names: Vec<&str> = r.parameter_list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["Device."],
            "empty path with NextLevel true names the root"
        );
        assert_eq!(
            value_of(&s.answers[1].body, "Device.DeviceInfo.SerialNumber"),
            "TEST0001"
        );
    }
}

/// An ACS that hands the CPE over to another one: the new URL gets `0 BOOTSTRAP`.
#[test]
fn acs_url_change_bootstraps_the_new_acs() {
    let old = Acs::start(AcsConfig::default());
    let new = Acs::start(AcsConfig::default());
    old.script(vec![spv(
        &[(&format!("{MS}URL"), &new.url(), ValueType::String)],
        "move",
    )]);
    let mut brgd = Brgd::new("cwmp-move");
    brgd.start(&old.url());
    session(&old, 1);
    let s = session(&new, 1);
    assert!(s.has_event("0 BOOTSTRAP", None), "{s:?}");
    assert_eq!(s.param(&format!("{MS}ParameterKey")), Some("move"));
    assert_eq!(old.sessions().len(), 1);
    brgd.assert_running();
}

/// Footprint guard: brgd's resident memory after a session stays small (a release build
/// idles at about 7 MiB; this debug build is allowed far more, but not a runaway).
#[test]
fn idle_memory_after_a_session_is_bounded() {
    let (_acs, mut brgd, _) = setup("cwmp-rss", AcsConfig::default());
    let pid = brgd.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    eprintln!("brgd idle VmRSS: {rss_kib} KiB");
    assert!(
        rss_kib > 0 && rss_kib < 48 * 1024,
        "brgd idles at {rss_kib} KiB"
    );
    brgd.assert_running();
}

/// A download cut short by a crash is still reported: TransferComplete with 9010 after the
/// restart, with `7 TRANSFER COMPLETE` and `M Download`.
#[test]
fn interrupted_download_is_reported_after_restart() {
    // The ACS ends its session 2 s after the DownloadResponse; brgd is killed in between
    // (the download was lost when its marker came only after the session).
    let acs = Acs::start(AcsConfig {
        end_delay: Some(Duration::from_secs(2)),
        ..AcsConfig::default()
    });
    acs.serve_file("/fw.bin", b"NERG-FIRMWARE".to_vec());
    acs.script(vec![rpc(Body::Download(Download {
        command_key: "dl-crash".into(),
        file_type: "1 Firmware Upgrade Image".into(),
        url: format!("http://{}/fw.bin", acs.addr()),
        delay_seconds: 3600,
        ..Download::default()
    }))]);
    let mut brgd = Brgd::new("cwmp-dl-crash");
    brgd.start(&acs.url());
    let s = nerg_tests::wait_until_some("the DownloadResponse", TIMEOUT, || {
        acs.sessions()
            .into_iter()
            .next()
            .filter(|s| !s.answers.is_empty())
    });
    assert!(
        matches!(s.answers[0].body, Body::DownloadResponse(_)),
        "{s:?}"
    );
    assert!(!s.ended);
    brgd.kill9();
    brgd.start(&acs.url());
    let after = nth_session_ended(&acs, 2);
    assert!(after.has_event("1 BOOT", None), "{after:?}");
    assert!(after.has_event("7 TRANSFER COMPLETE", None), "{after:?}");
    assert!(after.has_event("M Download", Some("dl-crash")), "{after:?}");
    assert_eq!(transfer_fault(&after), Some(9010), "{after:?}");
    // Acknowledged: not reported again.
    brgd.kill9();
    brgd.start(&acs.url());
    let third = nth_session_ended(&acs, 3);
    assert_eq!(third.event_codes(), ["1 BOOT"], "{third:?}");
    assert!(third.cpe_requests.is_empty());
}

/// An ACS that accepts the connection and never answers: the request times out
/// (`--acs-timeout`), the session fails and is retried; brgd keeps running. Also checks the
/// JSON log format.
#[test]
fn silent_acs_times_out_and_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let url = format!("http://{}/acs", listener.local_addr().expect("addr"));
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                held.lock().expect("lock").push(stream); // accepted, never answered
            }
        });
    }
    let mut brgd = Brgd::new("cwmp-silent")
        .arg("--acs-timeout")
        .arg("1")
        .arg("--log-format")
        .arg("json");
    brgd.start(&url);
    // A new connection per attempt.
    wait_until("three attempts", TIMEOUT, || {
        held.lock().expect("lock").len() >= 3
    });
    wait_until("the third to time out", TIMEOUT, || {
        brgd.log().matches("session failed again").count() >= 2
    });
    assert_eq!(
        brgd.log()
            .matches("timed out waiting for the response")
            .count(),
        1,
        "the reason logged once"
    );
    brgd.assert_running();
    for line in brgd.log().lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains("\"level\""),
            "not a JSON log line: {line}"
        );
    }
}

/// TR-069 3.4.5: an ACS (or its load balancer) redirects the Inform; the whole session runs
/// at the new location, the configured URL stays (no BOOTSTRAP at the next session).
#[test]
fn inform_follows_a_redirect() {
    let target = Acs::start(AcsConfig::default());
    let front = Acs::start(AcsConfig {
        redirect: Some(target.url()),
        ..AcsConfig::default()
    });
    target.script(vec![gpv(&[&format!("{MS}URL")])]);
    let mut brgd = Brgd::new("cwmp-redirect");
    brgd.start(&front.url());
    let s = session(&target, 1);
    assert_eq!(s.event_codes(), ["0 BOOTSTRAP", "1 BOOT"], "{s:?}");
    assert_eq!(
        value_of(&s.answers[0].body, &format!("{MS}URL")),
        front.url()
    );
    assert_eq!(front.redirected(), 1);
    assert!(front.sessions().is_empty());
    brgd.assert_running();
}

/// A ScheduleInform survives a restart: the scheduled session still comes, with
/// `3 SCHEDULED` and `M ScheduleInform`.
#[test]
fn scheduled_inform_survives_a_restart() {
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![rpc(Body::ScheduleInform(
        cwmp::soap::ScheduleInform {
            delay_seconds: 2,
            command_key: "after-restart".into(),
        },
    ))]);
    let mut brgd = Brgd::new("cwmp-sched");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(
        matches!(s.answers[0].body, Body::ScheduleInformResponse),
        "{s:?}"
    );
    brgd.kill9();
    brgd.start(&acs.url());
    let scheduled = nerg_tests::wait_until_some("the scheduled inform", TIMEOUT, || {
        acs.sessions()
            .into_iter()
            .find(|s| s.has_event("M ScheduleInform", Some("after-restart")))
    });
    assert!(scheduled.has_event("3 SCHEDULED", None), "{scheduled:?}");
    brgd.assert_running();
}
