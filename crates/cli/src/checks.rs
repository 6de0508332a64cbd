//! The checks of `cox run` after a step: the project's linter (`--auto-fix-lint`, detected or
//! `--lint-cmd`) and its tests (`--test-cmd`). A check runs as `sh -c CMD` in the working directory;
//! a linter that takes files gets the files the step changed appended.

use std::path::Path;
use std::time::Duration;

use crate::args::CheckOptions;
use crate::exit::Failure;

/// Output handed back to the model at most (head kept).
const OUTPUT_LIMIT: usize = 8 * 1024;
/// A check running longer than this is stopped and counts as failing.
const TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub command: String,
    /// Append the changed files to the command.
    pub takes_files: bool,
    /// Run only after a step that changed files.
    pub needs_changes: bool,
    /// Feed failures back to the model.
    pub fix: bool,
}

#[derive(Debug, Default)]
pub struct Checks {
    pub list: Vec<Check>,
    pub rounds: u32,
}

pub struct CheckResult {
    pub passed: bool,
    pub output: String,
}

impl Checks {
    pub fn from_options(options: &CheckOptions, cwd: &Path) -> Result<Checks, Failure> {
        let mut list = Vec::new();
        if options.auto_fix_lint || options.lint_cmd.is_some() {
            let (command, takes_files) = match &options.lint_cmd {
                Some(command) => (command.clone(), false),
                None => detect_linter(cwd).ok_or_else(|| {
                    Failure::usage(
                        format!("--auto-fix-lint: no linter found in {}", cwd.display()),
                        "name one with --lint-cmd \"CMD\" (ESLint, cargo clippy, ruff and golangci-lint are detected)",
                    )
                })?,
            };
            list.push(Check {
                name: "lint",
                command,
                takes_files,
                needs_changes: true,
                fix: options.auto_fix_lint,
            });
        }
        if let Some(command) = &options.test_cmd {
            list.push(Check {
                name: "tests",
                command: command.clone(),
                takes_files: false,
                needs_changes: true,
                fix: options.auto_fix_test,
            });
        } else if options.auto_fix_test {
            return Err(Failure::usage(
                "--auto-fix-test needs --test-cmd",
                "add --test-cmd \"CMD\"",
            ));
        }
        Ok(Checks {
            list,
            rounds: options.fix_rounds,
        })
    }
}

/// The project's linter, by the files that configure it: `(command, takes files)`.
fn detect_linter(cwd: &Path) -> Option<(String, bool)> {
    let has = |name: &str| cwd.join(name).exists();
    let package = std::fs::read_to_string(cwd.join("package.json")).unwrap_or_default();
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
    let pyproject = std::fs::read_to_string(cwd.join("pyproject.toml")).unwrap_or_default();
    if has("ruff.toml") || has(".ruff.toml") || pyproject.contains("[tool.ruff") {
        return Some(("ruff check".into(), true));
    }
    if has("go.mod") {
        return Some(("golangci-lint run".into(), false));
    }
    None
}

impl Check {
    pub async fn run(&self, cwd: &Path, files: &[String]) -> CheckResult {
        let mut line = self.command.clone();
        if self.takes_files {
            let mut unique: Vec<&String> = files.iter().collect();
            unique.sort();
            unique.dedup();
            for file in unique {
                line.push(' ');
                line.push_str(&shell_quote(file));
            }
        }
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(TIMEOUT, child).await {
            Ok(Ok(output)) => {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                if text.len() > OUTPUT_LIMIT {
                    text.truncate(text.floor_char_boundary(OUTPUT_LIMIT));
                    text.push_str("\n[… output cut …]");
                }
                CheckResult {
                    passed: output.status.success(),
                    output: text.trim_end().to_string(),
                }
            }
            Ok(Err(e)) => CheckResult {
                passed: false,
                output: format!("cannot run `{line}`: {e}"),
            },
            Err(_) => CheckResult {
                passed: false,
                output: format!(
                    "`{line}` ran longer than {} s and was stopped",
                    TIMEOUT.as_secs()
                ),
            },
        }
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_linters_by_their_configuration() {
        let dir = std::env::temp_dir().join(format!("cox-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(detect_linter(&dir), None);
        std::fs::write(dir.join("ruff.toml"), "").unwrap();
        assert_eq!(detect_linter(&dir), Some(("ruff check".into(), true)));
        std::fs::write(
            dir.join("package.json"),
            r#"{"devDependencies": {"eslint": "^9"}}"#,
        )
        .unwrap();
        assert_eq!(
            detect_linter(&dir),
            Some(("npx --no-install eslint".into(), true))
        );
        assert_eq!(shell_quote("it's.py"), "'it'\\''s.py'");
    }
}
