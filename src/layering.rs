//! Layering checks: lower layers import nothing from the layers above them, and the
//! verifier's oracle and invariants judge the engine without using its code.

use std::path::{Path, PathBuf};

/// Every `.rs` file of a module: `src/<name>.rs` and everything under `src/<name>/`.
fn module_files(name: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let single = src.join(format!("{name}.rs"));
    if single.is_file() {
        out.push(single);
    }
    let mut dirs = vec![src.join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Code with `//` comments removed and whitespace squeezed out, so a grouped
/// `use crate::{\n    engine::x,\n}` reads as `usecrate::{engine::x,}`.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect()
}

/// Where `code` reaches into `crate::<module>` (a path, or a grouped import naming it).
fn reaches(code: &str, module: &str) -> bool {
    let paths = [
        format!("crate::{module}::"),
        format!("crate::{module};"),
        format!("crate::{module}}}"),
        format!("crate::{module},"),
        format!("super::{module}::"),
        format!("super::super::{module}"),
    ];
    if paths.iter().any(|p| code.contains(p.as_str())) {
        return true;
    }
    // `crate::{a, engine::b}`: look inside each group.
    code.match_indices("crate::{").any(|(at, _)| {
        let group = &code[at + "crate::{".len()..];
        let end = group.find('}').unwrap_or(group.len());
        group[..end]
            .split(',')
            .any(|item| item == module || item.starts_with(&format!("{module}::")))
    })
}

/// Files of `files` that reach into any of `forbidden`, as `path: module`.
fn violations(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let code = code_of(&text);
        for module in forbidden {
            if reaches(&code, module) {
                found.push(format!("{}: imports crate::{module}", path.display()));
            }
        }
    }
    found
}

#[test]
fn the_checker_sees_paths_and_grouped_imports() {
    assert!(reaches(&code_of("use crate::engine::dlq::X;"), "engine"));
    assert!(reaches(
        &code_of("let o = crate::mock::org::Org::new(b);"),
        "mock"
    ));
    assert!(reaches(
        &code_of("use crate::{\n    contract::Bundle,\n    engine::Sync,\n};"),
        "engine"
    ));
    assert!(reaches(&code_of("use crate::{engine, sim};"), "engine"));
    assert!(!reaches(
        &code_of("use crate::{contract::Bundle, sim};"),
        "engine"
    ));
    assert!(!reaches(
        &code_of("// crate::engine is not used here"),
        "engine"
    ));
    assert!(!reaches(&code_of("use crate::engineering::X;"), "engine"));
}

#[test]
fn lower_layers_import_nothing_from_the_layers_above() {
    let mut found = Vec::new();
    for layer in ["contract", "store", "sim", "source"] {
        let files = module_files(layer);
        assert!(!files.is_empty(), "no files found for src/{layer}");
        found.extend(violations(&files, &["mock", "engine", "verify"]));
    }
    assert!(
        found.is_empty(),
        "layers run upwards:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_oracle_and_invariants_share_no_code_with_the_engine() {
    let mut files: Vec<PathBuf> = [
        "oracle.rs",
        "invariants.rs",
        "evidence.rs",
        "letters.rs",
        "rerun.rs",
    ]
    .iter()
    .map(|f| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/verify")
            .join(f)
    })
    .collect();
    files.extend(module_files("verify/model"));
    assert!(files.iter().all(|f| f.is_file()), "{files:?}");
    assert!(
        files.len() > 4,
        "the model's files were not found: {files:?}"
    );
    let found = violations(&files, &["engine"]);
    assert!(
        found.is_empty(),
        "the oracle reaches into the engine:\n{}",
        found.join("\n")
    );
}
