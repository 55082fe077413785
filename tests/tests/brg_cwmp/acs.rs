//! brgd towards the ACS: authentication, retries, events, Reboot, FactoryReset, Download, HTTPS.

use super::*;

#[test]
fn basic_auth_towards_the_acs() {
    auth_roundtrip(
        "cwmp-basic",
        AcsAuth::Basic {
            username: "cpe".into(),
            password: "secret".into(),
        },
        "cpe",
        "secret",
    );
}

#[test]
fn digest_md5_towards_the_acs() {
    auth_roundtrip(
        "cwmp-md5",
        AcsAuth::Digest {
            username: "cpe".into(),
            password: "secret".into(),
            algorithm: brg::agent::digest::Algorithm::Md5,
        },
        "cpe",
        "secret",
    );
}

#[test]
fn digest_sha256_towards_the_acs() {
    auth_roundtrip(
        "cwmp-sha256",
        AcsAuth::Digest {
            username: "cpe".into(),
            password: "secret".into(),
            algorithm: brg::agent::digest::Algorithm::Sha256,
        },
        "cpe",
        "secret",
    );
}

#[test]
fn wrong_acs_password_fails_and_is_retried_with_backoff() {
    let acs = Acs::start(AcsConfig {
        auth: AcsAuth::Digest {
            username: "cpe".into(),
            password: "secret".into(),
            algorithm: brg::agent::digest::Algorithm::Md5,
        },
        ..AcsConfig::default()
    });
    let mut brgd = Brgd::new("cwmp-badpw")
        .arg("--acs-username")
        .arg("cpe")
        .arg("--acs-password")
        .arg("nope");
    brgd.start(&acs.url());
    wait_until("two failed attempts", TIMEOUT, || {
        acs.auth_rejections() >= 4
    });
    assert!(acs.sessions().is_empty());
    brgd.assert_running();
    assert!(brgd.log().contains("session failed"), "{}", brgd.log());
}

#[test]
fn undelivered_events_are_retried_after_the_acs_comes_back() {
    let acs = Acs::start(AcsConfig::default());
    let addr = acs.addr();
    let url = acs.url();
    drop(acs); // the ACS is down
    let mut brgd = Brgd::new("cwmp-retry");
    brgd.start(&url);
    wait_until("a failed session attempt", TIMEOUT, || {
        brgd.log().contains("session failed")
    });
    // Restart brgd while the ACS is still down: BOOTSTRAP must survive.
    brgd.kill9();
    brgd.start(&url);
    wait_until("a failed session attempt after restart", TIMEOUT, || {
        brgd.log()
            .split("--- restart ---")
            .nth(1)
            .is_some_and(|l| l.contains("session failed"))
    });
    let acs = Acs::start_at(addr, AcsConfig::default());
    let s = session(&acs, 1);
    assert_eq!(s.event_codes(), ["0 BOOTSTRAP", "1 BOOT"], "{s:?}");
    assert!(
        s.inform.retry_count >= 1,
        "RetryCount counts the failures: {s:?}"
    );
}

#[test]
fn reboot_runs_the_command_then_informs_boot_and_m_reboot() {
    let mut brgd = Brgd::new("cwmp-reboot");
    let marker = brgd.dir.join("rebooted");
    let cmd = brgd.script("reboot.sh", &format!("echo done > {}", marker.display()));
    brgd = brgd
        .arg("--reboot-command")
        .arg(cmd.to_str().expect("path"));
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![rpc(Body::Reboot(Reboot {
        command_key: "reboot-42".into(),
    }))]);
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(matches!(s.answers[0].body, Body::RebootResponse), "{s:?}");
    assert_eq!(brgd.wait_exit(), Some(0));
    assert!(marker.exists(), "the reboot command ran");
    brgd.start(&acs.url());
    let after = session(&acs, 2);
    assert!(after.has_event("1 BOOT", None), "{after:?}");
    assert!(after.has_event("M Reboot", Some("reboot-42")), "{after:?}");
    assert!(!after.has_event("0 BOOTSTRAP", None), "{after:?}");
}

#[test]
fn factory_reset_restores_defaults_and_bootstraps() {
    let (acs, brgd, first) = setup("cwmp-reset", AcsConfig::default());
    acs.script(vec![
        spv(
            &[(
                "Device.DeviceInfo.ProvisioningCode",
                "CHANGED",
                ValueType::String,
            )],
            "r-1",
        ),
        rpc(Body::FactoryReset),
    ]);
    let s = kick(&acs, &first, 2);
    assert!(
        matches!(s.answers[1].body, Body::FactoryResetResponse),
        "{s:?}"
    );
    let after = session(&acs, 3);
    assert!(after.has_event("0 BOOTSTRAP", None), "{after:?}");
    assert_eq!(after.param("Device.DeviceInfo.ProvisioningCode"), Some(""));
    assert_eq!(after.param(&format!("{MS}ParameterKey")), Some(""));
    drop(brgd);
}

#[test]
fn download_then_transfer_complete() {
    let mut brgd = Brgd::new("cwmp-dl");
    let applied = brgd.dir.join("applied");
    let cmd = brgd.script(
        "firmware.sh",
        &format!(
            "grep -q NERG-FIRMWARE \"$1\" || {{ echo bad image >&2; exit 3; }}\ncp \"$1\" {}",
            applied.display()
        ),
    );
    brgd = brgd
        .arg("--firmware-command")
        .arg(cmd.to_str().expect("path"))
        .arg("--cr-min-interval")
        .arg("1");
    let acs = Acs::start(AcsConfig::default());
    let image = b"NERG-FIRMWARE v2\n".repeat(100);
    acs.serve_file("/fw.bin", image.clone());
    acs.serve_file("/junk.bin", vec![b'x'; 64]);
    let base = format!("http://{}", acs.addr());
    acs.script(vec![download(
        format!("{base}/fw.bin"),
        image.len() as u32,
        "dl-ok",
    )]);
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    match &s.answers[0].body {
        Body::DownloadResponse(r) => assert_eq!(r.status, Status::Pending),
        other => panic!("Download answer: {other:?}"),
    }
    let tc = session(&acs, 2);
    assert!(tc.has_event("7 TRANSFER COMPLETE", None), "{tc:?}");
    assert!(tc.has_event("M Download", Some("dl-ok")), "{tc:?}");
    assert_eq!(transfer_fault(&tc), None, "{tc:?}");
    assert_eq!(
        std::fs::read(&applied).expect("the firmware command ran"),
        image
    );

    // Failures: wrong size (9017 short / 9018 long), missing file (9016), refused image (9018).
    for (n, (path, size, code)) in [
        ("/fw.bin", image.len() as u32 + 10, 9017),
        ("/fw.bin", 100, 9018),
        ("/missing.bin", 0, 9016),
        ("/junk.bin", 64, 9018),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("dl-{n}");
        acs.script(vec![download(format!("{base}{path}"), size, &key)]);
        let sessions_before = acs.sessions().len();
        let first = acs.sessions()[0].clone();
        kick(&acs, &first, sessions_before + 1);
        let tc = session(&acs, sessions_before + 2);
        assert!(tc.has_event("M Download", Some(&key)), "{tc:?}");
        assert_eq!(
            transfer_fault(&tc),
            Some(code),
            "{path} size {size}: {tc:?}"
        );
    }
    brgd.assert_running();
}

#[test]
fn https_with_a_test_ca() {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "NERG test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");

    let acs = Acs::start(AcsConfig {
        tls: Some((cert.pem(), key.serialize_pem())),
        ..AcsConfig::default()
    });
    assert!(acs.url().starts_with("https://"));
    acs.script(vec![gpv(&["Device.DeviceInfo.SerialNumber"])]);
    let mut brgd = Brgd::new("cwmp-tls");
    let ca_file = brgd.dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("CA file");
    brgd = brgd.arg("--acs-ca").arg(ca_file.to_str().expect("path"));
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(
        value_of(&s.answers[0].body, "Device.DeviceInfo.SerialNumber"),
        "TEST0001"
    );

    // Without the CA the handshake fails: no session, brgd keeps retrying.
    let mut untrusting = Brgd::new("cwmp-tls-untrusted");
    untrusting.start(&acs.url());
    wait_until("a failed TLS session", TIMEOUT, || {
        untrusting.log().contains("TLS handshake")
    });
    assert_eq!(acs.sessions().len(), 1);
    untrusting.assert_running();
}
