//! The `cox` binary: parses the command line and hands over to the engine. Thin by design; the
//! only decisions made here are how to print and which exit code to return.

mod acp;
mod args;
mod auth_cmd;
mod checkpoints_cmd;
mod doctor_cmd;
mod exec;
mod exit;
mod interactive;
mod logging;
mod man_cmd;
mod mcp_cmd;
mod mcp_server;
mod plan_cmd;
mod progress;
mod run_cmd;
mod sessions_cmd;
mod signals;
mod tools_cmd;
mod trust_cmd;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use exit::Failure;

fn main() -> ExitCode {
    // First, while there is one thread: credential values vanish from /proc/PID/environ (cox
    // still reads them; commands never get them).
    cox_core::secrets::blank_environ_block();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    // The sandbox launcher runs the command at once, and the loopback network's holder only
    // holds a namespace: neither logs nor hides its memory (both map ids through /proc/self, and
    // hold no keys).
    if !matches!(
        cli.command,
        Some(Command::SandboxExec { .. } | Command::Loopback | Command::ProbeNamespaces)
    ) {
        // cox holds keys: no other process of the person's (a sandboxed command among them) may
        // read its memory or /proc/PID/environ.
        let _ = cox_core::keep_memory_private();
        cox_core::ignore_file_size_signal();
        if let Err(failure) = logging::init() {
            return failure.report();
        }
    }
    let result = match cli.command {
        Some(Command::SandboxExec {
            write,
            protect,
            hide,
            allow_network,
            full_access,
            tty,
            netns,
            userns,
            deny_tcp_fd,
            deny_unix,
            command,
        }) => {
            let policy = cox_core::SandboxPolicy {
                writable: write,
                network: allow_network,
                protected: protect,
                hidden: hide,
                confine: !full_access,
                terminal: tty,
                netns,
                userns,
                deny_tcp: deny_tcp_fd,
                deny_unix,
            };
            return match cox_core::sandbox_exec(&policy, &command) {
                Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
                Err(problem) => {
                    eprintln!("{problem}");
                    ExitCode::from(126)
                }
            };
        }
        Some(Command::Loopback) => {
            return match cox_core::SandboxLoopback::hold() {
                Ok(()) => ExitCode::SUCCESS,
                Err(problem) => {
                    eprintln!("sandbox: {problem}");
                    ExitCode::from(126)
                }
            };
        }
        Some(Command::ProbeNamespaces) => {
            return match cox_core::sandbox_probe::namespaces() {
                Ok(()) => ExitCode::SUCCESS,
                Err(reason) => {
                    eprintln!("{reason}");
                    ExitCode::from(1)
                }
            };
        }
        Some(Command::Doctor { check_urls }) => doctor_cmd::run(&cli.shared, check_urls),
        Some(Command::Completions { shell }) => man_cmd::completions(shell),
        Some(Command::Man { dir }) => man_cmd::man_pages(&dir),
        Some(Command::Sandbox { command }) => exec::sandbox_command(&cli.shared, &command),
        Some(Command::Exec { prompt }) => exec::run(&cli.shared, &prompt),
        Some(Command::Auth { action }) => auth_cmd::run(&cli.shared, action),
        Some(Command::Mcp { action }) => mcp_cmd::run(&cli.shared, action),
        Some(Command::McpServer) => mcp_server::run(&cli.shared),
        Some(Command::Acp) => acp::run(&cli.shared),
        Some(Command::Trust { dir, forget }) => trust_cmd::run(dir.as_deref(), forget),
        Some(Command::Tools) => tools_cmd::run(&cli.shared),
        Some(Command::Plan {
            prompt,
            planner_model,
        }) => plan_cmd::run(&cli.shared, &prompt, planner_model.as_deref()),
        Some(Command::Run {
            plan,
            target,
            restart,
            checks,
        }) => run_cmd::run(&cli.shared, &plan, target.as_deref(), restart, &checks),
        Some(Command::Resume { last, words }) => sessions_cmd::resume(&cli.shared, last, words),
        Some(Command::Sessions) => sessions_cmd::list(),
        Some(Command::Checkpoints { id, .. }) => checkpoints_cmd::list(&cli.shared, id.as_deref()),
        Some(Command::Undo {
            id, to, plan, step, ..
        }) => checkpoints_cmd::undo(&cli.shared, id.as_deref(), to, plan, step),
        // On a terminal, `cox [PROMPT]` is the live session; piped, it is `cox exec`.
        None => match cli.prompt {
            Some(prompt) if cox_term::available() => interactive::run(&cli.shared, Some(prompt)),
            Some(prompt) => exec::run(&cli.shared, &prompt),
            None if cox_term::available() => interactive::run(&cli.shared, None),
            None if !std::io::stdin().is_terminal() => exec::run(&cli.shared, "-"),
            None => Err(Failure::usage(
                "stdout is not a terminal, so there is no live session to open",
                "give the task as an argument: cox exec \"fix the failing test\"",
            )),
        },
    };
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
