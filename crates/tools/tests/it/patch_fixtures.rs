//! The patch engine against fixture folders in `tests/patches/<case>/`:
//! `input/` (the files before; may be absent), `patch` (the patch text; `{root}` stands for the
//! case's temp directory), and either `expected/` (every file after, byte for byte, nothing more)
//! or `error` (the exact message, after which the files must be exactly as in `input/`).
//!
//! Each case runs three times: as the `apply_patch` tool, as `apply_patch <<'EOF' … EOF` through
//! `shell`, and as `["bash", "-lc", …]` argv; both shell forms must end exactly like the tool.
//! Optional: `command` (the shell line, `{patch}` standing for the patch; default the heredoc
//! above) and `cwd` (the directory, under the case's root, the tool form runs in — for a command
//! that `cd`s first).
//!
//! `COX_RECORD_PATCH_ERRORS=1` writes the `error` files from the current messages (review the diff).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cox_tools::Tool;

fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return files;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs_err::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    fs_err::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

fn copy_tree(from: &Path, to: &Path) {
    for (relative, bytes) in files_under(from) {
        let target = to.join(relative);
        fs_err::create_dir_all(target.parent().unwrap()).unwrap();
        fs_err::write(target, bytes).unwrap();
    }
    // Empty directories in the input matter too (a path that is a directory).
    if from.exists() {
        for entry in fs_err::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                fs_err::create_dir_all(to.join(path.file_name().unwrap())).unwrap();
            }
        }
    }
}

fn show(files: &BTreeMap<PathBuf, Vec<u8>>) -> String {
    files
        .iter()
        .map(|(path, bytes)| format!("{}: {:?}", path.display(), String::from_utf8_lossy(bytes)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a case's patch reaches the engine.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// The `apply_patch` tool's `input`.
    Tool,
    /// A `shell` command line (`apply_patch <<'EOF' … EOF`).
    Heredoc,
    /// The same line as argv, `["bash", "-lc", LINE]`, as Codex-trained models send it.
    Argv,
}

/// Runs one case in one form; the failures it found.
async fn run_case(case: &Path, form: Form, record: bool) -> Vec<String> {
    let name = format!("{} ({form:?})", case.file_name().unwrap().to_string_lossy());
    let mut failures = Vec::new();
    let work = tempfile::tempdir().unwrap();
    let dir = fs_err::canonicalize(work.path()).unwrap();
    copy_tree(&case.join("input"), &dir);
    let before = files_under(&dir);
    let patch = fs_err::read_to_string(case.join("patch"))
        .unwrap()
        .replace("{root}", &dir.display().to_string());
    let optional = |file: &str| fs_err::read_to_string(case.join(file)).ok();
    let mut output = match form {
        Form::Tool => {
            // `cwd`: where the tool form runs, when the heredoc form `cd`s somewhere first.
            let cwd = match optional("cwd") {
                Some(sub) => dir.join(sub.trim()),
                None => dir.clone(),
            };
            cox_tools::apply_patch::run(&patch, &crate::context_at(&cwd, &dir, 16 * 1024))
        }
        Form::Heredoc | Form::Argv => {
            // `command`: the shell line, `{patch}` standing for the patch text.
            let body = if patch.ends_with('\n') {
                patch.clone()
            } else {
                format!("{patch}\n")
            };
            let line = optional("command")
                .unwrap_or_else(|| "apply_patch <<'EOF'\n{patch}EOF\n".to_string())
                .replace("{patch}", &body);
            let command = match form {
                Form::Argv => serde_json::json!(["bash", "-lc", line]),
                _ => serde_json::json!(line),
            };
            let shell = cox_tools::shell::Shell { read_only: false };
            shell
                .call(
                    serde_json::json!({ "command": command }),
                    &crate::context_at(&dir, &dir, 16 * 1024),
                )
                .await
        }
    };
    output.output = output.output.replace(&dir.display().to_string(), "{root}");
    let after = files_under(&dir);
    let error_file = case.join("error");
    if error_file.exists() {
        if record && matches!(form, Form::Tool) {
            fs_err::write(&error_file, &output.output).unwrap();
        }
        let expected = fs_err::read_to_string(&error_file).unwrap();
        if output.ok || output.output != expected {
            failures.push(format!(
                "{name}: expected error\n{expected}\ngot (ok={})\n{}",
                output.ok, output.output
            ));
        }
        if after != before {
            failures.push(format!(
                "{name}: a failed patch changed files:\n{}",
                show(&after)
            ));
        }
    } else {
        let expected = files_under(&case.join("expected"));
        if !output.ok {
            failures.push(format!("{name}: failed: {}", output.output));
        } else if after != expected {
            failures.push(format!(
                "{name}: files differ\nexpected:\n{}\ngot:\n{}",
                show(&expected),
                show(&after)
            ));
        }
    }
    failures
}

/// Every case, sent as the tool, as a heredoc in a shell line, and as argv.
#[tokio::test]
async fn patch_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/patches");
    let mut cases: Vec<PathBuf> = fs_err::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 60, "only {} patch cases", cases.len());
    let record = std::env::var_os("COX_RECORD_PATCH_ERRORS").is_some();
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        for form in [Form::Tool, Form::Heredoc, Form::Argv] {
            failures.extend(run_case(case, form, record).await);
            runs += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures in {runs} runs of {} cases:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
