//! `cox exec PROMPT` (and `cox PROMPT`): one task, headless. The final answer goes to stdout, or,
//! with `--json`, every event as one JSON line; progress goes to stderr. Ctrl-C interrupts the task
//! (exit 130), SIGTERM and SIGHUP likewise (143, 129); a second signal quits at once.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

pub use cox_core::config::Role;
use cox_core::{Config, Overrides, RunOptions, SessionHandle};
use cox_protocol::{Event, Op};

use crate::args::Shared;
use crate::exit::{self, Failure};
use crate::progress::Progress;

pub fn run(shared: &Shared, prompt: &str) -> Result<ExitCode, Failure> {
    let cwd = working_dir(shared)?;
    let prompt = read_prompt(prompt)?;
    let prompt = cox_core::prompt::expand_attachments(&prompt, &cwd)?;
    let home = cox_core::config::cox_home()?;
    let config = Config::load(&home, &overrides(shared))?;
    let options = run_options(shared)?;
    let (code, ()) = runtime()?.block_on(drive(
        |options| cox_core::start(&config, cwd, options),
        options,
        Some(prompt),
        shared.json,
        (),
    ))?;
    Ok(code)
}

/// The sandbox from `--sandbox`, `--network`, `--add-dir`, checked against the kernel.
pub fn sandbox(shared: &Shared) -> Result<cox_core::Sandbox, Failure> {
    let mode = match shared.sandbox {
        crate::args::SandboxArg::ReadOnly => cox_core::SandboxMode::ReadOnly,
        crate::args::SandboxArg::WorkspaceWrite => cox_core::SandboxMode::WorkspaceWrite,
        crate::args::SandboxArg::FullAccess => cox_core::SandboxMode::FullAccess,
    };
    let mut add_dirs = Vec::new();
    for dir in &shared.add_dir {
        add_dirs.push(fs_err::canonicalize(dir).map_err(|e| {
            Failure::usage(
                format!("--add-dir {}: {}", dir.display(), exit::os_reason(&e)),
                "--add-dir takes an existing directory",
            )
        })?);
    }
    let sandbox = cox_core::Sandbox {
        mode,
        network: shared.network,
        loopback: shared.loopback,
        add_dirs,
        launcher: Some(cox_core::own_binary()),
    };
    cox_core::check_sandbox(&sandbox)?;
    Ok(sandbox)
}

/// `cox sandbox -- CMD`: the command under the policy the session's commands would get here.
pub fn sandbox_command(shared: &Shared, command: &[String]) -> Result<ExitCode, Failure> {
    let cwd = working_dir(shared)?;
    let sandbox = sandbox(shared)?;
    let home = cox_core::config::cox_home().map_err(Failure::from)?;
    let config = Config::load(&home, &overrides(shared))?;
    let mut policy = cox_core::sandbox_policy(&sandbox, &[cwd], &home);
    let _loopback = cox_core::loopback_network(&sandbox, &mut policy)?;
    // The same launcher and environment a session's commands get, as a child of this process.
    let launcher = cox_core::sandbox_launcher(&policy, &sandbox).unwrap_or_default();
    let mut child = std::process::Command::new(&launcher[0]);
    child.args(&launcher[1..]).arg("--").args(command);
    for name in cox_core::secrets::Credentials::gather(&config, None).hidden_env {
        child.env_remove(name);
    }
    let status = child.status().map_err(|e| {
        Failure::usage(
            format!("cannot run `{}`: {e}", command[0]),
            "check the command",
        )
    })?;
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// How to run: steering from stdin, or a person at the terminal for `ask_user`.
pub fn run_options(shared: &Shared) -> Result<RunOptions, Failure> {
    let stdin_tty = std::io::stdin().is_terminal();
    if shared.steerable && stdin_tty {
        return Err(Failure::usage(
            "`cox exec --steerable` reads control ops from stdin, which is a terminal here",
            "run `cox` for the live session (SPACE pauses), or pipe JSON Lines ops such as {\"op\":\"pause\"}",
        ));
    }
    if (shared.steer_grace.is_some() || shared.steer_grace_destructive.is_some())
        && !shared.steerable
    {
        return Err(Failure::usage(
            "--steer-grace and --steer-grace-destructive work with --steerable",
            "add --steerable",
        ));
    }
    Ok(RunOptions {
        sandbox: sandbox(shared)?,
        approval: shared.approval.map(|a| a.policy()),
        // With steering, stdin is the control channel; otherwise a terminal can answer questions.
        interactive: stdin_tty,
        steerable: shared.steerable,
        steer_grace_ms: shared
            .steer_grace
            .unwrap_or(cox_core::DEFAULT_HEADLESS_STEER_GRACE_MS),
        steer_grace_destructive_ms: shared
            .steer_grace_destructive
            .unwrap_or(cox_core::DEFAULT_HEADLESS_STEER_GRACE_DESTRUCTIVE_MS),
        one_shot: shared.steerable,
        planning: false,
    })
}

/// Forwards JSON Lines control ops from stdin to the session. A line that is not an op is reported
/// and skipped. At the end of input the session is told to finish — and, if the last word was
/// `pause`, interrupted, since no one is left to resume it.
fn read_control(ops: tokio::sync::mpsc::Sender<Op>) {
    std::thread::spawn(move || {
        let mut paused = false;
        for (number, line) in std::io::stdin().lines().enumerate() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Op>(&line) {
                Ok(op) => {
                    paused = match &op {
                        Op::Pause => true,
                        Op::Resume | Op::Steer { .. } | Op::Interrupt => false,
                        _ => paused,
                    };
                    if ops.blocking_send(op).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!(
                    "steering: line {} of stdin is not a control op ({e}); expected e.g. {{\"op\":\"pause\"}}",
                    number + 1
                ),
            }
        }
        if paused {
            let _ = ops.blocking_send(Op::Interrupt);
        }
        let _ = ops.blocking_send(Op::Shutdown);
    });
}

/// The binary's runtime: one thread is plenty for one session, and keeps start-up small.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: exit::FAILED,
            message: format!("cannot start the async runtime: {e}"),
            hint: None,
        })
}

/// The command line's overrides for a role (`cox plan` plans, `cox run` works), with the role's
/// model from `--planner-model` or `[roles]` in config.toml.
pub fn role_overrides(
    shared: &Shared,
    home: &std::path::Path,
    role: Role,
    planner_model: Option<&str>,
) -> Result<Overrides, Failure> {
    let file = cox_core::config::read_file(home, &shared.config)?;
    Ok(overrides(shared).for_role(&file, role, planner_model)?)
}

pub fn overrides(shared: &Shared) -> Overrides {
    Overrides {
        provider: shared.provider.clone(),
        model: shared.model.clone(),
        role: None,
        settings: shared.config.clone(),
        max_turns: shared.max_turns,
        model_path: shared.model_path.clone(),
    }
}

pub fn working_dir(shared: &Shared) -> Result<PathBuf, Failure> {
    let dir = match &shared.cd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| Failure {
            code: exit::FAILED,
            message: format!("cannot read the current directory: {e}"),
            hint: None,
        })?,
    };
    let canonical = fs_err::canonicalize(&dir).map_err(|e| Failure {
        code: exit::USAGE,
        message: format!(
            "cannot use directory {}: {}",
            dir.display(),
            exit::os_reason(&e)
        ),
        hint: Some("-C/--cd takes an existing directory".into()),
    })?;
    if !canonical.is_dir() {
        return Err(Failure::usage(
            format!("{} is not a directory", dir.display()),
            "-C/--cd takes an existing directory",
        ));
    }
    Ok(canonical)
}

pub fn read_prompt(prompt: &str) -> Result<String, Failure> {
    let text = if prompt == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::usage(
                format!("cannot read the prompt from stdin: {e}"),
                "pipe UTF-8 text into `cox exec -`",
            )
        })?;
        text
    } else {
        prompt.to_string()
    };
    if text.trim().is_empty() {
        return Err(Failure::usage(
            "the prompt is empty",
            "say what cox should do: cox exec \"…\"",
        ));
    }
    Ok(text)
}

/// A front end's listener beside the printer (a plan run's summary).
pub trait Observer {
    fn observe(&mut self, event: &Event);
}

impl Observer for () {
    fn observe(&mut self, _event: &Event) {}
}

/// Runs a session (or a plan run, whose handle is the same) headless until it completes: events
/// as JSON Lines or progress, the answer on stdout, the status as the exit code. `observer` sees
/// every event and is handed back.
pub async fn drive<O: Observer>(
    start: impl FnOnce(RunOptions) -> Result<SessionHandle, cox_core::Error>,
    options: RunOptions,
    prompt: Option<String>,
    json: bool,
    mut observer: O,
) -> Result<(ExitCode, O), Failure> {
    let interactive = options.interactive;
    let steerable = options.steerable;
    // Registered before the session starts: no signal finds cox with the default action.
    let signals = crate::signals::Signals::register()?;
    let received = signals.received();
    let mut session = start(options)?;
    signals.forward(session.op_sender());
    if let Some(text) = prompt {
        session.submit(Op::UserInput { text }).await;
    }
    if steerable {
        read_control(session.op_sender());
    } else {
        session.submit(Op::Shutdown).await;
    }

    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut progress = Progress::default();
    let mut stdout_open = true;
    while let Some(envelope) = session.next_event().await {
        if json && stdout_open {
            let line = serde_json::to_string(&envelope).unwrap_or_default();
            // A closed pipe (`cox --json … | head`) is not an error; the run finishes quietly.
            stdout_open = writeln!(stdout.lock(), "{line}").is_ok();
        }
        if !json {
            progress.on_event(&envelope.event, &mut stderr.lock());
        }
        observer.observe(&envelope.event);
        if let Event::QuestionAsked { call_id, .. } = &envelope.event
            && interactive
        {
            let ops = session.op_sender();
            let call_id = call_id.clone();
            // Reading the terminal blocks; the session goes on streaming meanwhile.
            tokio::task::spawn_blocking(move || {
                eprint!("answer> ");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                let text = line.trim_end().to_string();
                let _ = ops.blocking_send(Op::Answer { call_id, text });
            });
        }
        if let Event::SessionCompleted { status, answer, .. } = envelope.event {
            if let Some(answer) = answer.filter(|a| !json && stdout_open && !a.is_empty()) {
                let mut out = stdout.lock();
                let _ = write!(out, "{answer}");
                if !answer.ends_with('\n') {
                    let _ = writeln!(out);
                }
                let _ = out.flush();
            }
            let code = crate::signals::exit_code(&received, exit::status_code(status));
            return Ok((code, observer));
        }
    }
    Err(Failure {
        code: exit::FAILED,
        message: "the session ended without reporting how".into(),
        hint: None,
    })
}
