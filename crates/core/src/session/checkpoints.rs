//! The session's side of checkpoints: every action that may write (a write tool, a command, a
//! check) is bracketed by two looks at the writable roots — before it, to set apart what someone
//! else changed meanwhile (`outside`), and after it, to know exactly what it changed — and the
//! project's rules are checked on what it changed. A violating change is rolled back at once.
//!
//! The store is opened and its baseline taken in the background when a session that may write
//! starts (a session in read-only mode never pays it), behind an async mutex held for the whole
//! action: the first action waits for the baseline, and an undo asked for while paused waits for
//! a running command to end rather than race it. The walks run on the blocking pool.
//!
//! Fail closed: when the store cannot be written and the project has rules on files, the action
//! is not run (the rules could not be checked on its effects); without such rules it runs and the
//! person is warned that undo is off.

use std::path::PathBuf;
use std::sync::Arc;

use cox_protocol::{CallId, CheckpointKind, Event};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::Session;
use crate::checkpoint::{Checkpoint, Store, Target, undo_note};
use crate::journal::Record;

/// How to open the store, and the store once open (shared with the op loop for an undo while
/// paused).
#[derive(Clone)]
pub(super) struct Checkpoints {
    store: Arc<Mutex<Option<Store>>>,
    open: Arc<Opening>,
    /// Set when the session ends: a baseline still being taken is given up.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

struct Opening {
    home: PathBuf,
    session: String,
    roots: Vec<PathBuf>,
    protected: Vec<PathBuf>,
    guarded: Vec<PathBuf>,
    limits: crate::checkpoint::Limits,
}

/// An action's hold on the store, from its before-look to its after-look.
pub(super) struct Held(OwnedMutexGuard<Option<Store>>);

/// What an action's after-look found, and what the rules said of it.
pub(super) struct Effects {
    pub checkpoint: Option<Checkpoint>,
    /// The rule it broke: (violation, file, line), after the change was rolled back.
    pub broken: Option<(crate::rules::Violation, String, Option<u32>)>,
    /// The rollback of a violating change, or why it failed.
    pub rollback: Option<Result<Checkpoint, String>>,
}

impl Checkpoints {
    pub(super) fn new(config: &super::SessionConfig, session: &str) -> Checkpoints {
        let root = crate::repo_root(&config.cwd);
        let guarded = config
            .rules
            .guarded_prefixes()
            .into_iter()
            .map(|prefix| root.join(prefix))
            .collect();
        Checkpoints {
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            store: Arc::new(Mutex::new(None)),
            open: Arc::new(Opening {
                home: config.settings.home.clone(),
                session: session.to_string(),
                roots: config.writable_roots.clone(),
                protected: config.protected.clone(),
                guarded,
                limits: config.settings.checkpoint_limits,
            }),
        }
    }

    /// Takes the baseline in the background, while the model thinks: the first action that may
    /// write waits for it (it holds the store) rather than pay for it.
    pub(super) fn prepare(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut held = Arc::clone(&this.store).lock_owned().await;
            let open = Arc::clone(&this.open);
            let stop = Arc::clone(&this.stop);
            let taken = Checkpoints::with(open, &mut held, move |store| {
                store.ensure_base_unless(&stop)
            })
            .await;
            if let Err(error) = taken {
                // The first action tries again, and says so.
                tracing::warn!(%error, "checkpoint baseline");
            }
            // Given up at the session's end: a store with no baseline holds nothing to keep.
            if held.as_ref().is_some_and(|store| !store.is_based())
                && let Some(store) = held.take()
                && let Err(error) = fs_err::remove_dir_all(store.dir())
            {
                tracing::warn!(%error, "removing an unfinished checkpoint store");
            }
        });
    }

    /// The session ends: a baseline still being taken stops.
    pub(super) fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// After the session's last look: a store with no checkpoint (nothing was changed) holds only
    /// a copy of the workspace, so it goes; one with checkpoints stays for `cox undo`.
    pub(super) async fn finish(&self) {
        let mut held = Arc::clone(&self.store).lock_owned().await;
        if held
            .as_ref()
            .is_some_and(|store| store.checkpoints().is_empty())
            && let Some(store) = held.take()
            && let Err(error) = fs_err::remove_dir_all(store.dir())
        {
            tracing::warn!(%error, "removing an empty checkpoint store");
        }
    }

    /// Runs `work` on the store (opened first if need be) on the blocking pool.
    async fn with<R: Send + 'static>(
        open: Arc<Opening>,
        held: &mut OwnedMutexGuard<Option<Store>>,
        work: impl FnOnce(&mut Store) -> Result<R, crate::Error> + Send + 'static,
    ) -> Result<R, crate::Error> {
        let store = held.take();
        let done = tokio::task::spawn_blocking(move || {
            let mut store = match store {
                Some(store) => store,
                None => Store::open(
                    &open.home,
                    &open.session,
                    &open.roots,
                    &open.protected,
                    open.guarded.clone(),
                    open.limits,
                )?,
            };
            let result = work(&mut store);
            Ok::<_, crate::Error>((store, result))
        })
        .await
        .map_err(|e| crate::Error::Io(std::io::Error::other(e)))?;
        let (store, result) = done?;
        **held = Some(store);
        result
    }

    /// The store, once no baseline or action holds it (a store not yet opened is `None`).
    pub(super) async fn lock(&self) -> OwnedMutexGuard<Option<Store>> {
        Arc::clone(&self.store).lock_owned().await
    }

    /// Undoes `target` (the person asked: `/undo`, `Op::Undo`). Returns the outside changes found
    /// first and the undo's checkpoint.
    pub(super) async fn undo(
        &self,
        target: Target,
        cwd: PathBuf,
    ) -> Result<(Option<Checkpoint>, Checkpoint), crate::Error> {
        let mut held = Arc::clone(&self.store).lock_owned().await;
        Checkpoints::with(Arc::clone(&self.open), &mut held, move |store| {
            store.undo(&target, CheckpointKind::Undo, &cwd)
        })
        .await
    }
}

impl Session {
    /// Before an action that may write: takes the store (the baseline at the first action) and
    /// records what changed since the last look as someone else's. While a terminal session of
    /// the model runs, that someone may be the model's own process: then the rules judge those
    /// changes too, and a violation is rolled back and stops this call. `Err` carries the reason
    /// the action must not run.
    pub(super) async fn before_action(
        &mut self,
        call_id: Option<&CallId>,
    ) -> Result<Option<Held>, String> {
        if self.config.writable_roots.is_empty() {
            return Ok(None);
        }
        let mut held = Arc::clone(&self.checkpoints.store).lock_owned().await;
        let rules = (self.terminals.running() > 0).then(|| Arc::clone(&self.config.rules));
        let (root, cwd) = (crate::repo_root(&self.config.cwd), self.config.cwd.clone());
        let open = Arc::clone(&self.checkpoints.open);
        let found = Checkpoints::with(open, &mut held, move |store| {
            store.ensure_base()?;
            let outside = store.record(CheckpointKind::Outside, None, "changed outside cox")?;
            Ok(judge(store, outside, rules.as_deref(), &root, &cwd))
        })
        .await;
        match found {
            Ok(effects) => match self.announce_effects(call_id, &effects).await {
                Some(reason) => Err(format!(
                    "not run: a process you left running in a terminal session changed files \
                     against a project rule, and that was undone: {reason}"
                )),
                None => Ok(Some(Held(held))),
            },
            Err(error) => self.store_failed(error).await.map(|()| None),
        }
    }

    /// At the end of the session, once the model's terminal sessions were killed: what they
    /// changed since the last action is looked at and judged like an action's.
    pub(super) async fn look_after_terminals(&mut self) {
        let Some(Held(mut held)) = self.hold_store().await else {
            return;
        };
        if held.is_none() {
            // No action opened the store: there is nothing to compare with.
            return;
        }
        let rules = Some(Arc::clone(&self.config.rules));
        let (root, cwd) = (crate::repo_root(&self.config.cwd), self.config.cwd.clone());
        let open = Arc::clone(&self.checkpoints.open);
        let found = Checkpoints::with(open, &mut held, move |store| {
            let outside = store.record(
                CheckpointKind::Outside,
                None,
                "changed by a terminal session",
            )?;
            Ok(judge(store, outside, rules.as_deref(), &root, &cwd))
        })
        .await;
        match found {
            Ok(effects) => {
                self.announce_effects(None, &effects).await;
            }
            Err(error) => self.warn(error.to_string()).await,
        }
    }

    /// Announces what a look found; returns the rule's reason when it broke one (the rollback
    /// announced too).
    async fn announce_effects(
        &mut self,
        call_id: Option<&CallId>,
        effects: &Effects,
    ) -> Option<String> {
        if let Some(checkpoint) = &effects.checkpoint {
            self.announce_checkpoint(checkpoint).await;
        }
        if let Some(Ok(rollback)) = &effects.rollback {
            self.announce_checkpoint(rollback).await;
        }
        let (violation, path, line) = effects.broken.as_ref()?;
        let reason = format!(
            "`{}` ({}): {}",
            violation.rule_id, violation.rule_text, violation.reason
        );
        match call_id {
            Some(call_id) => {
                self.emitter
                    .emit(Event::RuleBlocked {
                        call_id: call_id.clone(),
                        rule_id: violation.rule_id.clone(),
                        reason: violation.reason.clone(),
                        path: Some(path.clone()),
                        line: *line,
                    })
                    .await;
            }
            None => {
                let message = format!(
                    "a terminal session of the model changed {path} against rule {reason}; undone"
                );
                self.warn(message).await;
            }
        }
        if let Some(Err(error)) = &effects.rollback {
            self.warn(format!("the rule's rollback failed: {error}"))
                .await;
        }
        Some(reason)
    }

    /// Takes the store without looking first: for a call cut short when cox stopped, whose
    /// changes since the last look are its own.
    pub(super) async fn hold_store(&mut self) -> Option<Held> {
        if self.config.writable_roots.is_empty() {
            return None;
        }
        Some(Held(Arc::clone(&self.checkpoints.store).lock_owned().await))
    }

    /// An action's output as the model gets it: when its effects broke a rule, the rule (and that
    /// they were undone) instead of what it printed; the changed files it reports are what the
    /// checkpoint found when the tool itself did not say (a command's).
    pub(super) async fn judged(
        &mut self,
        call_id: &CallId,
        effects: Effects,
        mut output: cox_tools::ToolOutput,
    ) -> cox_tools::ToolOutput {
        let cwd = self.config.cwd.clone();
        let Some((violation, path, line)) = effects.broken else {
            if output.outcome.changed_files.is_empty()
                && let Some(checkpoint) = &effects.checkpoint
            {
                output.outcome.changed_files = checkpoint
                    .files(&cwd)
                    .into_iter()
                    .map(|f| cox_protocol::FileChange {
                        path: f.path,
                        added: 0,
                        removed: 0,
                        hunks: Vec::new(),
                    })
                    .collect();
            }
            return output;
        };
        tracing::info!(%call_id, rule = %violation.rule_id, %path, "effects blocked by a rule");
        self.emitter
            .emit(Event::RuleBlocked {
                call_id: call_id.clone(),
                rule_id: violation.rule_id.clone(),
                reason: violation.reason.clone(),
                path: Some(path),
                line,
            })
            .await;
        let undone = match &effects.rollback {
            Some(Ok(rollback)) => format!(
                "Everything this call changed was undone ({}).",
                rollback
                    .files(&cwd)
                    .into_iter()
                    .map(|f| f.path)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(Err(error)) => {
                let message = format!("the rule's rollback failed: {error}");
                self.warn(message.clone()).await;
                format!("Undoing this call's changes failed ({error}); the user was told.")
            }
            None => String::new(),
        };
        let mut blocked = cox_tools::ToolOutput::error(format!(
            "blocked by project rule `{}`: {} ({}). {undone} Do it another way that keeps the rule.",
            violation.rule_id, violation.rule_text, violation.reason
        ));
        blocked.outcome.duration_ms = output.outcome.duration_ms;
        blocked
    }

    /// The store failed: with rules on files the action may not run; else a warning.
    async fn store_failed(&mut self, error: crate::Error) -> Result<(), String> {
        tracing::warn!(%error, "checkpoint store");
        if self.config.rules.checks_files() {
            return Err(format!(
                "not run: cox cannot record what it would change ({error}), so the project's \
                 rules on files cannot be checked"
            ));
        }
        self.warn(format!("{error}; this action cannot be undone"))
            .await;
        Ok(())
    }

    /// After the action: what it changed, checked against the rules (and rolled back when it
    /// breaks one).
    pub(super) async fn after_action(
        &mut self,
        held: Held,
        call_id: Option<&CallId>,
        action: String,
    ) -> Effects {
        let rules = Some(Arc::clone(&self.config.rules));
        self.look_after(held, call_id, action, rules).await
    }

    /// After a check: what it changed is checkpointed (and can be undone); rules do not judge
    /// the person's own command.
    pub(super) async fn after_check(&mut self, held: Held, command: &str) {
        self.look_after(held, None, format!("check: {command}"), None)
            .await;
    }

    async fn look_after(
        &mut self,
        held: Held,
        call_id: Option<&CallId>,
        action: String,
        rules: Option<Arc<crate::rules::Rules>>,
    ) -> Effects {
        let Held(mut held) = held;
        let (root, cwd) = (crate::repo_root(&self.config.cwd), self.config.cwd.clone());
        let call = call_id.cloned();
        let open = Arc::clone(&self.checkpoints.open);
        let found = Checkpoints::with(open, &mut held, move |store| {
            let checkpoint = store.record(CheckpointKind::Action, call.as_ref(), &action)?;
            Ok(judge(store, checkpoint, rules.as_deref(), &root, &cwd))
        })
        .await;
        match found {
            Ok(effects) => {
                if let Some(checkpoint) = &effects.checkpoint {
                    self.announce_checkpoint(checkpoint).await;
                }
                if let Some(Ok(rollback)) = &effects.rollback {
                    self.announce_checkpoint(rollback).await;
                }
                effects
            }
            Err(error) => {
                let message = format!("{error}; what this action changed is not recorded");
                self.warn(message).await;
                Effects {
                    checkpoint: None,
                    broken: None,
                    rollback: None,
                }
            }
        }
    }

    /// A checkpoint's journal line and events (a failed journal write is reported by `record`).
    pub(super) async fn announce_checkpoint(&mut self, checkpoint: &Checkpoint) {
        let _ = self
            .record(&checkpoint_record(checkpoint, &self.config.cwd))
            .await;
        for event in checkpoint_events(checkpoint, &self.config.cwd) {
            self.emitter.emit(event).await;
        }
    }

    /// `Op::Undo` while idle: undone, told, and noted for the model.
    pub(super) async fn undo_now(&mut self, to: Option<u32>) {
        let target = to.map_or(Target::Last, Target::To);
        match self.checkpoints.undo(target, self.config.cwd.clone()).await {
            Ok((outside, undone)) => {
                if let Some(outside) = outside {
                    self.announce_checkpoint(&outside).await;
                }
                if !undone.changes.is_empty() {
                    self.announce_checkpoint(&undone).await;
                    let _ = self.note(undo_note(&undone, &self.config.cwd)).await;
                }
            }
            Err(error) => self.warn(error.to_string()).await,
        }
    }
}

/// What the rules say of a checkpoint's changes, and the rollback when they break one.
fn judge(
    store: &mut Store,
    checkpoint: Option<Checkpoint>,
    rules: Option<&crate::rules::Rules>,
    root: &std::path::Path,
    cwd: &std::path::Path,
) -> Effects {
    let broken = match (&checkpoint, rules) {
        (Some(checkpoint), Some(rules)) if rules.checks_files() => {
            rules.check_changes(&store.changed_files(checkpoint, root))
        }
        _ => None,
    };
    let rollback = match (&broken, &checkpoint) {
        (Some(_), Some(checkpoint)) => Some(
            store
                .undo(
                    &Target::Checkpoints(vec![checkpoint.id]),
                    CheckpointKind::Rollback,
                    cwd,
                )
                .map(|(_, rollback)| rollback)
                .map_err(|e| e.to_string()),
        ),
        _ => None,
    };
    Effects {
        checkpoint,
        broken,
        rollback,
    }
}

/// `Op::Undo` while a task is paused (run beside the op loop, which must stay responsive): the
/// events at once; the journal lines and the model's note when the task passes the barrier.
pub(super) async fn undo_while_paused(
    checkpoints: Checkpoints,
    gate: Arc<super::gate::Gate>,
    mut announcer: super::Emitter,
    cwd: PathBuf,
    to: Option<u32>,
) {
    let target = to.map_or(Target::Last, Target::To);
    match checkpoints.undo(target, cwd.clone()).await {
        Ok((outside, undone)) => {
            for checkpoint in outside.iter().chain(Some(&undone)) {
                if checkpoint.changes.is_empty() {
                    continue;
                }
                gate.journal_later(checkpoint_record(checkpoint, &cwd));
                for event in checkpoint_events(checkpoint, &cwd) {
                    announcer.emit(event).await;
                }
            }
            if !undone.changes.is_empty() {
                gate.note(undo_note(&undone, &cwd));
            }
        }
        Err(error) => {
            announcer
                .emit(Event::Warning {
                    message: error.to_string(),
                })
                .await;
        }
    }
}

fn checkpoint_record(checkpoint: &Checkpoint, cwd: &std::path::Path) -> Record {
    Record::Checkpoint {
        id: checkpoint.id,
        kind: checkpoint.kind,
        call_id: checkpoint.call_id.clone(),
        files: checkpoint.files(cwd).into_iter().map(|f| f.path).collect(),
        undoes: checkpoint.undoes.clone(),
    }
}

/// `checkpoint`, and `undone` after it for an undo or a rollback.
fn checkpoint_events(checkpoint: &Checkpoint, cwd: &std::path::Path) -> Vec<Event> {
    let files = checkpoint.files(cwd);
    let mut events = vec![Event::Checkpoint {
        id: checkpoint.id,
        kind: checkpoint.kind,
        call_id: checkpoint.call_id.clone(),
        action: checkpoint.action.clone(),
        files: files.clone(),
    }];
    if matches!(
        checkpoint.kind,
        CheckpointKind::Undo | CheckpointKind::Rollback
    ) {
        events.push(Event::Undone {
            id: checkpoint.id,
            undid: checkpoint.undoes.clone(),
            files,
        });
    }
    events
}
