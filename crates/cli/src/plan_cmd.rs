//! `cox plan PROMPT`: a read-only analysis whose answer is a plan document, printed as pretty JSON
//! on stdout (progress on stderr), so `cox plan "…" > plan.json` captures exactly the plan. An
//! invalid plan is sent back to the model with the exact problem, at most [`RETRIES`] times; it is
//! never printed as if it were valid.

use std::process::ExitCode;

use cox_core::{Config, RunOptions};
use cox_protocol::{Event, Op, Plan, SessionStatus, StepState};

use crate::args::Shared;
use crate::exec::{Role, read_prompt, role_overrides, runtime, working_dir};
use crate::exit::{self, Failure};
use crate::progress::Progress;

/// Corrections asked of the model after an invalid plan.
pub const RETRIES: u32 = 2;

pub fn run(
    shared: &Shared,
    prompt: &str,
    planner_model: Option<&str>,
) -> Result<ExitCode, Failure> {
    if shared.json || shared.steerable {
        return Err(Failure::usage(
            "cox plan prints the plan document on stdout; --json and --steerable are for exec",
            "cox plan \"…\" > plan.json",
        ));
    }
    let cwd = working_dir(shared)?;
    let prompt = read_prompt(prompt)?;
    let prompt = cox_core::prompt::expand_attachments(&prompt, &cwd)?;
    let home = cox_core::config::cox_home()?;
    let config = Config::load(
        &home,
        &role_overrides(shared, &home, Role::Planner, planner_model)?,
    )?;
    let options = RunOptions {
        planning: true,
        sandbox: crate::exec::sandbox(shared)?,
        ..RunOptions::default()
    };
    runtime()?.block_on(async {
        let signals = crate::signals::Signals::register()?;
        let received = signals.received();
        let mut session = cox_core::start(&config, cwd, options)?;
        signals.forward(session.op_sender());
        session.submit(Op::UserInput { text: prompt }).await;
        let mut progress = Progress::default();
        let mut corrections = 0;
        let mut result: Option<Result<(String, Plan), Failure>> = None;
        while let Some(envelope) = session.next_event().await {
            progress.on_event(&envelope.event, &mut std::io::stderr().lock());
            match envelope.event {
                Event::TaskCompleted { status, answer, .. } if result.is_none() => {
                    let outcome = match (status, answer) {
                        (SessionStatus::Completed, Some(answer)) => plan_from(&answer),
                        (SessionStatus::Completed, None) => Err("the model gave no answer".to_string()),
                        (other, _) => {
                            result = Some(Err(Failure {
                                code: match other {
                                    SessionStatus::ProviderError => exit::PROVIDER,
                                    SessionStatus::Interrupted => exit::INTERRUPTED,
                                    _ => exit::FAILED,
                                },
                                message: "planning stopped before a plan was written".into(),
                                hint: None,
                            }));
                            session.submit(Op::Shutdown).await;
                            continue;
                        }
                    };
                    match outcome {
                        Ok(planned) => {
                            result = Some(Ok(planned));
                            session.submit(Op::Shutdown).await;
                        }
                        Err(problem) if corrections < RETRIES => {
                            corrections += 1;
                            eprintln!("the plan is not valid ({problem}); asking the model to correct it");
                            let text = format!(
                                "Your plan is not valid: {problem}. Answer again with the whole corrected plan \
                                 as one JSON object, and nothing else."
                            );
                            session.submit(Op::UserInput { text }).await;
                        }
                        Err(problem) => {
                            result = Some(Err(Failure {
                                code: exit::FAILED,
                                message: format!(
                                    "the model did not produce a valid plan in {} attempts; the last problem: {problem}",
                                    RETRIES + 1
                                ),
                                hint: Some("rephrase the request, or try another model with -m".into()),
                            }));
                            session.submit(Op::Shutdown).await;
                        }
                    }
                }
                Event::SessionCompleted { .. } => break,
                _ => {}
            }
        }
        let signal = received.load(std::sync::atomic::Ordering::SeqCst);
        match result {
            // Stopped by a signal: no plan, and the signal's exit code (130, 143, 129).
            _ if signal != 0 => Err(Failure {
                code: crate::signals::code(signal),
                message: format!("planning stopped by signal {signal} before a plan was written"),
                hint: None,
            }),
            Some(Ok((json, plan))) => {
                println!("{json}");
                use std::io::Write;
                let _ = std::io::stdout().flush();
                eprint!("{}", written(&plan, stdout_file().as_deref()));
                Ok(ExitCode::SUCCESS)
            }
            Some(Err(failure)) => Err(failure),
            None => Err(Failure {
                code: exit::FAILED,
                message: "the session ended without a plan".into(),
                hint: None,
            }),
        }
    })
}

/// Where stdout goes when it is a regular file (`cox plan "…" > plan.json`), relative to the
/// current directory where it is inside it.
fn stdout_file() -> Option<std::path::PathBuf> {
    let path = fs_err::read_link("/proc/self/fd/1").ok()?;
    if !fs_err::metadata(&path).ok()?.is_file() {
        return None;
    }
    let relative = std::env::current_dir()
        .ok()
        .and_then(|here| path.strip_prefix(here).ok().map(|p| p.to_path_buf()));
    Some(relative.unwrap_or(path))
}

/// The note on stderr after the plan is printed: its steps, and where it went with the command
/// that runs it (so `cox plan "…" > plan.json` does not finish in silence).
fn written(plan: &Plan, file: Option<&std::path::Path>) -> String {
    let steps = plan.steps.len();
    let noun = if steps == 1 { "step" } else { "steps" };
    let mut out = format!("plan: {steps} {noun} — {}\n", plan.goal);
    for step in &plan.steps {
        out.push_str(&format!("  {} {}\n", step.id, step.title));
    }
    match file {
        Some(path) => out.push_str(&format!(
            "wrote {path}; run it with: cox run --plan {path}\n",
            path = path.display()
        )),
        None => out.push_str("the plan is on stdout; save it with: cox plan \"…\" > plan.json\n"),
    }
    out
}

/// Validates the answer as a plan; the pretty JSON to print (with `version` and each step's
/// `status` filled in when the model left them out) and the plan it holds, or the problem in
/// words the model can act on.
fn plan_from(answer: &str) -> Result<(String, Plan), String> {
    let mut plan =
        cox_core::plan::parse(cox_core::plan::extract(answer)).map_err(|e| e.to_string())?;
    plan.version.get_or_insert(1);
    for step in &mut plan.steps {
        step.status.get_or_insert(StepState::Pending);
    }
    let json = serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?;
    Ok((json, plan))
}
