//! The checks of a plan run after a step: the project's linter (`--auto-fix-lint`, detected or
//! `--lint-cmd`) and its tests (`--test-cmd`). A check is a command line the step's session runs
//! as `Op::RunCheck` — in its sandbox, with its scrubbed environment, journaled, killed by an
//! interrupt — so a check is confined exactly like the model's commands. A linter that takes
//! files gets the files the step changed appended (those that still exist).

use std::path::Path;

use cox_protocol::CheckKind;

use crate::Error;

/// What the person asked for (command line, then config.toml).
#[derive(Debug, Clone, Default)]
pub struct CheckSettings {
    pub auto_fix_lint: bool,
    pub lint_cmd: Option<String>,
    pub test_cmd: Option<String>,
    pub auto_fix_test: bool,
    /// Fix rounds per check and step before the run gives up.
    pub fix_rounds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    pub command: String,
    /// Append the changed files to the command.
    pub takes_files: bool,
    /// Feed failures back to the model.
    pub fix: bool,
}

/// The checks of a run, in order (lint, then tests), and how many fix rounds each gets.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    pub list: Vec<Check>,
    pub rounds: u32,
}

impl Checks {
    /// The checks `settings` ask for in the project at `cwd`; an error when a linter is asked for
    /// and none is found, or test fixing without a test command.
    pub fn from_settings(settings: &CheckSettings, cwd: &Path) -> Result<Checks, Error> {
        let mut list = Vec::new();
        if settings.auto_fix_lint || settings.lint_cmd.is_some() {
            let (command, takes_files) = match &settings.lint_cmd {
                Some(command) => (command.clone(), false),
                None => detect_linter(cwd).ok_or_else(|| Error::NoLinter {
                    dir: cwd.to_path_buf(),
                })?,
            };
            list.push(Check {
                kind: CheckKind::Lint,
                command,
                takes_files,
                fix: settings.auto_fix_lint,
            });
        }
        match &settings.test_cmd {
            Some(command) => list.push(Check {
                kind: CheckKind::Tests,
                command: command.clone(),
                takes_files: false,
                fix: settings.auto_fix_test,
            }),
            None if settings.auto_fix_test => return Err(Error::FixTestsWithoutCommand),
            None => {}
        }
        Ok(Checks {
            list,
            rounds: settings.fix_rounds,
        })
    }
}

impl Check {
    /// The command line to run after a step that changed `files` (paths relative to `cwd`).
    pub fn line(&self, cwd: &Path, files: &[String]) -> String {
        let mut line = self.command.clone();
        if self.takes_files {
            let mut unique: Vec<&String> = files.iter().filter(|f| cwd.join(f).exists()).collect();
            unique.sort();
            unique.dedup();
            for file in unique {
                line.push(' ');
                line.push_str(&shell_quote(file));
            }
        }
        line
    }
}

/// The project's linter, by the files that configure it: `(command, takes files)`.
fn detect_linter(cwd: &Path) -> Option<(String, bool)> {
    let has = |name: &str| cwd.join(name).exists();
    let package = fs_err::read_to_string(cwd.join("package.json")).unwrap_or_default();
    let eslint_config = [
        "eslint.config.js",
        "eslint.config.mjs",
        "eslint.config.cjs",
        ".eslintrc",
        ".eslintrc.js",
        ".eslintrc.json",
        ".eslintrc.cjs",
    ]
    .iter()
    .any(|f| has(f));
    if eslint_config || package.contains("\"eslint\"") {
        return Some(("npx --no-install eslint".into(), true));
    }
    if has("Cargo.toml") {
        return Some((
            "cargo clippy --quiet --all-targets -- -D warnings".into(),
            false,
        ));
    }
    let pyproject = fs_err::read_to_string(cwd.join("pyproject.toml")).unwrap_or_default();
    if has("ruff.toml") || has(".ruff.toml") || pyproject.contains("[tool.ruff") {
        return Some(("ruff check".into(), true));
    }
    if has("go.mod") {
        return Some(("golangci-lint run".into(), false));
    }
    None
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_linters_by_their_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        assert_eq!(detect_linter(dir), None);
        fs_err::write(dir.join("ruff.toml"), "").unwrap();
        assert_eq!(detect_linter(dir), Some(("ruff check".into(), true)));
        fs_err::write(
            dir.join("package.json"),
            r#"{"devDependencies": {"eslint": "^9"}}"#,
        )
        .unwrap();
        assert_eq!(
            detect_linter(dir),
            Some(("npx --no-install eslint".into(), true))
        );
        assert_eq!(shell_quote("it's.py"), "'it'\\''s.py'");
    }

    #[test]
    fn a_linter_gets_the_changed_files_that_still_exist() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("a.py"), "").unwrap();
        fs_err::write(dir.path().join("it's.py"), "").unwrap();
        let check = Check {
            kind: CheckKind::Lint,
            command: "ruff check".into(),
            takes_files: true,
            fix: true,
        };
        let files = ["it's.py", "gone.py", "a.py", "a.py"].map(String::from);
        assert_eq!(
            check.line(dir.path(), &files),
            "ruff check 'a.py' 'it'\\''s.py'"
        );
    }
}
