//! `cox checkpoints` and `cox undo`: a recorded session's checkpoints listed, and put back.

use std::path::PathBuf;
use std::process::ExitCode;

use cox_core::checkpoint::{Target, recorded};
use cox_core::{Config, Error};

use crate::args::Shared;
use crate::exec::overrides;
use crate::exit::Failure;

fn limits(shared: &Shared) -> Result<(PathBuf, cox_core::checkpoint::Limits), Failure> {
    let home = cox_core::config::cox_home()?;
    let config = Config::load(&home, &overrides(shared))?;
    Ok((home, config.checkpoint_limits))
}

fn time(at_ms: u64) -> String {
    cox_core::timestamp(std::time::Duration::from_millis(at_ms))
}

pub fn list(shared: &Shared, id: Option<&str>) -> Result<ExitCode, Failure> {
    let (home, limits) = limits(shared)?;
    let recorded = recorded::list(&home, id, limits)?;
    if shared.json {
        for checkpoint in &recorded.checkpoints {
            let line = serde_json::json!({
                "session_id": recorded.session.0,
                "id": checkpoint.id,
                "kind": checkpoint.kind,
                "at": time(checkpoint.at_ms),
                "call_id": checkpoint.call_id,
                "action": checkpoint.action,
                "undone": !recorded.live.contains(&checkpoint.id),
                "undoes": checkpoint.undoes,
                "files": checkpoint.files(&recorded.cwd),
            });
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if recorded.checkpoints.is_empty() {
        eprintln!(
            "session {} has no checkpoints: none of its actions changed a file",
            recorded.session.0
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "session {} in {}",
        recorded.session.0,
        recorded.cwd.display()
    );
    for checkpoint in &recorded.checkpoints {
        let kind = serde_json::to_value(checkpoint.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let state = if recorded.live.contains(&checkpoint.id) {
            ""
        } else {
            " (undone)"
        };
        println!(
            "{:>4}  {}  {:<8} {}{state}",
            checkpoint.id,
            time(checkpoint.at_ms),
            kind,
            checkpoint.action
        );
        for file in checkpoint.files(&recorded.cwd) {
            println!("        {file}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn undo(
    shared: &Shared,
    id: Option<&str>,
    to: Option<u32>,
    plan: Option<PathBuf>,
    step: Option<String>,
) -> Result<ExitCode, Failure> {
    let (home, limits) = limits(shared)?;
    // A plan step: its session's every action, under the plan's lock (a `cox run` of it may not
    // be going on), and the step is pending again afterwards.
    let step_lock = match &plan {
        Some(plan) => Some(cox_core::lock::Lock::acquire(
            &cox_core::lock::plan_path(&home, plan),
            &format!("the plan {}", plan.display()),
        )?),
        None => None,
    };
    let (session, target) = match (&plan, &step) {
        (Some(plan), Some(step)) => (Some(step_session(plan, step)?), Target::All),
        _ => (id.map(str::to_string), to.map_or(Target::Last, Target::To)),
    };
    let undid = match recorded::undo(&home, session.as_deref(), &target, limits) {
        Ok(undid) => undid,
        Err(error @ Error::Undo(_)) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(crate::exit::FAILED));
        }
        Err(error) => return Err(error.into()),
    };
    if let (Some(plan), Some(step)) = (&plan, &step) {
        reopen_step(plan, step)?;
        eprintln!(
            "step {step} is pending again in {}: `cox run --plan {}` does it anew",
            plan.display(),
            plan.display()
        );
    }
    drop(step_lock);
    if let Some(outside) = &undid.outside {
        eprintln!(
            "checkpoint {}: changed outside cox since: {}",
            outside.id,
            cox_protocol::list_paths(&outside.files(&undid.cwd), 5)
        );
    }
    let files = undid.undone.files(&undid.cwd);
    if shared.json {
        let line = serde_json::json!({
            "session_id": undid.session.0,
            "id": undid.undone.id,
            "undid": undid.undone.undoes,
            "files": files,
        });
        println!("{line}");
    } else if files.is_empty() {
        println!("nothing to put back: the files are already as they were");
    } else {
        println!(
            "undid checkpoint{} {} of session {} (checkpoint {}; `cox undo --to {}` puts it back):",
            if undid.undone.undoes.len() == 1 {
                ""
            } else {
                "s"
            },
            cox_protocol::list_ids(&undid.undone.undoes),
            undid.session.0,
            undid.undone.id,
            undid.undone.id,
        );
        for file in files {
            println!("  {file}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Marks `step` pending again, without its session (as `cox run --restart` does for all).
fn reopen_step(plan: &std::path::Path, step: &str) -> Result<(), Failure> {
    let text = fs_err::read_to_string(plan).map_err(Error::from)?;
    let mut parsed = cox_core::plan::parse(&text)
        .map_err(|e| Failure::usage(format!("{}: {e}", plan.display()), "fix the plan file"))?;
    for s in parsed.steps.iter_mut().filter(|s| s.id == step) {
        s.status = Some(cox_protocol::StepState::Pending);
        s.extra.remove(cox_core::run::SESSION_FIELD);
    }
    cox_core::run::save(plan, &parsed)?;
    Ok(())
}

/// The session that carried out plan step `step` (its `cox_session` in the plan file).
fn step_session(plan: &std::path::Path, step: &str) -> Result<String, Failure> {
    let text = fs_err::read_to_string(plan).map_err(|e| {
        Failure::usage(
            format!(
                "cannot read the plan {}: {}",
                plan.display(),
                crate::exit::os_reason(&e)
            ),
            "give the plan file `cox run --plan` ran",
        )
    })?;
    let parsed = cox_core::plan::parse(&text)
        .map_err(|e| Failure::usage(format!("{}: {e}", plan.display()), "fix the plan file"))?;
    let Some(found) = parsed.steps.iter().find(|s| s.id == step) else {
        let ids: Vec<&str> = parsed.steps.iter().map(|s| s.id.as_str()).collect();
        return Err(Failure::usage(
            format!("{} has no step `{step}`", plan.display()),
            format!("its steps are {}", ids.join(", ")),
        ));
    };
    found
        .extra
        .get(cox_core::run::SESSION_FIELD)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Failure::usage(
                format!("step {step} of {} has not run yet", plan.display()),
                "only a step `cox run` started has actions to undo",
            )
        })
}
