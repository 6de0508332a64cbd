//! What a person installing cox meets: `cox doctor`, shell completions and the man pages.

use std::process::Command;

use cox_testkit::{MockServer, Script};

use crate::harness::{Env, KEY, run, stderr, stdout};

/// `cox doctor --json`: each check as (name, status, detail, fix).
fn doctor(command: &mut Command, flags: &[&str]) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let output = run(command.args(["doctor", "--json"]).args(flags));
    let checks = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    (output.status.code(), checks, stderr(&output))
}

fn find<'a>(checks: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
}

#[test]
fn doctor_passes_with_a_key_and_shows_it_masked_with_its_source() {
    let env = Env::new();
    let server = MockServer::start(Script { turns: vec![] }).unwrap();
    let (code, checks, err) = doctor(&mut env.cox_with(&server), &["--check-urls"]);
    assert_eq!(code, Some(0), "{checks:#?}\n{err}");
    let key = find(&checks, "key openai");
    assert_eq!(key["status"], "ok");
    let detail = key["detail"].as_str().unwrap();
    assert!(
        detail.contains("sk-…wxyz") && detail.contains("env OPENAI_API_KEY"),
        "{detail}"
    );
    let url = find(&checks, "url openai");
    assert_eq!(url["status"], "ok", "{url}");
    assert!(url["detail"].as_str().unwrap().contains("answers (HTTP"));

    // A user name and password in a base URL that answers are not shown either.
    let with_password = server.url().replace("http://", "http://cox:hunter2secret@");
    let (code, checks, _) = doctor(
        env.cox_with(&server)
            .env("OPENAI_BASE_URL", format!("{with_password}/v1")),
        &["--check-urls"],
    );
    assert_eq!(code, Some(0), "{checks:#?}");
    let detail = find(&checks, "url openai")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with(&format!("{}/v1 answers", server.url())),
        "{detail}"
    );
    let all = serde_json::to_string(&checks).unwrap();
    assert!(!all.contains("hunter2"), "the password is shown: {all}");
    for name in [
        "landlock",
        "seccomp",
        "namespaces",
        "bash",
        "config",
        "home",
    ] {
        assert_eq!(find(&checks, name)["status"], "ok", "{checks:#?}");
    }
    assert!(
        find(&checks, "landlock")["detail"]
            .as_str()
            .unwrap()
            .starts_with("ABI "),
        "the ABI is named"
    );
    // Providers not in use are listed, and do not fail the check.
    assert_eq!(find(&checks, "key anthropic")["status"], "info");
    assert!(
        !env.home.exists(),
        "doctor wrote nothing, not even COX_HOME"
    );
}

#[test]
fn doctor_fails_naming_what_to_do_without_a_key_and_with_a_bad_config() {
    let env = Env::new();
    let (code, checks, err) = doctor(&mut env.cox(), &[]);
    assert_eq!(code, Some(1), "{checks:#?}");
    let key = find(&checks, "key openai");
    assert_eq!(key["status"], "missing");
    assert_eq!(
        key["fix"],
        "set OPENAI_API_KEY, or run `cox auth login --provider openai`"
    );
    assert!(err.contains("1 required thing is missing"), "{err}");

    // Another provider needs no key: nothing is missing.
    let (code, checks, _) = doctor(
        &mut env.cox(),
        &["--provider", "ollama", "-m", "qwen2.5-coder"],
    );
    assert_eq!(code, Some(0), "{checks:#?}");
    assert_eq!(find(&checks, "key openai")["status"], "info");

    // A stored key counts, and says where it is.
    let mut login = env.cox();
    login
        .args(["auth", "login", "--provider", "openai"])
        .stdin(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(KEY.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (code, checks, _) = doctor(&mut env.cox(), &[]);
    assert_eq!(code, Some(0), "{checks:#?}");
    let detail = find(&checks, "key openai")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("from file") && detail.contains("auth.json"),
        "{detail}"
    );

    fs_err::write(env.home.join("config.toml"), "max_turns = 0\n").unwrap();
    let (code, checks, _) = doctor(&mut env.cox(), &[]);
    assert_eq!(code, Some(1));
    let config = find(&checks, "config");
    assert_eq!(config["status"], "missing");
    assert!(
        config["detail"].as_str().unwrap().contains("max_turns"),
        "{config}"
    );
}

#[test]
fn doctor_reports_a_provider_that_does_not_answer_and_the_namespace_fallback() {
    let env = Env::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (code, checks, _) = doctor(
        env.cox()
            .env("OPENAI_API_KEY", KEY)
            .env(
                "OPENAI_BASE_URL",
                format!("http://cox:hunter2secret@127.0.0.1:{port}/v1"),
            )
            .env("COX_SANDBOX_NO_NAMESPACES", "1"),
        &["--check-urls"],
    );
    assert_eq!(code, Some(1), "{checks:#?}");
    let url = find(&checks, "url openai");
    assert_eq!(url["status"], "missing");
    let detail = url["detail"].as_str().unwrap();
    assert!(detail.contains("cannot connect"), "{url}");
    assert!(
        detail.starts_with(&format!("http://127.0.0.1:{port}/v1")) && !detail.contains("hunter2"),
        "a password in the URL is not shown: {detail}"
    );
    let namespaces = find(&checks, "namespaces");
    assert_eq!(namespaces["status"], "warn");
    assert!(
        namespaces["detail"]
            .as_str()
            .unwrap()
            .contains("COX_SANDBOX_NO_NAMESPACES=1"),
        "{namespaces}"
    );
}

#[test]
fn the_text_report_lists_each_check_and_its_fix() {
    let env = Env::new();
    let output = run(env.cox().arg("doctor"));
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.starts_with("cox 0.1.0 ("), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("missing  key openai")),
        "{out}"
    );
    assert!(out.contains("→ set OPENAI_API_KEY"), "{out}");
}

#[test]
fn bash_completion_loads_and_knows_the_commands() {
    let env = Env::new();
    let output = run(env.cox().args(["completions", "bash"]));
    assert!(output.status.success());
    let script = env.repo.join("cox.bash");
    fs_err::write(&script, &output.stdout).unwrap();
    // Loaded into a real bash, then asked to complete `cox do`.
    let probe = format!(
        "source {}; COMP_WORDS=(cox do); COMP_CWORD=1; COMP_LINE='cox do'; COMP_POINT=6; _cox cox do cox; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let completed = Command::new("bash").args(["-c", &probe]).output().unwrap();
    assert!(completed.status.success(), "{}", stderr(&completed));
    assert_eq!(stdout(&completed).trim(), "doctor");
    for shell in ["zsh", "fish"] {
        let output = run(env.cox().args(["completions", shell]));
        assert!(output.status.success());
        assert!(stdout(&output).contains("checkpoints"), "{shell}");
    }
    // A reader that stops early ends it quietly: no panic.
    let early = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' completions bash | head -c 10 >/dev/null",
            env!("CARGO_BIN_EXE_cox")
        ))
        .output()
        .unwrap();
    assert!(!stderr(&early).contains("panicked"), "{}", stderr(&early));
    let bad = run(env.cox().args(["completions", "tcsh"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("possible values"), "{}", stderr(&bad));
}

#[test]
fn man_pages_cover_every_command_a_person_uses() {
    let env = Env::new();
    let dir = env.repo.join("man");
    let output = run(env.cox().args(["__man", "--dir"]).arg(&dir));
    assert!(output.status.success(), "{}", stderr(&output));
    let main = fs_err::read_to_string(dir.join("cox.1")).unwrap();
    assert!(main.contains(".TH cox 1"), "{main}");
    assert!(main.contains("doctor"), "the main page lists the commands");
    let doctor = fs_err::read_to_string(dir.join("cox-doctor.1")).unwrap();
    assert!(doctor.contains("check\\-urls"), "{doctor}");
    let mut names: Vec<String> = fs_err::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"cox-run.1".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("__")),
        "internal commands get no page: {names:?}"
    );
    let bad = run(env.cox().args(["__man", "--dir", "/proc/cox-man"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("cannot write the man pages"));
}
