//! The escape suite: from a `shell` tool call in workspace-write mode, every way out is tried and
//! must fail; the same writes inside the roots, and the network with `--network`, must work.
//! The repository and the "outside" must not live under /tmp or $TMPDIR, which the sandbox leaves
//! writable for commands' temporary files: they go under /var/tmp, or cargo's target directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use cox_testkit::{MockServer, Script, Turn};

use crate::harness::*;

struct Place {
    _root: tempfile::TempDir,
    repo: PathBuf,
    outside: PathBuf,
    home: PathBuf,
}

/// A directory for the suite outside every root the sandbox leaves writable.
pub fn base() -> PathBuf {
    let temp_roots: Vec<PathBuf> = [
        Some(PathBuf::from("/tmp")),
        std::env::var_os("TMPDIR").map(PathBuf::from),
    ]
    .into_iter()
    .flatten()
    .filter_map(|p| fs_err::canonicalize(p).ok())
    .collect();
    ["/var/tmp", env!("CARGO_TARGET_TMPDIR")]
        .iter()
        .filter_map(|p| fs_err::canonicalize(p).ok())
        .find(|p| !temp_roots.iter().any(|t| p.starts_with(t)))
        .expect("no directory outside /tmp and $TMPDIR to run the escape suite in")
}

fn place() -> Place {
    let root = tempfile::tempdir_in(base()).unwrap();
    let repo = root.path().join("repo");
    let outside = root.path().join("outside");
    fs_err::create_dir_all(&repo).unwrap();
    fs_err::create_dir_all(&outside).unwrap();
    fs_err::write(outside.join("victim.txt"), "original\n").unwrap();
    Place {
        repo: fs_err::canonicalize(&repo).unwrap(),
        outside: fs_err::canonicalize(&outside).unwrap(),
        home: root.path().join("home"),
        _root: root,
    }
}

/// Runs one shell command as the model's tool call under cox, returns the tool's output.
fn attempt(place: &Place, command: &str, extra: &[&str]) -> String {
    let args = serde_json::json!({ "command": ["sh", "-c", command] }).to_string();
    let server = MockServer::start(Script {
        turns: vec![Turn::call("shell", &args), Turn::text(&["done"])],
    })
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(&place.repo)
        .env("COX_HOME", &place.home)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(extra)
        .args(["exec", "try it"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body = server.requests()[1].body.to_string();
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    value["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .unwrap()["output"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_escape_attempt_fails_and_the_same_writes_inside_succeed() {
    let place = place();
    let out = place.outside.display().to_string();
    let victim = place.outside.join("victim.txt").display().to_string();
    let proc_root = format!("/proc/self/root{out}/via-proc.txt");
    std::os::unix::fs::symlink(&place.outside, place.repo.join("link-out")).unwrap();
    let escapes: Vec<(&str, String)> = vec![
        ("absolute path", format!("echo x > {out}/abs.txt")),
        ("../", "echo x > ../outside/rel.txt".to_string()),
        (
            "symlink pointing out",
            "echo x > link-out/via-link.txt".to_string(),
        ),
        ("/proc/self/root", format!("echo x > {proc_root}")),
        ("cd / && touch", format!("cd / && touch {out}/cd.txt")),
        (
            "python one-liner",
            format!("python3 -c \"open('{out}/py.txt','w').write('x')\""),
        ),
        (
            "perl one-liner",
            format!("perl -e 'open(F, \">{out}/pl.txt\") or die \"$!\\n\"; print F 1'"),
        ),
        (
            "hard link to a file outside",
            format!("ln {victim} hard && echo changed > hard"),
        ),
        (
            "overwrite a file outside",
            format!("echo changed > {victim}"),
        ),
        ("remove a file outside", format!("rm -f {victim}")),
    ];
    let mut escaped = Vec::new();
    for (name, command) in &escapes {
        let output = attempt(&place, command, &[]);
        let outside_files: Vec<String> = fs_err::read_dir(&place.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let victim_text =
            fs_err::read_to_string(place.outside.join("victim.txt")).unwrap_or_default();
        if outside_files != ["victim.txt"] || victim_text != "original\n" {
            escaped.push(format!("{name}: {output}"));
        }
        assert!(
            output.starts_with("exit code: ") && !output.starts_with("exit code: 0"),
            "{name} did not fail: {output}"
        );
    }
    // The network, off by default.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')\""
    );
    let offline = attempt(&place, &connect, &[]);
    if offline.contains("connected") {
        escaped.push(format!("TCP connect: {offline}"));
    }
    eprintln!(
        "sandbox escape suite: {} attempts, {} escapes",
        escapes.len() + 1,
        escaped.len()
    );
    assert!(escaped.is_empty(), "escapes: {escaped:#?}");

    // The same inside: they work.
    let inside = attempt(
        &place,
        "echo x > abs-in.txt && mkdir -p d && cd d && touch t && python3 -c \"open('py-in.txt','w').write('x')\" && echo ok > /tmp/cox-sandbox-ok-$$ && rm /tmp/cox-sandbox-ok-$$",
        &[],
    );
    assert!(inside.starts_with("exit code: 0"), "{inside}");
    assert!(place.repo.join("d/py-in.txt").exists());
    let online = attempt(&place, &connect, &["--network"]);
    assert!(online.contains("connected"), "{online}");
    drop(listener);
}

#[test]
fn read_only_mode_writes_nowhere_and_full_access_everywhere() {
    let place = place();
    let read_only = attempt(&place, "echo x > inside.txt", &["--sandbox", "read-only"]);
    assert!(read_only.contains("Permission denied"), "{read_only}");
    assert!(!place.repo.join("inside.txt").exists());
    let out = place.outside.display().to_string();
    let full = attempt(
        &place,
        &format!("echo x > {out}/full.txt"),
        &["--sandbox", "full-access"],
    );
    assert!(full.starts_with("exit code: 0"), "{full}");
}

#[test]
fn cox_sandbox_runs_one_command_under_the_policy() {
    let place = place();
    let out = place.outside.display().to_string();
    let denied = Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(&place.repo)
        .args([
            "sandbox",
            "--",
            "sh",
            "-c",
            &format!("echo x > {out}/s.txt"),
        ])
        .output()
        .unwrap();
    assert_ne!(denied.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
    let allowed = Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(&place.repo)
        .args(["sandbox", "--", "sh", "-c", "echo x > s.txt"])
        .output()
        .unwrap();
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
}

#[test]
fn headless_escalation_is_refused_with_the_reason() {
    let place = place();
    let out = place.outside.display().to_string();
    let args = serde_json::json!({ "command": ["sh", "-c", format!("echo x > {out}/esc.txt")], "with_escalated_permissions": true });
    let server = MockServer::start(Script {
        turns: vec![Turn::call("shell", &args.to_string()), Turn::text(&["ok"])],
    })
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(&place.repo)
        .env("COX_HOME", &place.home)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "try"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(!place.outside.join("esc.txt").exists());
    let seen = server.requests()[1].body["input"].to_string();
    assert!(
        seen.contains("the approval policy is `never`, so no one can approve it"),
        "{seen}"
    );
}

#[test]
fn sandboxed_commands_have_no_new_privs_and_a_seccomp_filter() {
    let place = place();
    let status = Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(&place.repo)
        .args([
            "sandbox",
            "--",
            "grep",
            "-E",
            "NoNewPrivs|Seccomp:",
            "/proc/self/status",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    assert!(text.contains("Seccomp:\t2"), "{text}");
}

/// A plan run's check goes through the same path as the model's commands: the same write outside
/// the workspace fails for both, and the check's failure fails the step.
#[test]
fn a_check_is_confined_by_the_sandbox_like_a_models_command() {
    let place = place();
    fs_err::write(place.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(
        place.repo.join("plan.json"),
        r#"{"goal": "g", "steps": [{"id": "S1", "title": "Add a heading"}]}"#,
    )
    .unwrap();
    let victim = place.outside.join("victim.txt");
    let escape = format!("echo pwned > {}", victim.display());
    let patch =
        "*** Begin Patch\n*** Update File: notes.txt\n@@\n+# Notes\n buy milk\n*** End Patch\n";
    let turns = vec![
        Turn::call(
            "shell",
            &serde_json::json!({ "command": ["sh", "-c", escape] }).to_string(),
        ),
        Turn::call(
            "apply_patch",
            &serde_json::json!({ "input": patch }).to_string(),
        ),
        Turn::text(&["Added the heading."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(&place.repo)
        .env("COX_HOME", &place.home)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["run", "--plan", "plan.json", "--json"])
        .args(["--test-cmd", &format!("{escape} && echo wrote")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        fs_err::read_to_string(&victim).unwrap(),
        "original\n",
        "neither the model nor the check wrote outside"
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |kind: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event"))
            .clone()
    };
    let (model, check) = (find("tool_result"), find("check_finished"));
    for (who, event) in [("model", &model), ("check", &check)] {
        let text = event["output"].as_str().unwrap();
        assert!(text.contains("Permission denied"), "{who}: {text}");
        assert!(!text.contains("wrote"), "{who}: {text}");
    }
    assert_eq!(
        (check["ok"].clone(), check["kind"].clone()),
        (false.into(), "tests".into())
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "the failing check fails the step"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(place.repo.join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(plan["steps"][0]["status"], "failed");
}

/// A command handed the person's terminal as its standard input still cannot type into it:
/// `TIOCSTI` is refused by the seccomp filter (and the command runs in a session of its own, so
/// the terminal is not its controlling one). The same program outside the sandbox succeeds, so
/// the check is real.
#[test]
fn a_terminal_on_stdin_cannot_be_typed_into() {
    let place = place();
    let pty = nix::pty::openpty(None, None).unwrap();
    let script = "import fcntl,termios\ntry:\n  fcntl.ioctl(0,termios.TIOCSTI,b'y'); print('typed')\nexcept OSError as e: print('refused', e.errno)";
    let run = |sandboxed: bool| {
        let stdin = std::fs::File::from(pty.slave.try_clone().unwrap());
        let mut command = if sandboxed {
            let mut c = Command::new(env!("CARGO_BIN_EXE_cox"));
            c.args(["sandbox", "--", "python3", "-c", script]);
            c
        } else {
            let mut c = Command::new("python3");
            c.args(["-c", script]);
            c
        };
        let output = command
            .current_dir(&place.repo)
            .env("COX_HOME", &place.home)
            .stdin(stdin)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(run(false), "typed");
    assert_eq!(run(true), "refused 1");
}

/// Not root, the launcher takes the other path: a user namespace mapping only the person's own
/// ids, which allows the mount and PID namespaces. Run as `nobody` (when the tests run as root)
/// or as whoever runs them: the same guarantees hold — writes inside, not into `.git`, nothing
/// outlives the command, and the ids are the person's own.
#[test]
fn not_root_the_user_namespace_path_contains_too() {
    let place = place();
    fs_err::create_dir_all(place.repo.join(".git")).unwrap();
    let root = nix::unistd::geteuid().is_root();
    if root {
        let owned = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(place.repo.parent().unwrap())
            .status()
            .unwrap();
        assert!(owned.success());
    }
    let script = "id -u; echo x > inside && echo wrote; echo y > .git/hook || echo refused; setsid -f sleep 77.4715; echo done";
    let mut command = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_cox"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_cox"))
    };
    let output = command
        .current_dir(&place.repo)
        .env("COX_HOME", &place.home)
        .args(["sandbox", "--", "sh", "-c", script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let uid = if root {
        "65534".to_string()
    } else {
        nix::unistd::geteuid().to_string()
    };
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [uid.as_str(), "wrote", "refused", "done"],
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!place.repo.join(".git/hook").exists());
    wait_for("the daemon to die with the command", || {
        pids_with_arg("77.4715").is_empty()
    });
}
