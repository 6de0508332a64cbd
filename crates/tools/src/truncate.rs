//! Bounded capture of a command's output: the first and the last bytes are kept, the middle is
//! counted and dropped, so a command that prints gigabytes costs a fixed amount of memory and the
//! model still sees how it started and how it ended.

/// Keeps up to `head` bytes from the start and `tail` bytes from the end of a byte stream.
#[derive(Debug)]
pub struct HeadTail {
    limit_head: usize,
    limit_tail: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
    lines: u64,
}

impl HeadTail {
    /// Splits `budget` bytes evenly between head and tail.
    pub fn new(budget: usize) -> Self {
        HeadTail {
            limit_head: budget / 2,
            limit_tail: budget - budget / 2,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            total: 0,
            lines: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.lines += count_newlines(bytes);
        let room = self.limit_head - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.limit_tail {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.limit_tail..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.limit_tail);
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }

    /// Bytes seen in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept text, with a marker where bytes were dropped saying how many lines and bytes.
    pub fn render(&self) -> String {
        self.render_within(self.limit_head + self.limit_tail)
    }

    /// Like [`HeadTail::render`], keeping at most `budget` bytes (half head, half tail): the same
    /// capture can give the journal a long version and the model a short one.
    pub fn render_within(&self, budget: usize) -> String {
        let mut tail: Vec<u8> = self.tail.iter().copied().collect();
        let mut head = self.head.clone();
        if (head.len() + tail.len()) as u64 == self.total {
            // Nothing was dropped while capturing: head and tail are one contiguous text.
            head.append(&mut tail);
            if head.len() <= budget {
                return String::from_utf8_lossy(&head).into_owned();
            }
            tail = head.split_off(head.len() - (budget - budget / 2));
        }
        let head = &head[..head.len().min(budget / 2)];
        let tail = &tail[tail.len() - tail.len().min(budget - budget / 2)..];
        let kept = (head.len() + tail.len()) as u64;
        if kept == self.total {
            let mut all = head.to_vec();
            all.extend_from_slice(tail);
            return String::from_utf8_lossy(&all).into_owned();
        }
        let dropped = self.total - kept;
        let lines = self
            .lines
            .saturating_sub(count_newlines(head) + count_newlines(tail));
        format!(
            "{}\n[… {lines} lines ({dropped} bytes) of output omitted …]\n{}",
            String::from_utf8_lossy(head),
            String::from_utf8_lossy(tail)
        )
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut buffer = HeadTail::new(20);
        buffer.push(b"hello ");
        buffer.push(b"world");
        assert_eq!(buffer.render(), "hello world");
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let mut buffer = HeadTail::new(8);
        for chunk in [b"abcd".as_slice(), b"efgh", b"ijkl", b"mn"] {
            buffer.push(chunk);
        }
        assert_eq!(buffer.total(), 14);
        assert_eq!(
            buffer.render(),
            "abcd\n[… 0 lines (6 bytes) of output omitted …]\nklmn"
        );
    }

    #[test]
    fn renders_within_a_smaller_budget() {
        let mut buffer = HeadTail::new(100);
        buffer.push(b"0123456789abcdefghij");
        assert_eq!(buffer.render(), "0123456789abcdefghij");
        assert_eq!(
            buffer.render_within(8),
            "0123\n[… 0 lines (12 bytes) of output omitted …]\nghij"
        );
    }

    #[test]
    fn one_huge_chunk() {
        let mut buffer = HeadTail::new(4);
        buffer.push(&[b'x'; 1000]);
        assert_eq!(
            buffer.render(),
            "xx\n[… 0 lines (996 bytes) of output omitted …]\nxx"
        );
    }
}
