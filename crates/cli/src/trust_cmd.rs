//! `cox trust [DIR] [--forget]`: the person's decision that a project's own `.cox/` files may
//! configure cox (see `cox_core::projects`). Trusting confirms `.cox/rules.toml` as it is now —
//! checked first, so a malformed file is never confirmed; a later change to it waits for the next
//! `cox trust`. `.cox/mcp.toml` (the project's MCP servers) likewise: only the servers confirmed
//! here ever start.

use std::path::Path;
use std::process::ExitCode;

use cox_core::config::cox_home;
use cox_core::projects::{Projects, root_of};
use cox_core::rules::Rules;

use crate::exit::{self, Failure};

pub fn run(dir: Option<&Path>, forget: bool) -> Result<ExitCode, Failure> {
    let cwd = match dir {
        Some(dir) => fs_err::canonicalize(dir).map_err(|e| {
            Failure::usage(
                format!("{}: {}", dir.display(), exit::os_reason(&e)),
                "cox trust takes an existing directory",
            )
        })?,
        None => std::env::current_dir().map_err(cox_core::Error::from)?,
    };
    let root = root_of(&cwd);
    let projects = Projects::new(&cox_home()?);
    if forget {
        projects.update(&root, |p| {
            p.trusted = false;
            p.rules = None;
            p.mcp_servers = None;
        })?;
        eprintln!(
            "{} is no longer trusted: its .cox/ files configure nothing",
            root.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (rules, shown) = match Rules::path(&cwd) {
        Some(path) => {
            let text = fs_err::read_to_string(&path).map_err(cox_core::Error::from)?;
            let parsed = Rules::parse(&text, &path)?;
            (
                Some(text),
                format!("{} rules from {}", parsed.rules.len(), path.display()),
            )
        }
        None => (None, "no .cox/rules.toml".to_string()),
    };
    let (servers, shown_servers) = match cox_core::mcp::project_file(&cwd) {
        Some(path) => {
            let text = fs_err::read_to_string(&path).map_err(cox_core::Error::from)?;
            let parsed = cox_core::mcp::parse_project(&text, &path)?;
            let names: Vec<&str> = parsed.iter().map(|s| s.name.as_str()).collect();
            (
                Some(text),
                format!(
                    ", MCP servers {} from {}",
                    if names.is_empty() {
                        "(none)".to_string()
                    } else {
                        names.join(", ")
                    },
                    path.display()
                ),
            )
        }
        None => (None, String::new()),
    };
    projects.update(&root, |p| {
        p.trusted = true;
        p.rules = rules;
        p.mcp_servers = servers;
    })?;
    eprintln!(
        "trusted {} ({shown}{shown_servers} confirmed)",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}
