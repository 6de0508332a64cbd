#![doc = include_str!("shell.md")]
//!
//! ## Implementation notes
//!
//! The command runs in a process group of its own so that a timeout or an interrupt kills it and
//! everything it spawned (`killpg`), and the group is also killed once the command itself exits, so
//! no stray background process outlives its call. Stdout and stderr share one pipe so the order of
//! their lines is kept. The variables in `ToolContext::hidden_env` (credentials) are removed from the child.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cox_protocol::{Action, ToolKind, ToolOutcome, ToolSpec};
use cox_sandbox::classify::{NotReadOnly, line_reads_only, why_not_read_only};
use cox_sandbox::command::SimpleCommand;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::{BoxFuture, HeadTail, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

/// Lines of a command's output in its outcome's excerpt, for people (the model gets it all).
pub const EXCERPT_LINES: usize = 8;

/// Default time a command may run.
pub const DEFAULT_TIMEOUT_MS: u64 = 600_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Command {
    Argv(Vec<String>),
    Line(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    command: Command,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    /// Read by the engine (approval to leave the sandbox), not by the tool.
    #[serde(default)]
    #[allow(dead_code)]
    with_escalated_permissions: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    justification: Option<String>,
}

/// The `shell` tool. `read_only` (planning) admits only commands that read; the OS sandbox will
/// make that a hard guarantee, this check is the in-process layer.
/// The tool's name, as the model calls it.
pub const NAME: &str = "shell";

pub struct Shell {
    pub read_only: bool,
}

impl Tool for Shell {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("shell.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {
                        "description": "argv array, or one string run with bash -c",
                        "anyOf": [
                            {"type": "array", "items": {"type": "string"}},
                            {"type": "string"}
                        ]
                    },
                    "workdir": {"type": "string", "description": "directory to run in, inside the workspace"},
                    "timeout_ms": {"type": "integer", "description": "time limit in milliseconds (default 600000)"},
                    "with_escalated_permissions": {"type": "boolean", "description": "run outside the sandbox (needs the person's approval)"},
                    "justification": {"type": "string", "description": "why it must leave the sandbox"}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Execute
    }

    /// A patch sent through the shell is described as the patch; any other command as the line
    /// it runs.
    fn describe(&self, arguments: &serde_json::Value, ctx: &ToolContext) -> (Vec<Action>, Touches) {
        let Some(parsed) = arguments
            .get("command")
            .and_then(|c| serde_json::from_value::<Command>(c.clone()).ok())
        else {
            return (Vec::new(), Touches::default());
        };
        let command = command_line(&parsed);
        let escalate = arguments["with_escalated_permissions"]
            .as_bool()
            .unwrap_or(false);
        let (actions, edits, patch) = match shell_patch(&parsed) {
            Some(found) => {
                let (actions, edits) =
                    describe_shell_patch(&found, arguments["workdir"].as_str(), ctx);
                (actions, edits, Some(found.patch))
            }
            None => (
                vec![Action::Run {
                    command: command.clone(),
                }],
                Vec::new(),
                None,
            ),
        };
        let touches = Touches {
            command: Some(command),
            edits,
            patch,
            escalate,
            unclear: None,
            external: None,
        };
        (actions, touches)
    }

    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            match parse_args::<Args>(NAME, arguments) {
                Ok(args) if self.read_only => match read_only(&args.command) {
                    Ok(()) => run(args, ctx).await,
                    Err(message) => ToolOutput::error(message),
                },
                Ok(args) => run(args, ctx).await,
                Err(output) => output,
            }
        })
    }
}

/// How the command ended.
enum End {
    Exited(std::process::ExitStatus),
    TimedOut(u64),
    Interrupted,
}

/// The command line a `shell` call runs (argv joined by spaces), for rule checks.
fn command_line(command: &Command) -> String {
    match command {
        // `bash -lc SCRIPT`: the script is the command line.
        Command::Argv(argv) => unwrap_shell(argv).map_or_else(|| argv.join(" "), str::to_string),
        Command::Line(line) => line.clone(),
    }
}

/// The directory a shell-sent patch applies in: the call's `workdir`, then its `cd DIR`.
fn patch_dir(
    found: &crate::patch::heredoc::ShellPatch,
    workdir: Option<&str>,
    ctx: &ToolContext,
) -> Result<std::path::PathBuf, String> {
    let base = resolve_workdir(workdir, ctx)?;
    match &found.cd {
        None => Ok(base),
        Some(cd) => resolve_workdir(
            Some(cd),
            &ToolContext {
                cwd: base,
                ..ctx.clone()
            },
        ),
    }
}

/// A shell-sent patch's actions and edits, with paths as seen from the working directory (so
/// `cd tests && apply_patch …` adding `x.js` edits `tests/x.js`, which is what rules must see).
/// When the directory cannot be resolved (the call will fail on it), its lexical form is used.
fn describe_shell_patch(
    found: &crate::patch::heredoc::ShellPatch,
    workdir: Option<&str>,
    ctx: &ToolContext,
) -> (Vec<Action>, Vec<(String, String)>) {
    let dir = patch_dir(found, workdir, ctx).unwrap_or_else(|_| {
        let base = ctx.resolve(workdir.unwrap_or("."));
        crate::paths::normalise_lexically(&base.join(found.cd.as_deref().unwrap_or(".")))
    });
    let inner = ToolContext {
        cwd: dir,
        ..ctx.clone()
    };
    let (mut actions, touches) = crate::apply_patch::describe_patch(&found.patch, &inner);
    let seen =
        |path: &str| ctx.display_path(&crate::paths::normalise_lexically(&inner.resolve(path)));
    for action in &mut actions {
        match action {
            Action::Create { path, .. } | Action::Delete { path } | Action::Modify { path, .. } => {
                *path = seen(path)
            }
            Action::Move { from, to, .. } => {
                *from = seen(from);
                *to = seen(to);
            }
            _ => {}
        }
    }
    let edits = touches
        .edits
        .into_iter()
        .map(|(path, added)| (seen(&path), added))
        .collect();
    (actions, edits)
}

/// Admits a command in planning mode: every simple command it runs must only read, as
/// `cox_sandbox::classify` decides (the same answer the approval policy gets).
fn read_only(command: &Command) -> Result<(), String> {
    let (line, verdict) = match command {
        Command::Argv(argv) => match unwrap_shell(argv) {
            Some(script) => (script.to_string(), line_reads_only(script)),
            None => {
                let simple = SimpleCommand {
                    words: argv.clone(),
                    redirects: Vec::new(),
                    fed: false,
                };
                let verdict = match why_not_read_only(&simple) {
                    None => Ok(()),
                    Some(reason) => Err(NotReadOnly { reason }),
                };
                (argv.join(" "), verdict)
            }
        },
        Command::Line(line) => (line.clone(), line_reads_only(line)),
    };
    verdict.map_err(|why| {
        format!(
            "planning mode is read-only: `{line}` was not run ({why}). Use commands that only read \
             (ls, cat, grep, rg, find, git log/diff/show, …) or the read_file, list_dir and grep tools."
        )
    })
}

/// The script of `bash -lc SCRIPT` (or `sh -c`), whose commands are the ones that run.
fn unwrap_shell(argv: &[String]) -> Option<&str> {
    match argv {
        [shell, flag, script] if matches!(flag.as_str(), "-c" | "-lc") && shell.ends_with("sh") => {
            Some(script)
        }
        _ => None,
    }
}

/// A patch sent through the shell (`apply_patch <<'EOF' … EOF`) goes to the patch engine.
fn shell_patch(command: &Command) -> Option<crate::patch::heredoc::ShellPatch> {
    match command {
        Command::Argv(argv) => crate::patch::heredoc::from_argv(argv),
        Command::Line(line) => crate::patch::heredoc::from_script(line),
    }
}

async fn run(args: Args, ctx: &ToolContext) -> ToolOutput {
    if let Some(found) = shell_patch(&args.command) {
        return match patch_dir(&found, args.workdir.as_deref(), ctx) {
            Ok(cwd) => {
                let ctx = ToolContext { cwd, ..ctx.clone() };
                crate::apply_patch::run(&found.patch, &ctx)
            }
            Err(message) => ToolOutput::error(message),
        };
    }
    let login = matches!(args.command, Command::Line(_));
    let argv = match args.command {
        Command::Argv(argv) if argv.is_empty() => {
            return ToolOutput::error(
                "`command` is an empty array; give at least the program name.",
            );
        }
        Command::Argv(argv) => argv,
        Command::Line(line) if line.trim().is_empty() => {
            return ToolOutput::error("`command` is an empty string; give the command to run.");
        }
        // Not `-lc`: the login environment was captured once (`login_env`); running the profile
        // again inside the sandbox for every command only adds its failed writes to the output.
        Command::Line(line) => vec!["bash".to_string(), "-c".to_string(), line],
    };
    let workdir = match resolve_workdir(args.workdir.as_deref(), ctx) {
        Ok(dir) => dir,
        Err(message) => return ToolOutput::error(message),
    };
    let timeout_ms = args.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).max(1);
    execute(argv, &workdir, timeout_ms, login, ctx).await
}

/// Runs a command line the person gave (a plan run's lint or test check) the way a model's
/// command runs — in the working directory, in the sandbox, with the same environment scrubbing,
/// process-group kill on interrupt or timeout, and output budget — as `sh -c LINE`: the person's
/// own environment as it is, not a login shell's (which may reset `PATH` and lose their tools).
pub async fn run_line(line: &str, timeout_ms: u64, ctx: &ToolContext) -> ToolOutput {
    let argv = vec!["sh".to_string(), "-c".to_string(), line.to_string()];
    execute(argv, &ctx.cwd, timeout_ms.max(1), false, ctx).await
}

/// `login`: a string command, which gets the login environment (`ctx.login_env`); an argv or a
/// check runs with cox's environment as it is.
async fn execute(
    argv: Vec<String>,
    workdir: &std::path::Path,
    timeout_ms: u64,
    login: bool,
    ctx: &ToolContext,
) -> ToolOutput {
    let (reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(e) => return ToolOutput::error(format!("cannot create an output pipe: {e}")),
    };
    let writer_for_stderr = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return ToolOutput::error(format!("cannot create an output pipe: {e}")),
    };
    // Sandboxed: the launcher restricts itself, then execs the command in its place.
    let argv: Vec<String> = match &ctx.sandbox {
        Some(launcher) => launcher
            .iter()
            .cloned()
            .chain(["--".to_string()])
            .chain(argv)
            .collect(),
        None => argv,
    };
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .process_group(0)
        .kill_on_drop(true);
    if let Some(env) = ctx.login_env.as_ref().filter(|_| login) {
        command.envs(env.ready().await);
    }
    for name in &ctx.hidden_env {
        command.env_remove(name);
    }
    if let Some(watch) = &ctx.watch {
        command.env(&watch.tag.0, &watch.tag.1);
    }

    let started = std::time::Instant::now();
    let spawned = command.spawn();
    // Our copies of the pipe's write end must close, or the reader never sees end-of-file.
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return ToolOutput::error(format!("cannot run `{}`: {e}", argv[0]));
        }
    };
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    if let (Some(watch), Some(pid)) = (&ctx.watch, child.id()) {
        let _ = watch.started.send(pid);
    }

    let capture = Arc::new(Mutex::new(HeadTail::new(
        ctx.capture_bytes.max(ctx.max_output_bytes),
    )));
    let reading = tokio::spawn(read_all(OwnedFd::from(reader), Arc::clone(&capture)));

    let end = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => End::Exited(status),
            Err(e) => return ToolOutput::error(format!("lost track of `{}`: {e}", argv[0])),
        },
        _ = tokio::time::sleep(Duration::from_millis(timeout_ms)) => End::TimedOut(timeout_ms),
        _ = ctx.cancel.cancelled() => End::Interrupted,
    };
    if let Some(pgid) = pgid {
        if !matches!(end, End::Exited(_)) {
            // The launcher kills what the command started when told to end (SIGTERM); it gets a
            // moment for that before everything left in its group is killed outright.
            let _ = killpg(pgid, Signal::SIGTERM);
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        }
        // ESRCH (the group is already gone) is the ordinary case after a clean exit.
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    if !matches!(end, End::Exited(_)) {
        let _ = child.wait().await;
    }
    // Every writer in the group is dead; one that escaped it (setsid) cannot hold us for long.
    let _ = tokio::time::timeout(Duration::from_millis(500), reading).await;
    let elapsed = started.elapsed();
    let duration = format!("duration: {:.2} s", elapsed.as_secs_f64());
    let (output, full, truncated) = {
        let capture = capture
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (
            capture.render_within(ctx.max_output_bytes),
            capture.render(),
            capture.total() > ctx.max_output_bytes as u64,
        )
    };
    let nonempty = |text: String| {
        if text.is_empty() {
            "(no output)".to_string()
        } else {
            text
        }
    };
    let (output, full) = (nonempty(output), nonempty(full));
    let (ok, headline) = match end {
        End::Exited(status) => match status.code() {
            Some(code) => (code == 0, format!("exit code: {code}")),
            None => (
                false,
                format!("killed by signal {}", status.signal().unwrap_or(0)),
            ),
        },
        End::TimedOut(ms) => (
            false,
            format!("timed out after {ms} ms; the command and its child processes were killed"),
        ),
        End::Interrupted => (
            false,
            "interrupted by the user; the command and its child processes were killed".to_string(),
        ),
    };
    let exit_code = match end {
        End::Exited(status) => status.code(),
        End::TimedOut(_) | End::Interrupted => None,
    };
    let outcome = ToolOutcome {
        exit_code,
        duration_ms: Some(elapsed.as_millis() as u64),
        truncated,
        excerpt: Some(
            output
                .lines()
                .take(EXCERPT_LINES)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        printed_lines: Some(output.lines().count() as u64),
        ..ToolOutcome::default()
    };
    let full = (full != output).then(|| format!("{headline}\n{duration}\noutput:\n{full}"));
    ToolOutput {
        ok,
        output: format!("{headline}\n{duration}\noutput:\n{output}"),
        effect: None,
        full,
        outcome,
    }
}

async fn read_all(fd: OwnedFd, capture: Arc<Mutex<HeadTail>>) {
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return;
    };
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        match capture.lock() {
            Ok(mut capture) => capture.push(&buffer[..n]),
            Err(poisoned) => poisoned.into_inner().push(&buffer[..n]),
        }
    }
}

pub(crate) fn resolve_workdir(
    workdir: Option<&str>,
    ctx: &ToolContext,
) -> Result<std::path::PathBuf, String> {
    let Some(workdir) = workdir else {
        return Ok(ctx.cwd.clone());
    };
    let wanted = ctx.resolve(workdir);
    let dir = fs_err::canonicalize(&wanted).map_err(|e| {
        format!(
            "workdir {} cannot be used: {}",
            wanted.display(),
            crate::os_reason(&e)
        )
    })?;
    if !dir.is_dir() {
        return Err(format!("workdir {} is not a directory", dir.display()));
    }
    let root = fs_err::canonicalize(&ctx.workspace).unwrap_or_else(|_| ctx.workspace.clone());
    if !dir.starts_with(&root) {
        return Err(format!(
            "workdir {} is outside the workspace {}; commands run inside the workspace only",
            dir.display(),
            root.display()
        ));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {

    #[test]
    fn planning_admits_only_readers() {
        use super::{Command, read_only};
        let ok = |line: &str| read_only(&Command::Line(line.to_string())).is_ok();
        assert!(ok("ls -la src"));
        assert!(ok("grep -rn getUser src | head -20"));
        assert!(ok("git log --oneline -5"));
        assert!(!ok("rm -rf src"));
        assert!(!ok("echo x > file"));
        assert!(!ok("cat a; rm b"));
        assert!(!ok("git commit -am x"));
        assert!(!ok("find . -delete"));
        assert!(!ok("cat $(rm x)"));
        assert!(
            read_only(&Command::Argv(vec![
                "sed".into(),
                "-i".into(),
                "s/a/b/".into(),
                "f".into()
            ]))
            .is_err()
        );
    }
}
