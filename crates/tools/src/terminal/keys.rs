//! Named keys a model may send to a terminal session, as the bytes a terminal sends for them.

/// The bytes of a key name (`Enter`, `C-c`, `Up`, …), or `None` for a name not known. Arrow keys
/// follow the program's cursor mode (`application`: `ESC O A`, else `ESC [ A`).
pub fn bytes(name: &str, application: bool) -> Option<Vec<u8>> {
    let arrow = |c: u8| {
        if application {
            vec![0x1b, b'O', c]
        } else {
            vec![0x1b, b'[', c]
        }
    };
    let lower = name.to_ascii_lowercase();
    let plain: &[u8] = match lower.as_str() {
        "enter" | "return" => b"\r",
        "tab" => b"\t",
        "esc" | "escape" => b"\x1b",
        "backspace" | "bs" => b"\x7f",
        "space" => b" ",
        "delete" | "del" => b"\x1b[3~",
        "home" => b"\x1b[H",
        "end" => b"\x1b[F",
        "pageup" | "pgup" => b"\x1b[5~",
        "pagedown" | "pgdn" => b"\x1b[6~",
        "up" => return Some(arrow(b'A')),
        "down" => return Some(arrow(b'B')),
        "right" => return Some(arrow(b'C')),
        "left" => return Some(arrow(b'D')),
        _ => return control(&lower),
    };
    Some(plain.to_vec())
}

/// `C-x`, `ctrl-x`, `^x`: the control character of a letter (or of `@ [ \ ] ^ _`).
fn control(name: &str) -> Option<Vec<u8>> {
    let key = name
        .strip_prefix("c-")
        .or_else(|| name.strip_prefix("ctrl-"))
        .or_else(|| name.strip_prefix("ctrl+"))
        .or_else(|| name.strip_prefix('^'))?;
    let [c] = key.as_bytes() else {
        return None;
    };
    match c {
        b'a'..=b'z' => Some(vec![c - b'a' + 1]),
        b'@' | b'[' | b'\\' | b']' | b'^' | b'_' => Some(vec![c.to_ascii_uppercase() & 0x1f]),
        _ => None,
    }
}

/// The names [`bytes`] knows, for error messages.
pub const KNOWN: &str = "Enter, Tab, Esc, Backspace, Space, Delete, Home, End, PageUp, PageDown, \
Up, Down, Left, Right, and C-a … C-z (C-c interrupts, C-d ends input)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_bytes_a_terminal_sends() {
        assert_eq!(bytes("Enter", false).unwrap(), b"\r");
        assert_eq!(bytes("C-c", false).unwrap(), [3]);
        assert_eq!(bytes("ctrl-d", false).unwrap(), [4]);
        assert_eq!(bytes("^[", false).unwrap(), [0x1b]);
        assert_eq!(bytes("Up", false).unwrap(), b"\x1b[A");
        assert_eq!(bytes("up", true).unwrap(), b"\x1bOA");
        assert_eq!(bytes("Esc", false).unwrap(), [0x1b]);
        assert!(bytes("C-1", false).is_none());
        assert!(bytes("Hyper", false).is_none());
    }
}
