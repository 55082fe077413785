//! The Kubernetes manifests (`deploy/kubernetes`): the base and every overlay are rendered
//! the way `kubectl apply -k` would, and every object is validated offline against the
//! Kubernetes API schemas by PyPI's kubernetes-validate (`--strict`: unknown fields fail).
//! The two custom resources it has no schema for (Prometheus Operator's PodMonitor,
//! Multus's NetworkAttachmentDefinition) are checked against what they refer to instead.
//!
//! Neither kustomize nor kubectl is packaged for Debian 12 (its kubernetes-client is 1.20,
//! whose kustomize predates `patches`), so [`render`] implements the subset of kustomize
//! the manifests use, and refuses any other field (`deny_unknown_fields`): `resources`
//! (files and directories), `namespace`, and `patches` given as RFC 6902 JSON patches with
//! a kind/name target, applied by the `json-patch` crate.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize;
use serde_json::Value;

/// Every kustomization that `kubectl apply -k` is documented for.
const KUSTOMIZATIONS: &[&str] = &["base", "overlays/host-network", "overlays/multus"];

/// Kinds kubernetes-validate has no schema for (custom resources), checked by hand below.
const CUSTOM_KINDS: &[&str] = &["PodMonitor", "NetworkAttachmentDefinition"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    #[expect(dead_code, reason = "checked by serde: must be present")]
    api_version: String,
    #[expect(dead_code, reason = "checked by serde: must be present")]
    kind: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    patches: Vec<PatchRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchRef {
    path: String,
    target: Target,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    kind: String,
    name: String,
}

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The YAML documents of `path`, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Renders the kustomization in `dir`; `used` collects every file it reads.
fn render(dir: &Path, used: &mut BTreeSet<PathBuf>) -> Vec<Value> {
    let file = dir.join("kustomization.yaml");
    let k: Kustomization =
        serde_yaml::from_str(&read(&file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    used.insert(file.canonicalize().expect("canonical path"));
    let mut objects = Vec::new();
    for resource in &k.resources {
        let path = dir.join(resource);
        if path.is_dir() {
            objects.extend(render(&path, used));
        } else {
            used.insert(path.canonicalize().expect("canonical path"));
            objects.extend(documents(&path));
        }
    }
    for patch in &k.patches {
        let path = dir.join(&patch.path);
        used.insert(path.canonicalize().expect("canonical path"));
        let ops: json_patch::Patch = serde_json::from_value(
            documents(&path)
                .pop()
                .unwrap_or_else(|| panic!("{}: empty patch", path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: not a JSON 6902 patch: {e}", path.display()));
        let mut targets = objects.iter_mut().filter(|o| {
            o["kind"] == patch.target.kind.as_str()
                && o["metadata"]["name"] == patch.target.name.as_str()
        });
        let target = targets.next().unwrap_or_else(|| {
            panic!(
                "{}: no {} {}",
                path.display(),
                patch.target.kind,
                patch.target.name
            )
        });
        json_patch::patch(target, &ops)
            .unwrap_or_else(|e| panic!("{} does not apply: {e}", path.display()));
        assert!(
            targets.next().is_none(),
            "{}: several targets",
            path.display()
        );
    }
    if let Some(ns) = &k.namespace {
        for o in &mut objects {
            // Cluster-scoped kinds the manifests use.
            if o["kind"] != "Namespace" {
                o["metadata"]["namespace"] = Value::String(ns.clone());
            }
        }
    }
    objects
}

/// Runs kubernetes-validate --strict on `objects`; panics on any error, or on a missing
/// schema for a kind other than [`CUSTOM_KINDS`].
fn validate(name: &str, objects: &[Value]) {
    let validator = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools/k8s-venv/bin/kubernetes-validate");
    assert!(
        validator.is_file(),
        "{} is missing: run `cargo xtask setup` (it installs PyPI's kubernetes-validate)",
        validator.display()
    );
    let file = std::env::temp_dir().join(format!(
        "{}.yaml",
        nerg_tests::netns::unique_name(&format!("k8s-{}", name.replace('/', "-")))
    ));
    let text: Vec<String> = objects
        .iter()
        .map(|o| serde_json::to_string_pretty(o).expect("JSON"))
        .collect();
    std::fs::write(&file, text.join("\n---\n")).expect("writing the rendered manifests");
    let out = Command::new(&validator)
        .arg("--strict")
        .arg(&file)
        .output()
        .expect("running kubernetes-validate");
    let _ = std::fs::remove_file(&file);
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name}: kubernetes-validate failed:\n{report}"
    );
    let passed = report.lines().filter(|l| l.starts_with("INFO")).count();
    let custom = objects
        .iter()
        .filter(|o| CUSTOM_KINDS.iter().any(|k| o["kind"] == *k))
        .count();
    assert_eq!(
        passed + custom,
        objects.len(),
        "{name}: every object not a custom resource passes its schema:\n{report}"
    );
    for line in report.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            CUSTOM_KINDS
                .iter()
                .any(|k| line.contains(&format!("kind {k} "))),
            "{name}: unexpected warning: {line}"
        );
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// What the custom resources and the DaemonSet refer to exists, and the DaemonSet carries
/// what the deployment relies on.
fn check_references(name: &str, objects: &[Value]) {
    let ds = find(objects, "DaemonSet", "vgd");
    let pod = &ds["spec"]["template"];
    let container = &pod["spec"]["containers"][0];

    // The PodMonitor selects vgd's pods and scrapes a port they have.
    let monitor = find(objects, "PodMonitor", "vgd");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("PodMonitor selector")
    {
        assert_eq!(
            &pod["metadata"]["labels"][k], v,
            "{name}: PodMonitor selector {k}"
        );
    }
    let port = &monitor["spec"]["podMetricsEndpoints"][0]["port"];
    assert!(
        container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .any(|p| &p["name"] == port),
        "{name}: PodMonitor port {port} is not a container port"
    );

    // Probes on /health and /ready; the exact capabilities the podman test grants.
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    let caps: Vec<String> = nerg_tests::container::CAPABILITIES
        .iter()
        .map(|c| c.trim_start_matches("CAP_").to_owned())
        .collect();
    let security = &container["securityContext"];
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(security["capabilities"]["add"], serde_json::json!(caps));
    assert_eq!(security["allowPrivilegeEscalation"], false);

    // The bpffs is the host's (pins outlive the pod); config and token come from the
    // ConfigMap and the Secret, which exist and hold the keys read.
    let volumes = pod["spec"]["volumes"].as_array().expect("volumes");
    let volume = |n: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("{name}: no volume {n}"))
    };
    assert_eq!(volume("bpffs")["hostPath"]["path"], "/sys/fs/bpf");
    let mounts = container["volumeMounts"].as_array().expect("mounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["name"] == "bpffs" && m["mountPath"] == "/sys/fs/bpf"),
        "{name}: bpffs is not mounted at /sys/fs/bpf"
    );
    let cm = find(
        objects,
        "ConfigMap",
        volume("config")["configMap"]["name"].as_str().unwrap(),
    );
    assert!(cm["data"]["vgd.toml"].is_string(), "{name}: no vgd.toml");
    let secret = find(
        objects,
        "Secret",
        volume("api-token")["secret"]["secretName"]
            .as_str()
            .unwrap(),
    );
    assert!(
        secret["stringData"]["token"]
            .as_str()
            .is_some_and(|t| t.len() >= 16)
    );
    let env = |n: &str| {
        container["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == n)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("{name}: no {n}"))
            .to_owned()
    };
    assert_eq!(env("VGD_CONFIG"), "/etc/nerg/vgd.toml");
    assert_eq!(env("VGD_API_TOKEN_FILE"), "/run/secrets/nerg/token");
    assert!(container["resources"]["requests"]["memory"].is_string());

    // Multus: every network the pod asks for is defined, with a CNI configuration that
    // names it, and the interfaces vgd is given are the ones Multus creates.
    if let Some(networks) = pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"].as_str() {
        let networks: Vec<Value> = serde_json::from_str(networks)
            .unwrap_or_else(|e| panic!("{name}: networks annotation: {e}"));
        let mut interfaces = Vec::new();
        for n in &networks {
            let nad_name = n["name"].as_str().expect("network name");
            let nad = find(objects, "NetworkAttachmentDefinition", nad_name);
            let config: Value = serde_json::from_str(nad["spec"]["config"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{nad_name}: CNI config: {e}"));
            assert_eq!(config["name"], nad_name);
            assert!(config["cniVersion"].is_string() && config["type"].is_string());
            interfaces.push(n["interface"].as_str().expect("interface").to_owned());
        }
        assert_eq!(
            pod["spec"]["hostNetwork"], false,
            "{name}: Multus needs the pod's netns"
        );
        assert!(interfaces.contains(&env("VGD_ACCESS_IFACE")));
        assert!(interfaces.contains(&env("VGD_CORE_IFACE")));
    } else {
        assert_eq!(pod["spec"]["hostNetwork"], true, "{name}: host interfaces");
    }
}

#[test]
fn manifests_render_and_validate() {
    let mut used = BTreeSet::new();
    for name in KUSTOMIZATIONS {
        let objects = render(&k8s_dir().join(name), &mut used);
        assert!(
            objects.len() >= 5,
            "{name}: rendered {} objects",
            objects.len()
        );
        validate(name, &objects);
        check_references(name, &objects);
        for o in &objects {
            if o["kind"] != "Namespace" {
                assert_eq!(o["metadata"]["namespace"], "nerg", "{name}: {}", o["kind"]);
            }
        }
    }
    // No manifest escapes the checks: every YAML file is part of a kustomization.
    let mut stack = vec![k8s_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                assert!(
                    used.contains(&path.canonicalize().expect("canonical")),
                    "{} is in no kustomization, so nothing validates it",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_validator_rejects_what_the_api_would() {
    // The validation can fail: a field the API does not have, and a wrong type.
    let mut used = BTreeSet::new();
    let objects = render(&k8s_dir().join("base"), &mut used);
    for (path, value) in [
        (
            "/spec/template/spec/containers/0/livenessProbe/httpGet/pathh",
            "/health",
        ),
        (
            "/spec/template/spec/terminationGracePeriodSeconds",
            "fifteen",
        ),
    ] {
        let mut broken = objects.clone();
        let ds = broken
            .iter_mut()
            .find(|o| o["kind"] == "DaemonSet")
            .expect("DaemonSet");
        let op: json_patch::Patch = serde_json::from_value(serde_json::json!([
            { "op": "add", "path": path, "value": value }
        ]))
        .expect("patch");
        json_patch::patch(ds, &op).expect("applies");
        let outcome = std::panic::catch_unwind(|| validate("broken", &broken));
        assert!(
            outcome.is_err(),
            "kubernetes-validate accepted {path} = {value:?}"
        );
    }
}
