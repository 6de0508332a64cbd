//! Issue 21: checkpoints and undo end to end. The scripted model changes the workspace by every
//! means it has — patches, `sed -i`, `rm`, `mv`, `mkdir`, a binary file, `chmod` — and `cox undo`
//! puts the tree back byte for byte (compared with a copy taken before), refuses when the person
//! changed a file since, can itself be undone, and works after a SIGKILL and `cox resume`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

/// Every path under `root` (but `.git`) with its mode, bytes or link target.
type Tree = Vec<(String, u32, Option<Vec<u8>>, Option<PathBuf>)>;

fn tree(root: &Path) -> Tree {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Tree) {
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        let meta = fs_err::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            out.push((rel, 0, None, Some(fs_err::read_link(&path).unwrap())));
        } else if meta.is_dir() {
            out.push((rel, mode, None, None));
            walk(root, &path, out);
        } else {
            out.push((rel, mode, Some(fs_err::read(&path).unwrap()), None));
        }
    }
}

fn shell(command: &str) -> Turn {
    Turn::call(
        "shell",
        &serde_json::json!({ "command": command }).to_string(),
    )
}

fn patch(body: &str) -> Turn {
    Turn::call(
        "apply_patch",
        &serde_json::json!({ "input": format!("*** Begin Patch\n{body}*** End Patch\n") })
            .to_string(),
    )
}

fn events(output: &std::process::Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A small project: sources, a script, a binary asset, a directory the model will delete.
fn project(env: &Env) {
    let write = |rel: &str, bytes: &[u8]| {
        let path = env.repo.join(rel);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, bytes).unwrap();
    };
    write(
        "src/app.js",
        b"const legacy = require('./legacy');\nmodule.exports = legacy;\n",
    );
    write("src/legacy.js", b"module.exports = () => 'old';\n");
    write("src/config.json", b"{\"port\": 8080}\n");
    write("assets/logo.bin", &[0, 159, 146, 150, 255, 0, 10, 13]);
    write("old/notes.txt", b"keep me\n");
    write("run.sh", b"#!/bin/sh\necho run\n");
    fs_err::set_permissions(
        env.repo.join("run.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
}

/// The mixed session: every kind of change, by every means.
fn mixed_turns() -> Vec<Turn> {
    vec![
        patch(
            "*** Update File: src/app.js\n@@\n-const legacy = require('./legacy');\n-module.exports = legacy;\n+module.exports = () => 'new';\n*** Add File: src/new.js\n+export const fresh = true;\n",
        ),
        shell("sed -i 's/8080/9090/' src/config.json"),
        shell("rm src/legacy.js && rm -r old"),
        shell("mv src/new.js src/fresh.js && mkdir -p lib/deep && echo lib > lib/deep/index.js"),
        shell("printf '\\x00\\x01\\x02binary\\xff' > assets/logo.bin && chmod 755 run.sh"),
        Turn::text(&["Refactored."]),
    ]
}

#[test]
fn undo_after_a_mixed_session_restores_the_tree_byte_for_byte_and_can_be_undone_issue_21() {
    let env = Env::new();
    project(&env);
    let before = tree(&env.repo);
    let server = MockServer::start(Script {
        turns: mixed_turns(),
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--json", "refactor the legacy code"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let after = tree(&env.repo);
    assert_ne!(after, before);
    assert_eq!(
        fs_err::read_to_string(env.repo.join("src/config.json")).unwrap(),
        "{\"port\": 9090}\n"
    );
    // One checkpoint per acting call, each naming what it changed.
    let checkpoints: Vec<Value> = events(&output)
        .into_iter()
        .filter(|e| e["type"] == "checkpoint")
        .collect();
    assert_eq!(checkpoints.len(), 5, "{checkpoints:?}");
    let has = |n: usize, file: Value| {
        let files = checkpoints[n]["files"].as_array().unwrap();
        assert!(
            files.contains(&file),
            "checkpoint {n}: {files:?} lacks {file}"
        );
    };
    use serde_json::json;
    has(0, json!({"path": "src/app.js", "change": "modified"}));
    has(0, json!({"path": "src/new.js", "change": "created"}));
    has(1, json!({"path": "src/config.json", "change": "modified"}));
    has(2, json!({"path": "src/legacy.js", "change": "deleted"}));
    has(2, json!({"path": "old/notes.txt", "change": "deleted"}));
    has(2, json!({"path": "old", "change": "deleted"}));
    has(
        3,
        json!({"path": "src/fresh.js", "change": "renamed", "from": "src/new.js"}),
    );
    has(3, json!({"path": "lib/deep", "change": "created"}));
    has(4, json!({"path": "assets/logo.bin", "change": "modified"}));
    has(
        4,
        json!({"path": "run.sh", "change": "mode", "from": "644", "to": "755"}),
    );
    // `cox checkpoints --json` lists them with the actions.
    let listed = run(env.cox().args(["checkpoints", "--json"]));
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let listed: Vec<Value> = events(&listed);
    assert_eq!(listed.len(), 5);
    assert!(
        listed[1]["action"].as_str().unwrap().contains("sed -i"),
        "{:?}",
        listed[1]
    );
    // Undo the last action alone: the binary and the mode come back, the rest stays.
    let undone = run(env.cox().arg("undo"));
    assert_eq!(undone.status.code(), Some(0), "{}", stderr(&undone));
    assert!(
        stdout(&undone).contains("assets/logo.bin"),
        "{}",
        stdout(&undone)
    );
    assert_eq!(
        fs_err::read(env.repo.join("assets/logo.bin")).unwrap(),
        [0, 159, 146, 150, 255, 0, 10, 13]
    );
    assert!(env.repo.join("lib/deep/index.js").exists());
    // Everything from the first checkpoint on: the tree is what it was.
    let all = run(env.cox().args(["undo", "--to", "1"]));
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));
    assert_eq!(tree(&env.repo), before, "byte for byte, modes and all");
    // The undo is a checkpoint: undoing it brings the session's work back.
    let listed = events(&run(env.cox().args(["checkpoints", "--json"])));
    let last_undo = listed.last().unwrap();
    assert_eq!(last_undo["kind"], "undo");
    let id = last_undo["id"].as_u64().unwrap().to_string();
    let redo = run(env.cox().args(["undo", "--to", &id]));
    assert_eq!(redo.status.code(), Some(0), "{}", stderr(&redo));
    // All but the last action, which was undone on its own before.
    let mut expected = after.clone();
    for entry in &mut expected {
        if entry.0 == "assets/logo.bin" {
            entry.2 = Some(vec![0, 159, 146, 150, 255, 0, 10, 13]);
        }
        if entry.0 == "run.sh" {
            entry.1 = 0o644;
        }
    }
    assert_eq!(tree(&env.repo), expected);
}

#[test]
fn undo_refuses_when_the_person_changed_a_file_since_and_changes_nothing_issue_21() {
    let env = Env::new();
    project(&env);
    let server = MockServer::start(Script {
        turns: vec![
            shell("echo 'agent line' >> src/app.js && echo made > src/made.js"),
            Turn::text(&["done"]),
        ],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "edit"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The person edits the same file afterwards.
    let mut text = fs_err::read_to_string(env.repo.join("src/app.js")).unwrap();
    text.push_str("// the person's line\n");
    fs_err::write(env.repo.join("src/app.js"), &text).unwrap();
    let before = tree(&env.repo);
    let refused = run(env.cox().arg("undo"));
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let said = stderr(&refused);
    assert!(
        said.contains("src/app.js") && said.contains("changed since"),
        "{said}"
    );
    assert!(
        !said.contains("src/made.js"),
        "only the conflicting file is named: {said}"
    );
    assert_eq!(tree(&env.repo), before, "nothing was touched");
    // The person's edit is recorded as theirs (an outside checkpoint), never undone.
    let listed = events(&run(env.cox().args(["checkpoints", "--json"])));
    let kinds: Vec<&str> = listed.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["action", "outside"]);
}

#[test]
fn an_undo_while_the_session_runs_is_refused_by_its_lock_issue_21() {
    // The model (or anyone) running `cox undo` from inside the session's own command: the
    // session holds its lock, so the undo is refused and the files stay.
    let env = Env::new();
    project(&env);
    let cox = env!("CARGO_BIN_EXE_cox");
    let server = MockServer::start(Script {
        turns: vec![
            shell("echo one > one.txt"),
            shell(&format!(
                "COX_HOME={} {cox} undo > undo.log 2>&1; echo $? >> undo.log",
                env.home.display()
            )),
            Turn::text(&["done"]),
        ],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["--sandbox", "full-access", "exec", "go"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(env.repo.join("one.txt").exists(), "the undo did not happen");
    let log = fs_err::read_to_string(env.repo.join("undo.log")).unwrap();
    assert!(log.contains("in use by another cox"), "{log}");
}

#[test]
fn undo_works_after_a_sigkill_mid_call_and_resume_issue_21() {
    let env = Env::new();
    project(&env);
    let before = tree(&env.repo);
    let turns = vec![
        shell("echo killed-mid-call > src/half.js && sed -i 's/old/older/' src/legacy.js"),
        Turn::text(&["Resumed and done."]),
    ];
    let server = MockServer::start_deterministic(Script { turns }).unwrap();
    // Killed after the command ran, before cox looked at what it changed.
    let crashed = env
        .cox_with(&server)
        .env(cox_core::crash::ENV, "after:tool_run")
        .args(["exec", "change things"])
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9), "{}", stderr(&crashed));
    assert!(env.repo.join("src/half.js").exists());
    let resumed = run(env.cox_with(&server).args(["resume", "--last", "--json"]));
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    // The cut-short call's changes are its own checkpoint, found when the session reopened.
    let checkpoint = events(&resumed)
        .into_iter()
        .find(|e| e["type"] == "checkpoint")
        .expect("a checkpoint for the call cut short");
    assert_eq!(checkpoint["kind"], "action");
    assert!(
        checkpoint["action"].as_str().unwrap().contains("cut short"),
        "{checkpoint}"
    );
    let undone = run(env.cox().arg("undo"));
    assert_eq!(undone.status.code(), Some(0), "{}", stderr(&undone));
    assert_eq!(tree(&env.repo), before);
}

#[test]
fn a_plan_step_is_undone_with_every_action_of_its_session_issue_21() {
    let env = Env::new();
    fs_err::write(env.repo.join("plan.json"), crate::reliability::PLAN).unwrap();
    let step = |name: &str, line: &str| {
        vec![
            shell(line),
            Turn::call("report_step", r#"{"status":"done","summary":"logged"}"#),
            Turn::text(&[name]),
        ]
    };
    let mut turns = step(
        "S1",
        "echo one >> log.txt && mkdir -p out && echo s1 > out/s1.txt",
    );
    turns.extend(step("S2", "echo s2 > s2.txt"));
    let server = MockServer::start(Script { turns }).unwrap();
    let ran = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let undone = run(env
        .cox()
        .args(["undo", "--plan", "plan.json", "--step", "S1"]));
    assert_eq!(undone.status.code(), Some(0), "{}", stderr(&undone));
    assert!(!env.repo.join("log.txt").exists() && !env.repo.join("out").exists());
    assert_eq!(
        fs_err::read_to_string(env.repo.join("s2.txt")).unwrap(),
        "s2\n",
        "the other step's work stays"
    );
    assert!(
        stderr(&undone).contains("step S1 is pending again"),
        "{}",
        stderr(&undone)
    );
    let plan: Value =
        serde_json::from_str(&fs_err::read_to_string(env.repo.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["steps"][0]["status"], "pending");
    assert!(plan["steps"][0].get("cox_session").is_none());
    assert_eq!(plan["steps"][1]["status"], "done");
    // A step that has not run (any more) has nothing to undo: said, exit 2.
    let again = run(env
        .cox()
        .args(["undo", "--plan", "plan.json", "--step", "S1"]));
    expect_failure(&again, 2, "step S1 of plan.json has not run yet");
}

#[test]
fn a_session_that_changed_nothing_keeps_no_copy_of_the_workspace_issue_21() {
    let env = Env::new();
    project(&env);
    let server = MockServer::start(Script {
        turns: vec![shell("cat src/app.js"), Turn::text(&["It exports legacy."])],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "what does app.js export?"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stores: Vec<_> = fs_err::read_dir(env.home.join("checkpoints"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(stores.is_empty(), "left behind: {stores:?}");
    let listed = run(env.cox().arg("checkpoints"));
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(
        stderr(&listed).contains("has no checkpoints"),
        "{}",
        stderr(&listed)
    );
    expect_failure(&run(env.cox().arg("undo")), 1, "nothing to undo");
}
