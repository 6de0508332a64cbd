//! The architecture, guarded: dependencies between the crates point one way, the documented
//! contracts (`docs/contracts.md`) list exactly what the code has, and no crate but `cox-tools`
//! knows a tool by its name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn read(path: &str) -> String {
    fs_err::read_to_string(workspace().join(path)).unwrap()
}

/// What each crate may depend on (normal dependencies among the workspace's crates).
const ALLOWED: &[(&str, &[&str])] = &[
    ("cox-protocol", &[]),
    ("cox-sandbox", &["cox-protocol"]),
    ("cox-model", &["cox-protocol"]),
    ("cox-tools", &["cox-protocol", "cox-sandbox"]),
    (
        "cox-core",
        &[
            "cox-protocol",
            "cox-model",
            "cox-tools",
            "cox-sandbox",
            "cox-mcp",
        ],
    ),
    ("cox-term", &["cox-protocol"]),
    ("cox", &["cox-protocol", "cox-core", "cox-term"]),
    // The benchmarks measure the layers below the engine too, against the mock model.
    (
        "cox-bench",
        &[
            "cox-protocol",
            "cox-model",
            "cox-tools",
            "cox-sandbox",
            "cox-core",
            "cox-testkit",
        ],
    ),
    ("cox-testkit", &[]),
    // The MCP client: rmcp and the transports, no policy (core decides it).
    ("cox-mcp", &[]),
];

/// Normal (not dev or build) dependencies of each workspace crate on the others, from
/// `cargo metadata`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let ours: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|name| ours.contains(name))
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn dependencies_point_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let actual = dependencies();
    let mut wrong = Vec::new();
    for (krate, deps) in &actual {
        let Some(may) = allowed.get(krate.as_str()) else {
            wrong.push(format!(
                "{krate} is a new crate: add it to ALLOWED with the layer it belongs to"
            ));
            continue;
        };
        for dep in deps {
            if !may.contains(&dep.as_str()) {
                wrong.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies point the wrong way: {wrong:?}"
    );
    // The check can fail: the engine depending on a front end would be caught.
    assert!(!allowed["cox-core"].contains(&"cox-term"));
    assert!(actual["cox-core"].contains("cox-tools"), "{actual:?}");
}

/// The variants of `pub enum NAME` in a source file, as their snake_case wire names.
fn variants(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub enum {name} {{"))
        .unwrap_or_else(|| panic!("no enum {name}"));
    let body = &source[start..];
    let end = body.find("\n}\n").unwrap();
    body[..end]
        .lines()
        .skip(1)
        .filter_map(|line| {
            let rest = line.strip_prefix("    ")?;
            let first = rest.chars().next()?;
            if !first.is_ascii_uppercase() {
                return None;
            }
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            Some(snake(&ident))
        })
        .collect()
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The first-column names of the table under the heading `heading` in docs/contracts.md.
fn documented(heading: &str) -> Vec<String> {
    let doc = read("docs/contracts.md");
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let section = &doc[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_string()))
        .collect()
}

fn same_set(code: Vec<String>, doc: Vec<String>, what: &str) {
    let code: BTreeSet<String> = code.into_iter().collect();
    let doc: BTreeSet<String> = doc.into_iter().collect();
    let undocumented: Vec<&String> = code.difference(&doc).collect();
    let stale: Vec<&String> = doc.difference(&code).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "docs/contracts.md and the code disagree on the {what}: missing from the doc {undocumented:?}, \
         not in the code {stale:?}"
    );
    assert!(
        code.len() > 3,
        "found too few {what} to be checking anything"
    );
}

#[test]
fn every_event_is_in_the_documented_table() {
    let code = variants(&read("crates/protocol/src/event.rs"), "Event");
    assert!(code.contains(&"step_finished".to_string()), "{code:?}");
    same_set(code, documented("Events (`--json`)"), "events");
}

#[test]
fn every_op_is_documented() {
    let code = variants(&read("crates/protocol/src/lib.rs"), "Op");
    same_set(code, documented("Ops (in)"), "ops");
}

#[test]
fn every_journal_record_is_documented() {
    let code = variants(&read("crates/core/src/journal.rs"), "Record");
    same_set(code, documented("Session journal"), "journal records");
}

/// Each tool module's `pub const NAME`.
fn tool_names() -> Vec<String> {
    let dir = workspace().join("crates/tools/src");
    let mut names = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let text = fs_err::read_to_string(entry.unwrap().path()).unwrap_or_default();
        if let Some(rest) = text.split("\npub const NAME: &str = \"").nth(1) {
            names.push(rest.split('"').next().unwrap().to_string());
        }
    }
    names
}

#[test]
fn every_tool_is_documented() {
    same_set(
        tool_names(),
        documented("Tools offered to the model"),
        "tools",
    );
}

/// Shipped source of a crate: its `src/` files, each cut at its first `#[cfg(test)]` item, without
/// the files that are test modules themselves (declared `#[cfg(test)] mod NAME;`).
fn shipped_sources(krate: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &workspace().join("crates").join(krate).join("src"),
        &mut files,
    );
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| {
            let text = fs_err::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    let test_modules: BTreeSet<String> = texts
        .iter()
        .flat_map(|(_, text)| {
            // `#[cfg(test)]` or `#[cfg(all(test, …))]`, then `mod NAME;`.
            text.split("\nmod ")
                .zip(text.split("\nmod ").skip(1))
                .filter(|(before, _)| {
                    let attribute = before.lines().last().unwrap_or_default();
                    attribute.starts_with("#[cfg(") && attribute.contains("test")
                })
                .filter_map(|(_, rest)| rest.split_once(';').map(|(name, _)| format!("{name}.rs")))
                .collect::<Vec<_>>()
        })
        .collect();
    texts
        .into_iter()
        .filter(|(p, _)| {
            // A test module, or a module of one (`frames/live.rs` under `frames.rs`).
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let parent = p
                .parent()
                .and_then(Path::file_name)
                .map(|d| format!("{}.rs", d.to_string_lossy()));
            !test_modules.contains(&name) && !parent.is_some_and(|d| test_modules.contains(&d))
        })
        .map(|(p, text)| {
            let shipped = text.split("\n#[cfg(test)]").next().unwrap().to_string();
            (p, shipped)
        })
        .collect()
}

/// Literals that are the same word as a tool but not the tool: the `grep` program, which the
/// sandbox's list of read-only programs names.
const NOT_THE_TOOL: &[(&str, &str)] = &[("crates/sandbox/src/classify.rs", "grep")];

#[test]
fn no_crate_but_the_tools_knows_a_tool_by_name() {
    let names = tool_names();
    assert!(names.contains(&"apply_patch".to_string()), "{names:?}");
    let mut found = Vec::new();
    let mut scanned = 0;
    for krate in ["protocol", "model", "sandbox", "core", "term", "cli"] {
        for (path, text) in shipped_sources(krate) {
            scanned += 1;
            let relative = path.strip_prefix(workspace()).unwrap().to_path_buf();
            for name in &names {
                let excepted = NOT_THE_TOOL
                    .iter()
                    .any(|(file, word)| relative == Path::new(file) && word == name);
                if !excepted && text.contains(&format!("\"{name}\"")) {
                    found.push(format!("{} names `{name}`", path.display()));
                }
            }
        }
    }
    assert!(scanned > 30, "scanned only {scanned} files");
    assert!(
        found.is_empty(),
        "tool names as string literals outside cox-tools: {found:?}"
    );
}
