//! The session journal: one append-only JSON Lines file per session under `$COX_HOME/sessions/`,
//! named by the session id (UUIDv7, so names sort by time).
//!
//! Each record is written with one `write` call and flushed *before* the side effect it announces
//! (a tool call is journaled as started before it runs), so a process killed at any moment leaves a
//! file that says what may have happened. Data reaches the kernel before the side effect; it is not
//! `fsync`ed (a killed process loses nothing; a power cut may lose the last records).
//!
//! A torn last line (a crash mid-write) is ignored when loading, and cut off before appending.
//! Every record passes through the redactor first: the session's API key never reaches the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use cox_model::Secret;
use cox_protocol::{
    CallId, CheckKind, FileChange, Item, PlanStep, SessionId, SessionStatus, StepReport, ToolCall,
    Usage,
};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Journal format version, in the header record.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The first line of every journal.
    Session {
        version: u32,
        id: SessionId,
        created: String,
        cwd: String,
        provider: String,
        model: String,
    },
    User {
        text: String,
    },
    /// A completed model response: the only source of tool calls.
    Response {
        text: String,
        tool_calls: Vec<ToolCall>,
        usage: Option<Usage>,
        /// The response's history items in the provider's order, when it had more than text and
        /// calls (reasoning to send back, commentary); absent, they are `[text, calls…]`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        output: Vec<Item>,
    },
    /// A note cox added to the conversation for the model (its response was cut by the output
    /// limit, or was empty); restored as a user message.
    Note {
        text: String,
    },
    /// Written before the tool runs.
    ToolStart {
        call_id: CallId,
    },
    /// A command of the call (or of a check, without one) started: the launcher's pid, which
    /// leads its process group, and its start time, which tells it from a later process with the
    /// same pid.
    Spawned {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
        pid: u32,
        start: u64,
    },
    /// Written after: `output` as the model saw it, and `full` when that was shortened.
    ToolEnd {
        call_id: CallId,
        ok: bool,
        output: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        full: Option<String>,
        /// Files the call changed (from its outcome), so a resumed plan step knows them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<FileChange>,
    },
    TaskEnd {
        status: SessionStatus,
        answer: Option<String>,
    },
    /// The model's plan changed (it is pinned in every request).
    Plan {
        steps: Vec<PlanStep>,
    },
    /// The history after a compaction, in full.
    Compacted {
        history: Vec<Item>,
    },
    /// A response cut short by a pause: its text so far stays in the conversation.
    Cut {
        text: String,
    },
    /// The user interrupted the task (a note to the model follows in the conversation).
    Interrupted,
    /// A steering directive, applied (in the conversation, and pinned from then on).
    Steer {
        text: String,
    },
    /// The model reported on its plan-run step (`report_step`).
    Step {
        report: StepReport,
    },
    /// Files changed and checkpoint `id` holds what they were (the store under
    /// `$COX_HOME/checkpoints/<session>` has the content; this line is what the journal tells).
    Checkpoint {
        id: u32,
        kind: cox_protocol::CheckpointKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
        files: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        undoes: Vec<u32>,
    },
    /// A check (`Op::RunCheck`) is about to run.
    CheckStart {
        kind: CheckKind,
        command: String,
    },
    /// A check ended; `output` as the check's events carried it.
    CheckEnd {
        kind: CheckKind,
        ok: bool,
        output: String,
    },
    /// A terminal session started (its launcher's `spawned` came before).
    TerminalStart {
        call_id: CallId,
        id: u32,
        command: String,
        pid: u32,
    },
    /// Text and keys typed into a terminal session, as a person reads them (credentials masked).
    TerminalWrite {
        call_id: CallId,
        id: u32,
        text: String,
    },
    /// A terminal session ended: how, or `gone` when cox itself had stopped while it ran (the
    /// session was lost with it; written on resume).
    TerminalEnd {
        id: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gone: bool,
    },
}

/// An open journal, appending.
pub struct Journal {
    file: fs_err::File,
    path: PathBuf,
    secrets: Vec<Secret>,
    /// This process alone writes the session (see [`crate::lock`]).
    _lock: crate::lock::Lock,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.path.display())
    }
}

/// Where the journals live.
pub fn sessions_dir(home: &Path) -> PathBuf {
    home.join("sessions")
}

fn journal_error(path: &Path, error: impl std::fmt::Display) -> Error {
    Error::Journal(format!("{}: {error}", path.display()))
}

impl Journal {
    /// Creates the journal of a new session and writes its header.
    pub fn create(home: &Path, header: &Record, secrets: Vec<Secret>) -> Result<Journal, Error> {
        let Record::Session { id, .. } = header else {
            return Err(Error::Journal(
                "a journal starts with a session record".into(),
            ));
        };
        let dir = sessions_dir(home);
        fs_err::create_dir_all(&dir).map_err(|e| Error::Journal(e.to_string()))?;
        let path = dir.join(format!("{id}.jsonl"));
        let lock = lock_session(&path, &id.0)?;
        remove_stale_staging(home);
        // The header goes in by rename, so a journal never exists without its first line, even if
        // the process dies while creating it.
        let staging = dir.join(format!("{id}.jsonl.new"));
        let mut first = Journal {
            file: fs_err::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&staging)
                .map_err(|e| journal_error(&staging, e))?,
            path: staging.clone(),
            secrets,
            _lock: lock,
        };
        if let Err(error) = first.append(header) {
            // A full disk or a size limit: nothing half-written stays behind.
            let _ = fs_err::remove_file(&staging);
            return Err(error);
        }
        if path.exists() {
            let _ = fs_err::remove_file(&staging);
            return Err(journal_error(
                &path,
                "a session with this id exists already",
            ));
        }
        fs_err::rename(&staging, &path).map_err(|e| journal_error(&path, e))?;
        first.path = path;
        Ok(first)
    }

    /// Reopens a loaded journal for appending, once this process holds the session's lock (a
    /// second `cox resume` of it is refused, naming the first), cutting off a torn last line.
    pub fn reopen(loaded: &Loaded, secrets: Vec<Secret>) -> Result<Journal, Error> {
        let path = &loaded.path;
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lock = lock_session(path, &id)?;
        let file = fs_err::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| journal_error(path, e))?;
        // Written to after it was read (by a process that has since let go): read it again.
        let len = file.metadata().map_err(|e| journal_error(path, e))?.len();
        if len != loaded.len {
            return Err(Error::Resume(format!(
                "session {id} changed while it was being read; run the command again"
            )));
        }
        file.set_len(loaded.valid_len)
            .map_err(|e| journal_error(path, e))?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            secrets,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and hands it to the kernel before returning.
    pub fn append(&mut self, record: &Record) -> Result<(), Error> {
        let mut line = serde_json::to_string(record).map_err(|e| journal_error(&self.path, e))?;
        for secret in &self.secrets {
            line = secret.redact(&line);
        }
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| journal_error(&self.path, e))?;
        if crate::crash::is_armed()
            && let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(record)
            && let Some(kind) = fields.get("type").and_then(|t| t.as_str())
        {
            crate::crash::at(&format!("after:{kind}"));
        }
        Ok(())
    }
}

/// Takes the lock of the session whose journal is `path` (`<id>.lock` beside `<id>.jsonl`, the
/// file [`crate::lock::session_path`] names).
fn lock_session(path: &Path, id: &str) -> Result<crate::lock::Lock, Error> {
    crate::lock::Lock::acquire(&path.with_extension("lock"), &format!("session {id}"))
}

/// Removes the half-made journals (`<id>.jsonl.new`) of processes that died creating them: those
/// whose session is not locked by a live cox.
fn remove_stale_staging(home: &Path) {
    let Ok(entries) = fs_err::read_dir(sessions_dir(home)) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl.new"))
        else {
            continue;
        };
        if !crate::lock::session_busy(home, id) {
            let _ = fs_err::remove_file(&path);
        }
    }
}

/// A journal read back.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub records: Vec<Record>,
    /// Bytes up to the end of the last whole line (where appending resumes).
    pub valid_len: u64,
    /// The file ended in a torn line, which was ignored.
    pub torn: bool,
    /// The file's length when it was read.
    pub len: u64,
}

impl Loaded {
    pub fn header(&self) -> Option<(&SessionId, &str, &str, &str, &str)> {
        match self.records.first() {
            Some(Record::Session {
                id,
                created,
                cwd,
                provider,
                model,
                ..
            }) => Some((id, created, cwd, provider, model)),
            _ => None,
        }
    }
}

/// Reads a journal. A torn last line is ignored; a bad line anywhere else is an error naming it.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let bytes = fs_err::read(path).map_err(|e| journal_error(path, e))?;
    let mut records = Vec::new();
    let mut valid_len = 0u64;
    let mut torn = false;
    let mut start = 0usize;
    let mut number = 0usize;
    while start < bytes.len() {
        number += 1;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| start + p);
        let line = &bytes[start..end.unwrap_or(bytes.len())];
        let parsed = serde_json::from_slice::<Record>(line);
        match (parsed, end) {
            (Ok(record), Some(end)) => {
                records.push(record);
                valid_len = end as u64 + 1;
                start = end + 1;
            }
            // The last line, unterminated: written half when the process died.
            (_, None) => {
                torn = true;
                break;
            }
            (Err(e), Some(_)) => {
                return Err(journal_error(
                    path,
                    format!("line {number} is not a journal record ({e})"),
                ));
            }
        }
    }
    match records.first() {
        Some(Record::Session { version, .. }) if *version <= VERSION => {}
        Some(Record::Session { version, .. }) => {
            return Err(journal_error(
                path,
                format!("written by a newer cox (journal version {version})"),
            ));
        }
        _ => {
            return Err(journal_error(
                path,
                "not a cox session journal (no session header)",
            ));
        }
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        records,
        valid_len,
        torn,
        len: bytes.len() as u64,
    })
}

/// One line of `cox sessions`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub id: String,
    pub created: String,
    pub cwd: String,
    pub first_prompt: String,
    /// `completed`, `failed`, `interrupted`, `provider_error`, or `unfinished` (killed mid-task).
    pub status: String,
}

/// Every journal in `home`, oldest first; unreadable files are listed as such, not skipped silently.
pub fn list(home: &Path) -> Vec<Result<Summary, String>> {
    let dir = sessions_dir(home);
    let Ok(entries) = fs_err::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let loaded = load(path).map_err(|e| e.to_string())?;
            let (id, created, cwd, ..) = loaded.header().ok_or("no header")?;
            let first_prompt = loaded
                .records
                .iter()
                .find_map(|r| match r {
                    Record::User { text } => {
                        Some(text.lines().next().unwrap_or_default().to_string())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            let status = match loaded.records.last() {
                Some(Record::TaskEnd { status, .. }) => serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                _ => "unfinished".to_string(),
            };
            Ok(Summary {
                id: id.0.clone(),
                created: created.to_string(),
                cwd: cwd.to_string(),
                first_prompt,
                status,
            })
        })
        .collect()
}

/// Whether a journal records a task (a `user` record), read line by line without parsing the rest.
fn has_task(path: &Path) -> bool {
    use std::io::BufRead;
    let Ok(file) = fs_err::File::open(path) else {
        return false;
    };
    std::io::BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .any(|line| line.starts_with(br#"{"type":"user""#))
}

/// Finds a journal by id (a unique prefix is enough), or with `None` the newest that has a task.
pub fn find(home: &Path, id: Option<&str>) -> Result<PathBuf, Error> {
    let dir = sessions_dir(home);
    let mut paths: Vec<PathBuf> = fs_err::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|x| x == "jsonl"));
    paths.sort();
    let Some(id) = id else {
        // The newest session that got a task: one whose start was rejected or cut off before
        // its prompt was recorded has nothing to continue.
        return paths
            .iter()
            .rev()
            .find(|path| has_task(path))
            .cloned()
            .ok_or_else(|| {
                Error::Resume(format!(
                    "there is no recorded session with a task in {} yet",
                    dir.display()
                ))
            });
    };
    let matching: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with(id))
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Resume(format!(
            "no session `{id}` in {}; `cox sessions` lists them",
            dir.display()
        ))),
        _ => Err(Error::Resume(format!(
            "`{id}` matches {} sessions; give more of the id",
            matching.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: &str) -> Record {
        Record::Session {
            version: VERSION,
            id: SessionId(id.into()),
            created: "2026-11-25T00:00:00Z".into(),
            cwd: "/w".into(),
            provider: "openai".into(),
            model: "m".into(),
        }
    }

    #[test]
    fn appends_loads_and_redacts() {
        let home = tempfile::tempdir().unwrap();
        let key = Secret::new("sk-secret-value-123456");
        let mut journal = Journal::create(home.path(), &header("s1"), vec![key]).unwrap();
        journal
            .append(&Record::User {
                text: "use sk-secret-value-123456".into(),
            })
            .unwrap();
        let loaded = load(journal.path()).unwrap();
        assert_eq!(loaded.records.len(), 2);
        assert!(!loaded.torn);
        let text = fs_err::read_to_string(journal.path()).unwrap();
        assert!(!text.contains("sk-secret-value-123456"));
        assert!(text.contains("sk-…3456"));
    }

    #[test]
    fn torn_last_line_is_ignored_and_cut_before_appending() {
        let home = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(home.path(), &header("s2"), Vec::new()).unwrap();
        journal.append(&Record::User { text: "hi".into() }).unwrap();
        let path = journal.path().to_path_buf();
        drop(journal);
        let mut file = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"type\":\"user\",\"te").unwrap();
        let loaded = load(&path).unwrap();
        assert!(loaded.torn);
        assert_eq!(loaded.records.len(), 2);
        let mut journal = Journal::reopen(&loaded, Vec::new()).unwrap();
        journal
            .append(&Record::User {
                text: "again".into(),
            })
            .unwrap();
        assert_eq!(load(&path).unwrap().records.len(), 3);
    }

    #[test]
    fn corruption_in_the_middle_names_the_line() {
        let home = tempfile::tempdir().unwrap();
        let journal = Journal::create(home.path(), &header("s3"), Vec::new()).unwrap();
        let path = journal.path().to_path_buf();
        let mut file = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"garbage\n{\"type\":\"user\",\"text\":\"x\"}\n")
            .unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(error.contains("line 2 is not a journal record"), "{error}");
    }
}
