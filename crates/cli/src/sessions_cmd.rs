//! `cox sessions` and `cox resume`: the recorded sessions under `$COX_HOME/sessions/`.

use std::process::ExitCode;

use cox_core::journal;
use cox_core::{Config, Overrides};

use crate::args::Shared;
use crate::exec::{drive, overrides, run_options, runtime};
use crate::exit::Failure;

pub fn list() -> Result<ExitCode, Failure> {
    let home = cox_core::config::cox_home()?;
    let sessions = journal::list(&home);
    if sessions.is_empty() {
        eprintln!(
            "no recorded sessions in {}",
            journal::sessions_dir(&home).display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for session in sessions {
        match session {
            Ok(s) => println!(
                "{}  {}  {:<14} {}  {}",
                s.id,
                s.created,
                s.status,
                s.cwd,
                cut(&s.first_prompt, 60)
            ),
            Err(problem) => println!("(unreadable) {problem}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(limit).collect::<String>())
    }
}

pub fn resume(shared: &Shared, last: bool, words: Vec<String>) -> Result<ExitCode, Failure> {
    let mut words = words.into_iter();
    let id = if last {
        None
    } else {
        Some(words.next().ok_or_else(|| {
            Failure::usage(
                "which session? give its id or --last",
                "cox sessions lists them; cox resume --last continues the newest",
            )
        })?)
    };
    let prompt = words.next();
    if words.next().is_some() {
        return Err(Failure::usage(
            "too many arguments",
            "cox resume ID [PROMPT] or cox resume --last [PROMPT]",
        ));
    }
    let home = cox_core::config::cox_home()?;
    let path = journal::find(&home, id.as_deref())?;
    // A journal that cannot be read is bad input to this command (exit 2), not a failed task.
    let loaded = journal::load(&path)
        .map_err(|e| Failure::usage(e.to_string(), "cox sessions lists the sessions that load"))?;
    // The session keeps its provider and model unless the command line names others.
    let (provider, model) = match loaded.header() {
        Some((_, _, _, provider, model)) => (provider.to_string(), model.to_string()),
        None => {
            return Err(Failure::usage(
                "the journal has no header",
                "resume another session",
            ));
        }
    };
    let mut wanted: Overrides = overrides(shared);
    if wanted.provider.is_none() {
        wanted.provider = Some(provider);
        if wanted.model.is_none() {
            wanted.model = Some(model);
        }
    }
    let config = Config::load(&home, &wanted)?;
    let options = run_options(shared)?;
    let (code, ()) = runtime()?.block_on(drive(
        |options| {
            cox_core::resume(
                &config,
                loaded,
                prompt,
                options,
                cox_core::PlanRun::default(),
            )
        },
        options,
        None,
        shared.json,
        (),
    ))?;
    Ok(code)
}
