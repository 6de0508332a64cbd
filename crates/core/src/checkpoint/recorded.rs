//! `cox checkpoints` and `cox undo` on a recorded session: its store read back, an undo made
//! under the session's lock (a session still running refuses it: the model could otherwise undo
//! from a command of its own, and two writers would race), journaled with a note that tells the
//! model when the session is resumed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cox_protocol::{CheckpointKind, SessionId};

use super::{Checkpoint, Limits, Store, Target};
use crate::journal::{self, Record};

/// A recorded session's checkpoints.
pub struct Recorded {
    pub session: SessionId,
    pub cwd: PathBuf,
    pub checkpoints: Vec<Checkpoint>,
    /// Those in force (not undone).
    pub live: HashSet<u32>,
}

/// What `undo` did: the outside changes it found first, and the undo.
pub struct Undid {
    pub session: SessionId,
    pub cwd: PathBuf,
    pub outside: Option<Checkpoint>,
    pub undone: Checkpoint,
}

fn header(loaded: &journal::Loaded) -> Result<(SessionId, PathBuf), crate::Error> {
    match loaded.header() {
        Some((id, _, cwd, _, _)) => Ok((id.clone(), PathBuf::from(cwd))),
        None => Err(crate::Error::Resume(format!(
            "{} has no session header",
            loaded.path.display()
        ))),
    }
}

fn reopen(home: &Path, session: &SessionId, limits: Limits) -> Result<Store, crate::Error> {
    if !super::dir(home, &session.0).join("store.json").is_file() {
        return Err(super::Refusal::Nothing.into());
    }
    // The roots come from the store itself.
    Store::open(home, &session.0, &[], &[], Vec::new(), limits)
}

/// The checkpoints of session `id` (a unique prefix), or of the newest session.
pub fn list(home: &Path, id: Option<&str>, limits: Limits) -> Result<Recorded, crate::Error> {
    let loaded = journal::load(&journal::find(home, id)?)?;
    let (session, cwd) = header(&loaded)?;
    let (checkpoints, live) = match reopen(home, &session, limits) {
        Ok(store) => {
            let live = store
                .checkpoints()
                .iter()
                .map(|c| c.id)
                .filter(|id| store.is_live(*id))
                .collect();
            (store.checkpoints().to_vec(), live)
        }
        Err(crate::Error::Undo(super::Refusal::Nothing)) => (Vec::new(), HashSet::new()),
        Err(error) => return Err(error),
    };
    Ok(Recorded {
        session,
        cwd,
        checkpoints,
        live,
    })
}

/// Undoes `target` in session `id` (or the newest).
pub fn undo(
    home: &Path,
    id: Option<&str>,
    target: &Target,
    limits: Limits,
) -> Result<Undid, crate::Error> {
    let loaded = journal::load(&journal::find(home, id)?)?;
    let (session, cwd) = header(&loaded)?;
    // The session's lock, held until the journal lines are written.
    let mut journal = journal::Journal::reopen(&loaded, Vec::new())?;
    let mut store = reopen(home, &session, limits)?;
    let (outside, undone) = store.undo(target, CheckpointKind::Undo, &cwd)?;
    for checkpoint in outside.iter().chain(Some(&undone)) {
        if checkpoint.changes.is_empty() {
            continue;
        }
        journal.append(&Record::Checkpoint {
            id: checkpoint.id,
            kind: checkpoint.kind,
            call_id: None,
            files: checkpoint.files(&cwd).into_iter().map(|f| f.path).collect(),
            undoes: checkpoint.undoes.clone(),
        })?;
    }
    if !undone.changes.is_empty() {
        journal.append(&Record::Note {
            text: undo_note(&undone, &cwd),
        })?;
    }
    Ok(Undid {
        session,
        cwd,
        outside,
        undone,
    })
}

/// The note the model gets after the person undid its work.
pub fn undo_note(undone: &Checkpoint, cwd: &std::path::Path) -> String {
    let files: Vec<String> = undone.files(cwd).into_iter().map(|f| f.path).collect();
    format!(
        "The user undid your change{} (checkpoint{} {}): {} {} back as {} before. Do not redo it \
         unless asked; read the files again before editing them.",
        if undone.undoes.len() == 1 { "" } else { "s" },
        if undone.undoes.len() == 1 { "" } else { "s" },
        cox_protocol::list_ids(&undone.undoes),
        files.join(", "),
        if files.len() == 1 { "is" } else { "are" },
        if files.len() == 1 {
            "it was"
        } else {
            "they were"
        },
    )
}
