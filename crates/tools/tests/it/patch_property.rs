//! Properties of the patch engine, over many seeded random cases (reproducible: the seed is in the
//! failure message): arbitrary text never makes it panic, and a patch generated from a random edit
//! of a random file turns that file into exactly the edited file — with LF or CRLF line ends, with
//! or without a final newline.

use cox_tools::ToolContext;
use similar::{Algorithm, DiffOp, capture_diff_slices, group_diff_ops};

fn context(dir: &std::path::Path) -> ToolContext {
    crate::context_at(dir, dir, 16 * 1024)
}

const WORDS: &[&str] = &[
    "fn", "let", "x", "=", "{", "}", "return", "if", "else", "match", "foo", "bar", "  ", "\t",
    "\"s\"", "'c'", "—", "é",
];

fn random_line(rng: &mut fastrand::Rng, serial: usize) -> String {
    let words: Vec<&str> = (0..rng.usize(0..6))
        .map(|_| WORDS[rng.usize(..WORDS.len())])
        .collect();
    // A serial number keeps lines unique, so a hunk's context identifies one place.
    format!("{} // {serial}", words.join(" "))
}

fn render(lines: &[String], crlf: bool, final_newline: bool) -> String {
    let ending = if crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(ending);
    if final_newline && !lines.is_empty() {
        text.push_str(ending);
    }
    text
}

/// The patch that turns `old` into `new`, written as a model would: three lines of context.
fn make_patch(path: &str, old: &[String], new: &[String]) -> String {
    let ops = capture_diff_slices(Algorithm::Myers, old, new);
    let mut patch = format!("*** Begin Patch\n*** Update File: {path}\n");
    for group in group_diff_ops(ops, 3) {
        patch.push_str("@@\n");
        let mut touches_end = false;
        for op in &group {
            match *op {
                DiffOp::Equal { old_index, len, .. } => {
                    for line in &old[old_index..old_index + len] {
                        patch.push_str(&format!(" {line}\n"));
                    }
                    touches_end = old_index + len == old.len();
                }
                DiffOp::Delete {
                    old_index, old_len, ..
                } => {
                    for line in &old[old_index..old_index + old_len] {
                        patch.push_str(&format!("-{line}\n"));
                    }
                    touches_end = old_index + old_len == old.len();
                }
                DiffOp::Insert {
                    old_index,
                    new_index,
                    new_len,
                } => {
                    for line in &new[new_index..new_index + new_len] {
                        patch.push_str(&format!("+{line}\n"));
                    }
                    touches_end = old_index == old.len();
                }
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => {
                    for line in &old[old_index..old_index + old_len] {
                        patch.push_str(&format!("-{line}\n"));
                    }
                    for line in &new[new_index..new_index + new_len] {
                        patch.push_str(&format!("+{line}\n"));
                    }
                    touches_end = old_index + old_len == old.len();
                }
            }
        }
        if touches_end {
            patch.push_str("*** End of File\n");
        }
    }
    patch.push_str("*** End Patch\n");
    patch
}

fn random_edit(rng: &mut fastrand::Rng, old: &[String], serial: &mut usize) -> Vec<String> {
    let mut new = old.to_vec();
    for _ in 0..rng.usize(1..5) {
        let at = rng.usize(0..=new.len());
        match rng.u8(0..3) {
            0 => {
                for k in 0..rng.usize(1..4) {
                    *serial += 1;
                    new.insert((at + k).min(new.len()), random_line(rng, *serial));
                }
            }
            1 if !new.is_empty() => {
                let start = at.min(new.len() - 1);
                let end = (start + rng.usize(1..4)).min(new.len());
                new.drain(start..end);
            }
            _ if !new.is_empty() => {
                let start = at.min(new.len() - 1);
                *serial += 1;
                new[start] = random_line(rng, *serial);
            }
            _ => {}
        }
    }
    new
}

#[test]
fn a_patch_from_a_random_edit_reproduces_the_edited_file() {
    for seed in 0..400u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut serial = 0;
        let old: Vec<String> = (0..rng.usize(0..60))
            .map(|_| {
                serial += 1;
                random_line(&mut rng, serial)
            })
            .collect();
        let new = random_edit(&mut rng, &old, &mut serial);
        if new == old {
            continue;
        }
        let crlf = rng.bool();
        let final_newline = rng.u8(0..4) != 0;
        let dir = tempfile::tempdir().unwrap();
        let dir_path = fs_err::canonicalize(dir.path()).unwrap();
        fs_err::write(dir_path.join("f.txt"), render(&old, crlf, final_newline)).unwrap();
        let patch = make_patch("f.txt", &old, &new);
        fs_err::write(
            dir_path.join("before.txt"),
            render(&old, crlf, final_newline),
        )
        .unwrap();
        let output = cox_tools::apply_patch::run(&patch, &context(&dir_path));
        assert!(output.ok, "seed {seed}: {}\npatch:\n{patch}", output.output);
        if !crlf && final_newline && !old.is_empty() {
            // The diff event must agree with GNU diff's unified output, hunk for hunk.
            let Some(cox_tools::Effect::Diff(diff)) = &output.effect else {
                panic!("seed {seed}: no diff")
            };
            let gnu = std::process::Command::new("diff")
                .args(["-U3", "before.txt", "f.txt"])
                .current_dir(&dir_path)
                .output()
                .unwrap();
            let hunks = |text: &str| text.lines().skip(2).map(str::to_string).collect::<Vec<_>>();
            assert_eq!(
                hunks(diff),
                hunks(&String::from_utf8_lossy(&gnu.stdout)),
                "seed {seed}\npatch:\n{patch}"
            );
        }
        let result = fs_err::read_to_string(dir_path.join("f.txt")).unwrap();
        let expected_final_newline = final_newline || old.is_empty();
        // A file with no line end at all (empty, or one unterminated line) says nothing about CRLF.
        let crlf_seen = render(&old, crlf, final_newline).contains("\r\n");
        assert_eq!(
            result,
            render(&new, crlf_seen, expected_final_newline),
            "seed {seed} (crlf {crlf}, final newline {final_newline})\npatch:\n{patch}"
        );
    }
}

#[test]
fn arbitrary_text_never_panics() {
    const PIECES: &[&str] = &[
        "*** Begin Patch\n",
        "*** End Patch\n",
        "*** Add File: a\n",
        "*** Delete File: a\n",
        "*** Update File: a\n",
        "*** Move to: b\n",
        "*** End of File\n",
        "@@\n",
        "@@ x\n",
        "+x\n",
        "-x\n",
        " x\n",
        "\n",
        "x\n",
        "\r\n",
        "*** \n",
        "@@",
        "+",
        "-",
        " ",
        "é",
        "\u{0}",
        "EOF\n",
    ];
    let dir = tempfile::tempdir().unwrap();
    let dir_path = fs_err::canonicalize(dir.path()).unwrap();
    fs_err::write(dir_path.join("a"), "x\ny\n").unwrap();
    for seed in 0..3000u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let text: String = (0..rng.usize(0..30))
            .map(|_| PIECES[rng.usize(..PIECES.len())])
            .collect();
        // Any outcome is fine but a panic; a patch that happens to be valid may change `a`.
        let _ = cox_tools::apply_patch::run(&text, &context(&dir_path));
        if !dir_path.join("a").exists() {
            fs_err::write(dir_path.join("a"), "x\ny\n").unwrap();
        }
    }
}
