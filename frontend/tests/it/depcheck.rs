//! The crate graph of DESIGN.md, enforced: a crate may depend only on the
//! Tributary crates listed for it here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// For each workspace crate, the Tributary crates it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("tributary-storage", &[]),
    ("tributary-planner", &["tributary-storage"]),
    (
        "tributary-executor",
        &["tributary-planner", "tributary-storage"],
    ),
    (
        "tributary-kafka-compat",
        &["tributary-executor", "tributary-storage"],
    ),
    ("tributary-web-ui", &["tributary-executor"]),
    ("tributary-sqllogictest", &[]),
    (
        "tributary",
        &[
            "tributary-planner",
            "tributary-executor",
            "tributary-storage",
            "tributary-kafka-compat",
            "tributary-web-ui",
        ],
    ),
];

#[test]
fn crates_depend_only_in_the_designed_direction() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect();
    let packages = metadata["packages"].as_array().unwrap();
    assert_eq!(
        packages.len(),
        ALLOWED.len(),
        "every workspace crate has a rule here"
    );
    for package in packages {
        let name = package["name"].as_str().unwrap();
        let rule = allowed
            .get(name)
            .unwrap_or_else(|| panic!("crate {name} has no rule in depcheck.rs"));
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let is_dev = dep["kind"].as_str() == Some("dev");
            if dep_name.starts_with("tributary") && !is_dev {
                assert!(
                    rule.contains(dep_name),
                    "{name} must not depend on {dep_name} (see DESIGN.md)"
                );
            }
        }
    }
}
