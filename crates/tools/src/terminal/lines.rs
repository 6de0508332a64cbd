//! What a write into a terminal session will make its program run: the lines typed, as rules and
//! approvals read them — a hostile model must not get a denied command past them by typing it in
//! pieces, or by editing it on the line before Enter.
//!
//! A session remembers what was typed since its last Enter (its unsubmitted line), and a write is
//! read after it: `ps` in one call and `ql -c …⏎` in the next is the line `psql -c …`. Backspace,
//! Ctrl-U (kill the line), Ctrl-W (kill a word) and Ctrl-C (discard the line) are applied as a
//! shell's line editor applies them. What cox cannot follow — cursor moves, history, completion,
//! Meta keys, any other control key (`Tab`, arrows, `C-a`, `C-r`, `Esc .` …) — makes the line
//! *unclear*: [`Typed::unclear`] says which key, and the engine then blocks the write when a rule
//! checks commands, and asks (where its policy asks for commands) instead of trusting the text.
//!
//! **Decided:** in a full-screen program (the alternate screen: vim, less) Esc and the cursor
//! keys are its own (modes, movement): Esc ends the line being followed, and what follows it is read
//! as typed (a cursor key's `[A` included) — but Esc followed by a key other than `:`, `[`, `O` is
//! unclear, since the program may quit mid-write and leave a shell to read it as a Meta chord; a line starting with `:` or `!` (vim's `:!cmd`, less's
//! `!cmd`) is also read without them, so `:!psql` is `psql`. Rules
//! on commands stay a policy over what is typed; the sandbox is what holds whatever is run.

/// A write, read after the session's unsubmitted line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Typed {
    /// Each line as it will be (or, for the last without Enter, is being) submitted, one per line.
    pub lines: String,
    /// Why cox cannot tell what a line will be, when it cannot.
    pub unclear: Option<String>,
}

/// Reads `bytes` typed after `pending` (the session's unsubmitted line).
pub fn follow(pending: &[u8], bytes: &[u8], full_screen: bool) -> Typed {
    let all = [pending, bytes].concat();
    let text = String::from_utf8_lossy(&all);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut unclear = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => lines.push(std::mem::take(&mut line)),
            '\x7f' | '\x08' => {
                line.pop();
            }
            '\x15' | '\x03' => line.clear(),
            '\x17' => {
                let kept = line.trim_end().len();
                line.truncate(kept);
                let word = line.rfind(' ').map_or(0, |at| at + 1);
                line.truncate(word);
            }
            // End of input on an empty line; at the end of a line it deletes nothing.
            '\x04' => {}
            // What follows is read as typed (an arrow's `[A` too): nothing is skipped, so nothing
            // can hide behind an escape sequence. But Esc then a key is a Meta chord to a shell's
            // line editor (`Esc .` yanks the last argument) should the program quit first.
            '\x1b' if full_screen => {
                lines.push(std::mem::take(&mut line));
                if chars
                    .peek()
                    .is_some_and(|next| !matches!(next, ':' | '[' | 'O' | '\x1b'))
                {
                    unclear.get_or_insert_with(|| {
                        "it holds Esc followed by a key, which a shell reads as a Meta chord if \
                         the program quits first; send Esc as the last key of a call, and the \
                         rest in the next"
                            .to_string()
                    });
                }
            }
            '\x1b' => {
                unclear.get_or_insert_with(|| {
                    "it holds Esc or a cursor key, which edit the line in ways cox cannot follow"
                        .to_string()
                });
            }
            '\t' if !full_screen => {
                unclear.get_or_insert_with(|| {
                    "it holds Tab, and completion decides what the line becomes".to_string()
                });
            }
            c if c.is_control() => {
                unclear.get_or_insert_with(|| {
                    format!(
                        "it holds {}, which edits or recalls the line in ways cox cannot follow",
                        super::typed_text(c.to_string().as_bytes())
                    )
                });
            }
            c => line.push(c),
        }
    }
    lines.push(line);
    let mut read: Vec<String> = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        read.push(line.to_string());
        // `:!cmd`, `!cmd`, and the `[` or `O` of a cursor key's sequence before them.
        let bare = line.trim_start_matches([':', '!', ' ', '[', 'O']);
        if full_screen && bare != line && !bare.is_empty() {
            read.push(bare.to_string());
        }
    }
    Typed {
        lines: read.join("\n"),
        unclear,
    }
}

/// What stays unsubmitted after `bytes` are typed following `pending`: the raw bytes since the
/// last Enter (or Ctrl-C, or Ctrl-U, which discard the line).
pub fn unsubmitted(pending: &[u8], bytes: &[u8]) -> Vec<u8> {
    let all = [pending, bytes].concat();
    match all
        .iter()
        .rposition(|b| matches!(b, b'\r' | b'\n' | 0x03 | 0x15))
    {
        Some(at) => all[at + 1..].to_vec(),
        None => all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pending: &str, typed: &str) -> Typed {
        follow(pending.as_bytes(), typed.as_bytes(), false)
    }

    #[test]
    fn a_command_typed_in_pieces_is_read_whole() {
        assert_eq!(
            lines("ps", "ql -c 'drop table x'\r").lines,
            "psql -c 'drop table x'"
        );
        assert_eq!(unsubmitted(b"ps", b"ql\rech"), b"ech");
        assert_eq!(unsubmitted(b"ps", b"q"), b"psq");
        assert_eq!(lines("", "ls\rpsql\r").lines, "ls\npsql");
    }

    #[test]
    fn line_editing_is_applied() {
        assert_eq!(lines("", "psqx\x7fl\r").lines, "psql");
        assert_eq!(lines("", "rm -rf /\x15psql\r").lines, "psql");
        assert_eq!(lines("", "echo ok psq\x17psql\r").lines, "echo ok psql");
        assert_eq!(lines("echo harmless", "\x03psql\r").lines, "psql");
        assert_eq!(unsubmitted(b"echo x", b"\x03ps"), b"ps");
        assert_eq!(lines("", "ls").unclear, None);
    }

    #[test]
    fn keys_cox_cannot_follow_make_the_line_unclear() {
        for typed in [
            "sql\x1b[Hp\r",
            "ps\t\r",
            "\x1b[A\r",
            "ql\x01ps\r",
            "ps\x1b.\r",
            "\x12ps",
        ] {
            let read = lines("", typed);
            assert!(read.unclear.is_some(), "{typed:?}: {read:?}");
        }
        assert!(lines("", "ps\t").unclear.unwrap().contains("Tab"));
    }

    #[test]
    fn a_full_screen_program_has_its_own_keys_and_its_command_lines_are_read_bare() {
        let vim = |typed: &str| follow(b"", typed.as_bytes(), true);
        assert_eq!(
            vim("ifoo\x1b:wq\r"),
            Typed {
                lines: "ifoo\n:wq\nwq".into(),
                unclear: None
            }
        );
        assert_eq!(vim(":!psql\r").lines, ":!psql\npsql");
        assert_eq!(vim("\x1b[A\x1bOB").unclear, None);
        // An escape sequence hides nothing.
        assert!(vim("\x1b[:!psql\r").lines.contains("\npsql"));
        assert!(vim("\x1bO:!psql\r").lines.contains("\npsql"));
        assert!(vim("\x12a").unclear.is_some(), "C-r inserts a register");
        // `q` quits less, then `Esc .` would yank into the shell's line what cox never saw.
        assert!(vim("q\x1b. -c 1\r").unclear.is_some());
        assert_eq!(vim("ifoo\x1b").unclear, None, "Esc last is fine");
    }
}
