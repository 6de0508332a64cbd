//! Plan runs over ACP: a prompt `/run PLAN.json [--target DIR] [--auto-fix-lint]
//! [--auto-fix-test] [--restart]` runs the plan as `cox run --plan` does (steps in order, each in
//! a session of its own, the plan pinned, statuses and directives written back to the file, the
//! lint and test commands of config.toml as checks). Its steps stream as `plan` updates and each
//! step's work as usual; steering and cancel reach the run; the prompt ends when the run does.
//! The command is advertised to the client (`available_commands_update`) as `run`.

use std::path::{Path, PathBuf};

use agent_client_protocol::v1::schema::{
    AvailableCommand, AvailableCommandInput, AvailableCommandsUpdate, SessionUpdate,
    UnstructuredCommandInput,
};
use agent_client_protocol::{Error as AcpError, ErrorCode};
use cox_core::run::{CheckSettings, Checks, RunSpec};
use cox_core::{Config, RunOptions, SessionHandle};

use super::{error, failure};

/// What `/run` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub plan: PathBuf,
    pub target: Option<PathBuf>,
    pub auto_fix_lint: bool,
    pub auto_fix_test: bool,
    pub restart: bool,
}

const USAGE: &str = "/run PLAN.json [--target DIR] [--auto-fix-lint] [--auto-fix-test] [--restart]";

/// The command as the client offers it.
pub fn advertised() -> SessionUpdate {
    SessionUpdate::AvailableCommandsUpdate(AvailableCommandsUpdate::new(vec![
        AvailableCommand::new(
            "run",
            "Run a plan file (cox plan writes one): its steps in order, checked and written back",
        )
        .input(AvailableCommandInput::Unstructured(
            UnstructuredCommandInput::new(
                "PLAN.json [--target DIR] [--auto-fix-lint] [--auto-fix-test] [--restart]",
            ),
        )),
    ]))
}

/// `None` when the prompt is not `/run`; paths are taken relative to `cwd`.
pub fn parse(prompt: &str, cwd: &Path) -> Option<Result<Request, AcpError>> {
    let rest = prompt.trim().strip_prefix("/run")?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let bad = |why: String| {
        Some(Err(error(
            ErrorCode::INVALID_PARAMS,
            format!("{why}; usage: {USAGE}"),
        )))
    };
    let mut words = rest.split_whitespace();
    let mut request = Request {
        plan: PathBuf::new(),
        target: None,
        auto_fix_lint: false,
        auto_fix_test: false,
        restart: false,
    };
    while let Some(word) = words.next() {
        match word {
            "--target" => match words.next() {
                Some(dir) => request.target = Some(cwd.join(dir)),
                None => return bad("--target needs a directory".into()),
            },
            "--auto-fix-lint" => request.auto_fix_lint = true,
            "--auto-fix-test" => request.auto_fix_test = true,
            "--restart" => request.restart = true,
            flag if flag.starts_with("--") => return bad(format!("unknown flag {flag}")),
            path if request.plan.as_os_str().is_empty() => request.plan = cwd.join(path),
            extra => return bad(format!("one plan file only (`{extra}` too)")),
        }
    }
    if request.plan.as_os_str().is_empty() {
        return bad("name the plan file".into());
    }
    Some(Ok(request))
}

/// Starts the run; the lock on the plan file is held until the returned guard drops.
pub fn start(
    request: &Request,
    cwd: &Path,
    config: &Config,
    options: RunOptions,
) -> Result<(SessionHandle, cox_core::lock::Lock), AcpError> {
    let usage = |message: String| error(ErrorCode::INVALID_PARAMS, message);
    let path = &request.plan;
    let text = fs_err::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the plan {}: {}; cox plan \"…\" > plan.json writes one",
            path.display(),
            crate::exit::os_reason(&e)
        ))
    })?;
    let mut plan = cox_core::plan::parse(&text)
        .map_err(|e| usage(format!("{}: {e}; fix the plan file", path.display())))?;
    let lock = cox_core::lock::Lock::acquire(
        &cox_core::lock::plan_path(&config.home, path),
        &format!("the plan {}", path.display()),
    )
    .map_err(failure)?;
    if request.restart {
        cox_core::run::restart(&mut plan);
        cox_core::run::save(path, &plan).map_err(failure)?;
    }
    let target = match &request.target {
        Some(dir) => Some(fs_err::canonicalize(dir).map_err(|e| {
            usage(format!(
                "--target {}: {}",
                dir.display(),
                crate::exit::os_reason(&e)
            ))
        })?),
        None => None,
    };
    let file = cox_core::config::read_file(&config.home, &[]).map_err(failure)?;
    let settings = CheckSettings {
        auto_fix_lint: request.auto_fix_lint,
        lint_cmd: file.lint_cmd,
        test_cmd: file.test_cmd,
        auto_fix_test: request.auto_fix_test,
        fix_rounds: 3,
    };
    let checks = Checks::from_settings(&settings, cwd).map_err(failure)?;
    let spec = RunSpec {
        path: path.clone(),
        plan,
        cwd: cwd.to_path_buf(),
        target,
        checks,
        options,
    };
    let handle = cox_core::run::start(config, spec).map_err(failure)?;
    Ok((handle, lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_prompts_are_parsed_and_others_left_alone() {
        let cwd = Path::new("/w");
        assert_eq!(parse("fix the bug", cwd), None);
        assert_eq!(parse("/running late", cwd), None);
        let request = parse("/run plan.json --target src --auto-fix-lint", cwd)
            .unwrap()
            .unwrap();
        assert_eq!(request.plan, PathBuf::from("/w/plan.json"));
        assert_eq!(request.target, Some(PathBuf::from("/w/src")));
        assert!(request.auto_fix_lint && !request.auto_fix_test && !request.restart);
        let bad = parse("/run", cwd).unwrap().unwrap_err();
        assert!(
            bad.message.contains("name the plan file"),
            "{}",
            bad.message
        );
        let bad = parse("/run a.json --yolo", cwd).unwrap().unwrap_err();
        assert!(bad.message.contains("--yolo"), "{}", bad.message);
    }
}
