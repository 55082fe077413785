//! Hostile input: names that never panic, instance numbers that run out.

use super::*;

#[test]
fn hostile_names_never_panic() {
    let mut m = populated();
    let long = "Device.".repeat(10_000);
    let huge_instance = format!("Device.Bridging.Bridge.{}.", u64::MAX);
    let inputs = [
        "",
        ".",
        "..",
        "Device",
        "Device.",
        "Device..",
        "Device.{i}.",
        "Device.Bridging.Bridge.-1.",
        "Device.Bridging.Bridge.+1.",
        "Device.Bridging.Bridge.1 .",
        "Device.Bridging.Bridge.\u{661}.",
        huge_instance.as_str(),
        long.as_str(),
        "Device.Bridging.Bridge.1.Enable.Extra",
        "Device.ManagementServer.URL..",
        "\u{0}",
        "Device.\u{202e}",
    ];
    for input in inputs {
        for next_level in [false, true] {
            let _ = m.get_parameter_names(input, next_level);
        }
        let _ = m.get_parameter_values(&[input.to_owned()]);
        let _ = m.get_parameter_attributes(&[input.to_owned()]);
        let _ = m.set_parameter_values(&[pv(input, input, ValueType::Other(input.into()))], "");
        let _ = m.set_parameter_attributes(&[spa(input, Notification::Active)]);
        let _ = m.add_object(input, "");
        let _ = m.delete_object(input, "");
        let _ = m.get(input);
        let _ = m.set(input, input);
        let _ = m.instances(input);
        let _ = m.add_instance(input, Some(u32::MAX));
        let _ = m.delete_instance(input);
        let _ = m.restore(&format!(
            "cwmp-model 1\n{input}\nV {input}\nI {input}\nT {input} 1\nA {input} 2 x"
        ));
    }
    // Fault strings echo hostile names only in part.
    let fault = m
        .get_parameter_values(std::slice::from_ref(&long))
        .expect_err("unknown");
    assert!(fault.string.len() < 400);
    let fault = m
        .set_parameter_values(
            &[pv(
                "Device.Bridging.Bridge.1.Enable",
                &long,
                ValueType::Boolean,
            )],
            "",
        )
        .expect_err("bad value");
    assert!(fault.set_parameter_values_faults[0].string.len() < 200);
}

#[test]
fn instance_numbers_run_out_cleanly() {
    let mut m = populated();
    assert_eq!(
        m.add_instance("Device.Ethernet.Interface.", Some(u32::MAX - 1)),
        Ok(u32::MAX - 1)
    );
    assert!(matches!(
        m.add_instance("Device.Ethernet.Interface.", None),
        Err(ModelError::TableFull(_))
    ));
    assert!(matches!(
        m.add_instance("Device.Ethernet.Interface.", Some(u32::MAX)),
        Err(ModelError::TableFull(_))
    ));
}
