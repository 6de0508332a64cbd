//! Shared by the end-to-end tests: a temp repository and COX_HOME, ways to run cox in them, and
//! waiting on processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cox_testkit::{MockServer, Script, Turn};

pub const KEY: &str = "sk-test-cli-0123456789wxyz";

/// A temp repository and COX_HOME, and a way to run cox in them.
pub struct Env {
    _root: tempfile::TempDir,
    pub repo: PathBuf,
    pub home: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        Env::in_dir(tempfile::tempdir().unwrap())
    }

    /// An Env outside every root the sandbox leaves writable (`/tmp` is one): what the fallback
    /// sandbox needs to keep `$COX_HOME` out of the commands' reach.
    pub fn outside_temp() -> Env {
        Env::in_dir(tempfile::tempdir_in(crate::sandbox::base()).unwrap())
    }

    fn in_dir(root: tempfile::TempDir) -> Env {
        let repo = root.path().join("repo");
        let home = root.path().join("cox-home");
        fs_err::create_dir_all(&repo).unwrap();
        fs_err::write(repo.join("README.md"), "# Demo\nA tiny repository.\n").unwrap();
        Env {
            _root: root,
            repo,
            home,
        }
    }

    /// `cox` with a clean environment: no provider variables from the machine running the tests.
    pub fn cox(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cox"));
        command
            .current_dir(&self.repo)
            .env("COX_HOME", &self.home)
            .env("HOME", self.home.parent().unwrap())
            .stdin(Stdio::null());
        for var in [
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "OLLAMA_BASE_URL",
            "NO_COLOR",
        ] {
            command.env_remove(var);
        }
        command
    }

    /// `cox` pointed at `server` as the default (Responses) provider, with quick retries.
    pub fn cox_with(&self, server: &MockServer) -> Command {
        let mut command = self.cox();
        command
            .env("OPENAI_API_KEY", KEY)
            .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
            .args([
                "-c",
                "retry_base_delay_ms=10",
                "-c",
                "stream_idle_timeout_ms=400",
            ]);
        command
    }

    pub fn lines_of(&self, file: &str) -> usize {
        fs_err::read_to_string(self.repo.join(file))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("cox runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !all.contains(KEY),
        "the API key leaked into the output:\n{all}"
    );
    output
}

/// The run failed with `code` and its stderr says `needle`.
pub fn expect_failure(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
}

/// A shell result with its varying `duration: N s` line made constant.
pub fn timeless(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("duration: ") && line.ends_with(" s") {
                "duration: [d]"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn three_turn_script() -> Script {
    Script {
        turns: vec![
            Turn::text(&["I will read the README."]).with_call(
                "read_file",
                r#"{"path":"README.md"}"#,
                3,
            ),
            Turn::call("shell", r#"{"command":["wc","-l","README.md"]}"#).with_usage(150, 100, 12),
            Turn::text(&["README.md has ", "2 lines: a title and one sentence."]),
        ],
    }
}

/// True while `pid` is a live (not zombie) process.
/// The host's pids of live processes with `arg` among their arguments (commands run in a PID
/// namespace of their own, so the pids they see are not the host's).
pub fn pids_with_arg(arg: &str) -> Vec<u32> {
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs_err::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
        })
        .filter(|&pid| alive(pid))
        .collect()
}

pub fn alive(pid: u32) -> bool {
    match fs_err::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Waits for a condition a child process brings about, with a deadline rather than a fixed sleep.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Makes `repo` a git repository with everything in it committed.
pub fn commit_everything(repo: &Path) {
    for args in [
        &["init", "-q"][..],
        &["add", "."][..],
        &["commit", "-q", "-m", "first"][..],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", text(&status.stderr));
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tool outputs the model was sent in request `request` (Responses `function_call_output`).
pub fn tool_outputs(server: &MockServer, request: usize) -> Vec<String> {
    server.requests()[request].body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| item["output"].as_str().unwrap().to_string())
        .collect()
}
