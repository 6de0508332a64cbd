//! Attacks that need more than one `cox exec`: cox's own checks in a plan run, and a race played
//! by a process beside the model's patches.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cox_testkit::{MockServer, Script, Turn};

use super::attacks::{Seen, fill};
use super::fixture::{Listeners, Project, SECRETS, walk};
use super::invariants;
use crate::harness::*;

#[test]
fn checks_run_sandboxed_scrubbed_and_journaled() {
    let listeners = Listeners::start();
    let project = Project::new();
    fs_err::write(
        project.repo.join("plan.json"),
        r#"{"goal": "g", "steps": [{"id": "S1", "title": "Look"}]}"#,
    )
    .unwrap();
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call(
                "apply_patch",
                &serde_json::json!({"input": "*** Begin Patch\n*** Add File: notes.md\n+x\n*** End Patch\n"}).to_string(),
            ),
            Turn::call("report_step", r#"{"status":"done","summary":"added notes"}"#),
            Turn::text(&["Added."]),
        ],
    })
    .unwrap();
    let check = fill(
        "touch {OUT}/check-ran; env > env-seen.txt; setsid -f sleep {MARK}; git config core.fsmonitor x",
        &project,
        &listeners,
    );
    let mut command = project.cox();
    command
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()));
    for (name, value) in SECRETS {
        command.env(name, value);
    }
    let before = project.state();
    let output = command
        .args([
            "run",
            "--plan",
            "plan.json",
            "--json",
            "--test-cmd",
            &check,
            "--lint-cmd",
            &check,
        ])
        .output()
        .unwrap();
    let seen = Seen {
        stdout: text(&output.stdout),
        stderr: text(&output.stderr),
        requests: server
            .requests()
            .iter()
            .map(|r| r.body.to_string())
            .collect(),
        results: Vec::new(),
    };
    assert!(seen.stdout.contains("check_finished"), "{}", seen.stderr);
    let mut broken = invariants(&project, &listeners, &seen, &before, listeners.hits());
    let env_seen = fs_err::read_to_string(project.repo.join("env-seen.txt")).unwrap();
    for (name, value) in SECRETS.iter().chain([&("session key", KEY)]) {
        if env_seen.contains(value) {
            broken.push(format!("{name} reached the check's environment"));
        }
    }
    let journals: String = walk(&project.home.join("sessions"))
        .iter()
        .filter_map(|p| fs_err::read_to_string(p).ok())
        .collect();
    assert!(journals.contains("check_start"), "checks are journaled");
    assert!(broken.is_empty(), "{broken:?}");
}

/// The race of the red-team report: while the model's patches are applied, a process of its own
/// swaps a directory in the workspace for a symlink to a directory outside, as fast as it can.
/// The test plays that process (the model cannot keep one running past its call any more, which
/// the suite above checks; a concurrent one is the harder case). Not one of 80 patches may land
/// outside.
#[test]
fn apply_patch_cannot_be_raced_out_of_the_workspace() {
    let project = Project::new();
    let d = project.repo.join("d");
    fs_err::create_dir_all(&d).unwrap();
    let turns: Vec<Turn> = (0..80)
        .map(|n| {
            let patch = format!("*** Begin Patch\n*** Add File: d/f{n}.txt\n+x\n*** End Patch\n");
            Turn::call(
                "apply_patch",
                &serde_json::json!({ "input": patch }).to_string(),
            )
        })
        .chain([Turn::text(&["done"])])
        .collect();
    let server = MockServer::start(Script { turns }).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, d, outside, repo) = (
            stop.clone(),
            d.clone(),
            project.outside.clone(),
            project.repo.clone(),
        );
        std::thread::spawn(move || {
            let real = repo.join("d.real");
            let link = repo.join("d.link");
            let mut swaps = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let _ = std::os::unix::fs::symlink(&outside, &link);
                let _ = fs_err::rename(&d, &real);
                let _ = fs_err::rename(&link, &d);
                std::thread::yield_now();
                let _ = fs_err::rename(&d, &link);
                let _ = fs_err::rename(&real, &d);
                let _ = fs_err::remove_file(&link);
                swaps += 1;
            }
            swaps
        })
    };
    let output = project
        .cox()
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "--json", "add the files"])
        .output()
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 100, "the race ran ({swaps} swaps)");
    assert_eq!(server.requests().len(), 81, "{}", text(&output.stderr));
    let outside: Vec<String> = fs_err::read_dir(&project.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('f') || n.contains("cox-patch"))
        .collect();
    assert!(outside.is_empty(), "landed outside: {outside:?}");
    let mut inside = 0;
    for dir in [&d, &project.repo.join("d.real")] {
        if let Ok(entries) = fs_err::read_dir(dir) {
            inside += entries.count();
        }
    }
    assert!(inside > 0, "some patches applied while the race ran");
    let mut buf = String::new();
    let _ = std::io::Cursor::new(output.stdout).read_to_string(&mut buf);
    assert!(
        buf.contains("symlink") || inside == 80,
        "the refusals say why"
    );
}
