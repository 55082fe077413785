//! The journal of changes: what it holds, replay after a snapshot, records that do not fit.

use super::*;

#[test]
fn journal_holds_only_what_changed() {
    let mut m = populated();
    assert_eq!(m.take_journal(), Journal::Snapshot, "nothing stored yet");
    assert_eq!(m.take_journal(), Journal::Records(String::new()));
    m.add_object("Device.Bridging.Bridge.", "k5").expect("add");
    m.set_parameter_values(
        &[pv(
            "Device.Bridging.Bridge.3.Enable",
            "1",
            ValueType::Boolean,
        )],
        "k6",
    )
    .expect("spv");
    m.set("Device.Bridging.Bridge.3.Status", "Enabled")
        .expect("read-only state: not stored");
    m.set_parameter_attributes(&[spa("Device.ManagementServer.URL", Notification::Passive)])
        .expect("spa");
    m.delete_object("Device.Bridging.Bridge.1.", "k7")
        .expect("delete");
    assert_eq!(
        m.take_journal(),
        Journal::Records(
            "I Device.Bridging.Bridge.3.\nK k5\nV Device.Bridging.Bridge.3.Enable true\nK k6\n\
             A Device.ManagementServer.URL 1 \nD Device.Bridging.Bridge.1.\nK k7\n"
                .into()
        )
    );
    // A refused or rolled-back write leaves no record.
    m.backend_mut().reject_apply = Some(Fault::new(FaultCode::InternalError));
    assert!(m.add_object("Device.Bridging.Bridge.", "no").is_err());
    assert!(
        m.set_parameter_values(
            &[pv("Device.ManagementServer.URL", "x", ValueType::String)],
            "no"
        )
        .is_err()
    );
    m.backend_mut().reject_apply = None;
    assert!(m.add_object("Device.DeviceInfo.", "no").is_err());
    assert_eq!(m.take_journal(), Journal::Records(String::new()));
    // The tree replaced wholesale: a snapshot.
    let text = m.save();
    m.restore(&text).expect("restore");
    assert_eq!(m.take_journal(), Journal::Snapshot);
    // Records nobody takes are bounded: past the cap, a snapshot is asked for instead.
    for i in 0..5000 {
        let url = format!("http://acs-{i}.example/");
        m.set("Device.ManagementServer.URL", url.as_str())
            .expect("set");
        if i % 1000 == 999 {
            let taken = m.take_journal();
            assert!(matches!(&taken, Journal::Records(r) if r.lines().count() == 1000));
        }
    }
    for i in 0..MAX_PENDING_JOURNAL / 16 {
        let url = format!("http://acs-{i}.example/");
        m.set("Device.ManagementServer.URL", url.as_str())
            .expect("set");
    }
    assert_eq!(m.take_journal(), Journal::Snapshot);
}

/// A random walk of writes (ACS and local, successful, refused and rolled back), journaled
/// in batches: the last snapshot plus the journal since always rebuilds the same model.
#[test]
fn snapshot_and_journal_replay_rebuild_the_model() {
    let mut m = model();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut snapshot = String::new();
    let mut journal = String::new();
    let mut snapshots = 0;
    for step in 0..4000 {
        let bridge = next(5) + 1;
        let port = next(4) + 1;
        let key = format!("k{step}");
        m.backend_mut().reject_apply =
            (next(10) == 0).then(|| Fault::new(FaultCode::InternalError));
        let _ = match next(11) {
            0 => m.add_object("Device.Bridging.Bridge.", &key).map(|_| ()),
            1 => m
                .add_object(&format!("Device.Bridging.Bridge.{bridge}.Port."), &key)
                .map(|_| ()),
            2 => m
                .delete_object(&format!("Device.Bridging.Bridge.{bridge}."), &key)
                .map(|_| ()),
            3 => m
                .delete_object(
                    &format!("Device.Bridging.Bridge.{bridge}.Port.{port}."),
                    &key,
                )
                .map(|_| ()),
            4 => m
                .set_parameter_values(
                    &[
                        pv(
                            &format!("Device.Bridging.Bridge.{bridge}.Port.{port}.PVID"),
                            &next(5000).to_string(),
                            ValueType::Int,
                        ),
                        pv(
                            &format!("Device.Bridging.Bridge.{bridge}.Enable"),
                            if next(2) == 0 { "true" } else { "0" },
                            ValueType::Boolean,
                        ),
                    ],
                    &key,
                )
                .map(|_| ()),
            5 => m
                .set_parameter_values(
                    &[pv(
                        "Device.ManagementServer.URL",
                        &format!("http://acs.example/\t{}\\n\n", next(100)),
                        ValueType::String,
                    )],
                    &key,
                )
                .map(|_| ()),
            6 => {
                let notification = [
                    Notification::Off,
                    Notification::Passive,
                    Notification::Active,
                ][next(3) as usize];
                m.set_parameter_attributes(&[SetParameterAttribute {
                    access_list_change: next(2) == 0,
                    access_list: vec!["Subscriber".into()],
                    ..spa(
                        [
                            "Device.ManagementServer.URL",
                            "Device.ManagementServer.",
                            "Device.DeviceInfo.SoftwareVersion",
                        ][next(3) as usize],
                        notification,
                    )
                }])
            }
            7 => m
                .add_instance("Device.Ethernet.Interface.", None)
                .map(|_| ())
                .map_err(|_| Fault::new(FaultCode::InternalError)),
            8 => m
                .delete_instance(&format!("Device.Ethernet.Interface.{}.", next(6) + 1))
                .map_err(|_| Fault::new(FaultCode::InternalError)),
            9 => m
                .set(
                    &format!("Device.Ethernet.Interface.{}.Enable", next(6) + 1),
                    next(2) == 0,
                )
                .map_err(|_| Fault::new(FaultCode::InternalError)),
            _ => m
                .set(
                    &format!("Device.Ethernet.Interface.{}.Name", next(6) + 1),
                    "eth",
                )
                .map_err(|_| Fault::new(FaultCode::InternalError)),
        };
        if next(3) == 0 {
            match m.take_journal() {
                Journal::Snapshot => {
                    snapshot = m.save();
                    journal.clear();
                    snapshots += 1;
                }
                Journal::Records(records) => journal.push_str(&records),
            }
            let mut rebuilt = model();
            rebuilt.restore(&snapshot).expect("snapshot");
            let report = rebuilt.replay(&journal);
            assert!(report.skipped.is_empty(), "step {step}: {report:?}");
            assert_eq!(rebuilt.save(), m.save(), "step {step}, journal:\n{journal}");
        }
    }
    assert_eq!(snapshots, 1, "only the first store is a snapshot");
    assert!(
        journal.lines().count() > 1000,
        "{}",
        journal.lines().count()
    );
}

#[test]
fn replay_skips_records_that_do_not_fit() {
    let mut m = populated();
    assert_eq!(m.take_journal(), Journal::Snapshot);
    let before = m.save();
    let report = m.replay(
        "D Device.Bridging.Bridge.9.\nD Device.Bridging.\nD Device.Bridging.Bridge.1\n\
         D \nI Device.Bridging.Bridge.0.\nI Device.DeviceInfo.\nV Device.Nope 1\nX what\n\
         A Device.ManagementServer.URL 9 \nK bad\\escape\n\n",
    );
    assert_eq!(report.skipped.len(), 10, "{report:?}");
    assert_eq!(m.save(), before, "nothing applied");
    let report = m.replay("D Device.Bridging.Bridge.1.\nK after\n");
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!(m.instances("Device.Bridging.Bridge."), Ok(vec![2]));
    assert_eq!(m.parameter_key(), "after");
    assert_eq!(
        m.take_journal(),
        Journal::Records(String::new()),
        "replay journals nothing"
    );
}
