//! The patch engine against fixture folders in `tests/patches/<case>/`:
//! `input/` (the files before; may be absent), `patch` (the patch text; `{root}` stands for the
//! case's temp directory), and either `expected/` (every file after, byte for byte, nothing more)
//! or `error` (the exact message, after which the files must be exactly as in `input/`).
//!
//! `COX_RECORD_PATCH_ERRORS=1` writes the `error` files from the current messages (review the diff).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cox_tools::ToolContext;
use tokio_util::sync::CancellationToken;

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

#[test]
fn patch_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/patches");
    let mut cases: Vec<PathBuf> = fs_err::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "only {} patch cases", cases.len());
    let record = std::env::var_os("COX_RECORD_PATCH_ERRORS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let work = tempfile::tempdir().unwrap();
        let dir = fs_err::canonicalize(work.path()).unwrap();
        copy_tree(&case.join("input"), &dir);
        let before = files_under(&dir);
        let patch = fs_err::read_to_string(case.join("patch"))
            .unwrap()
            .replace("{root}", &dir.display().to_string());
        let ctx = ToolContext {
            cwd: dir.clone(),
            workspace: dir.clone(),
            writable_roots: vec![dir.clone()],
            protected: Vec::new(),
            max_output_bytes: 16 * 1024,
            capture_bytes: 16 * 1024,
            hidden_env: Vec::new(),
            sandbox: None,
            asker: None,
            watch: None,
            cancel: CancellationToken::new(),
        };
        let mut output = cox_tools::apply_patch::run(&patch, &ctx);
        output.output = output.output.replace(&dir.display().to_string(), "{root}");
        let after = files_under(&dir);
        let error_file = case.join("error");
        if error_file.exists() {
            if record {
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
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
