//! What the steering grace window shows of a patch before it is applied: each file with what
//! happens to it, and the lines it removes and adds (context left out), cut to a few lines; and
//! whether it deletes (a file, or more lines than it adds), which earns the longer window.

use super::parse::{FileOp, LineKind, parse};

/// Lines of a patch's preview at most (the rest is counted).
const PREVIEW_LINES: usize = 14;

/// The preview of a patch, and why it counts as a deletion (`None`: it does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub preview: Vec<String>,
    pub deletion: Option<String>,
}

/// `None` for text that is not a patch (the call will fail on its own and touch nothing).
pub fn held(text: &str) -> Option<Held> {
    let ops = parse(text).ok()?;
    let mut lines = Vec::new();
    let mut deletion = None;
    for op in &ops {
        match op {
            FileOp::Add { path, contents } => {
                lines.push(format!("add {path} ({} lines)", contents.lines().count()));
                lines.extend(contents.lines().map(|l| format!("+{l}")));
            }
            FileOp::Delete { path } => {
                lines.push(format!("delete {path}"));
                deletion.get_or_insert_with(|| format!("the patch deletes {path}"));
            }
            FileOp::Update {
                path,
                move_to,
                chunks,
            } => {
                lines.push(match move_to {
                    Some(to) => format!("update {path} → {to}"),
                    None => format!("update {path}"),
                });
                let (mut added, mut removed) = (0, 0);
                for chunk in chunks {
                    for (kind, text) in &chunk.lines {
                        match kind {
                            LineKind::Context => {}
                            LineKind::Remove => {
                                removed += 1;
                                lines.push(format!("-{text}"));
                            }
                            LineKind::Add => {
                                added += 1;
                                lines.push(format!("+{text}"));
                            }
                        }
                    }
                }
                if removed > added {
                    deletion.get_or_insert_with(|| {
                        format!("the patch removes {} lines from {path}", removed - added)
                    });
                }
            }
        }
    }
    if lines.len() > PREVIEW_LINES {
        let more = lines.len() - PREVIEW_LINES + 1;
        lines.truncate(PREVIEW_LINES - 1);
        lines.push(format!("… {more} more lines"));
    }
    Some(Held {
        preview: lines,
        deletion,
    })
}

#[cfg(test)]
mod tests {
    use super::held;

    #[test]
    fn a_removal_shows_what_goes_and_is_a_deletion() {
        let patch = "*** Begin Patch\n*** Update File: src/api.js\n@@ function legacy\n \
                     keep()\n-function wrap(cb) {\n-  return cb;\n-}\n+// gone\n*** End Patch\n";
        let held = held(patch).unwrap();
        assert_eq!(
            held.preview,
            [
                "update src/api.js",
                "-function wrap(cb) {",
                "-  return cb;",
                "-}",
                "+// gone"
            ]
        );
        assert_eq!(
            held.deletion.as_deref(),
            Some("the patch removes 2 lines from src/api.js")
        );
    }

    #[test]
    fn an_addition_is_not_a_deletion_and_long_previews_are_cut() {
        let body: String = (0..30).map(|n| format!("+line {n}\n")).collect();
        let patch = format!("*** Begin Patch\n*** Add File: new.txt\n{body}*** End Patch\n");
        let held = held(&patch).unwrap();
        assert_eq!(held.deletion, None);
        assert_eq!(held.preview.len(), 14);
        assert_eq!(held.preview[0], "add new.txt (30 lines)");
        assert_eq!(held.preview[13], "… 18 more lines");
        let delete = "*** Begin Patch\n*** Delete File: old.js\n*** End Patch\n";
        assert_eq!(
            held_deletion(delete).as_deref(),
            Some("the patch deletes old.js")
        );
        assert!(super::held("not a patch").is_none());
    }

    fn held_deletion(patch: &str) -> Option<String> {
        held(patch).unwrap().deletion
    }
}
