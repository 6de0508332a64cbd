//! Approvals in the turn loop: [`cox_sandbox::approval::decide`] says allow, ask or deny; asking
//! emits `approval_requested` and waits for `Op::Approve`. Headless (no one to ask), a request that
//! needs approval is refused and the model is told why. "Yes for this project" grants are kept in
//! `$COX_HOME/projects.toml` (never in the workspace, where a command could write one), as
//! command prefixes.

use cox_protocol::{ApprovalDecision, CallId, Event, ToolCall};
use cox_sandbox::approval::{Decision, Grant, Request, decide};
use cox_tools::Touches;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{GrantStore, Reply, Session};

/// The project's saved grants (an unreadable store grants nothing).
pub(super) fn load(store: Option<&GrantStore>) -> Vec<Grant> {
    let Some(store) = store else {
        return Vec::new();
    };
    store
        .projects
        .get(&store.root)
        .map(|project| {
            project
                .grants
                .into_iter()
                .map(|prefix| Grant { prefix })
                .collect()
        })
        .unwrap_or_default()
}

/// The decision on keys cox cannot read as a command: ask, or refuse when no one may be asked.
fn decide_unclear(unclear: &str, policy: cox_sandbox::approval::Policy) -> Decision {
    let reason = format!("cox cannot tell which command these keys run ({unclear})");
    match policy {
        cox_sandbox::approval::Policy::Never => Decision::Deny {
            reason: format!("{reason}, and the approval policy is `never`"),
        },
        _ => Decision::Ask { reason },
    }
}

fn save(store: &GrantStore, grants: &[Grant]) -> Result<(), crate::Error> {
    store.projects.update(&store.root, |project| {
        for grant in grants {
            if !project.grants.contains(&grant.prefix) {
                project.grants.push(grant.prefix.clone());
            }
        }
    })
}

/// MCP tools approved for the project.
fn project_mcp_tools(store: Option<&GrantStore>) -> Vec<String> {
    store
        .and_then(|store| store.projects.get(&store.root).ok())
        .map(|project| project.mcp_tools)
        .unwrap_or_default()
}

/// The result a call the person declined gets.
fn declined(reason: Option<String>) -> String {
    match reason {
        Some(reason) => format!("not run: the person declined: {reason}"),
        None => "not run: the person declined".to_string(),
    }
}

impl Session {
    /// Asks the person about `call` (`approval_requested`) and waits for their decision; headless,
    /// or when the wait ends without one, the refusal the model gets.
    async fn ask(
        &mut self,
        call: &ToolCall,
        action: String,
        reason: String,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Result<ApprovalDecision, String> {
        if !self.config.options.interactive {
            return Err(format!(
                "not run: {reason}; this run is headless, so no one can approve it. Find a way \
                 that needs no approval, or say in your answer what the person should run."
            ));
        }
        self.emitter
            .emit(Event::ApprovalRequested {
                call_id: call.call_id.clone(),
                action,
                reason,
            })
            .await;
        loop {
            tokio::select! {
                reply = answers.recv() => match reply {
                    Some((id, Reply::Approval(decision))) if id == call.call_id => return Ok(decision),
                    Some(_) => continue,
                    None => return Err("not run: no one answered the approval request".into()),
                },
                _ = cancel.cancelled() => return Err("not run: interrupted while waiting for approval".into()),
            }
        }
    }

    /// An MCP tool runs without asking only when the person trusted its server or the tool, or
    /// approved it for the session or the project. Otherwise it is asked about — under every
    /// policy but `never`, since cox cannot see what the server will do — and refused headless.
    async fn approve_external(
        &mut self,
        call: &ToolCall,
        external: &cox_tools::External,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Result<bool, String> {
        if external.trusted
            || self.mcp_granted.contains(&external.name)
            || project_mcp_tools(self.config.grants.as_ref()).contains(&external.name)
        {
            return Ok(false);
        }
        let reason = format!(
            "tools of MCP server `{}` run only with approval (mark the server `trusted = true` or \
             list `{}` in its `trusted_tools` in config.toml to allow it)",
            external.server, external.tool
        );
        if self.config.approval == cox_sandbox::approval::Policy::Never {
            return Err(format!(
                "not run: {reason}, and the approval policy is `never`, so no one can approve it"
            ));
        }
        let action = format!("call {}.{}", external.server, external.tool);
        let decision = self.ask(call, action, reason, cancel, answers).await?;
        match decision {
            ApprovalDecision::Once => {}
            ApprovalDecision::Session => {
                self.mcp_granted.insert(external.name.clone());
            }
            ApprovalDecision::Project => {
                self.mcp_granted.insert(external.name.clone());
                if let Some(store) = &self.config.grants {
                    let saved = store.projects.update(&store.root, |project| {
                        if !project.mcp_tools.contains(&external.name) {
                            project.mcp_tools.push(external.name.clone());
                        }
                    });
                    if let Err(e) = saved {
                        self.warn(format!(
                            "could not save the approval in {}: {e}",
                            store.projects.path().display()
                        ))
                        .await;
                    }
                }
            }
            ApprovalDecision::Deny { reason } => return Err(declined(reason)),
        }
        Ok(false)
    }

    /// Whether `call` may run: `Ok(escalated)` (escalated: outside the sandbox), or the refusal
    /// the model gets as the result.
    pub(super) async fn approve(
        &mut self,
        call: &ToolCall,
        touches: &Touches,
        opaque: Option<String>,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Result<bool, String> {
        if let Some(external) = &touches.external {
            return self.approve_external(call, external, cancel, answers).await;
        }
        let escalate = touches.escalate;
        let (request, action) = match (&touches.command, touches.edits.is_empty()) {
            (Some(line), true) => match cox_sandbox::command::split(line) {
                Ok(commands) => (Request::Command { commands, escalate }, line.clone()),
                Err(e) => return Err(format!("not run: {e}")),
            },
            (_, false) => {
                if self.edits_granted {
                    return Ok(false);
                }
                let files: Vec<&str> = touches.edits.iter().map(|(p, _)| p.as_str()).collect();
                (Request::Edit, format!("edit {}", files.join(", ")))
            }
            // Only keys cox cannot read (history, completion): the same question as below.
            (None, true) if touches.unclear.is_some() => (
                Request::Command {
                    commands: Vec::new(),
                    escalate,
                },
                String::new(),
            ),
            (None, true) => return Ok(false),
        };
        let mut decision = decide(&request, self.config.approval, &self.grants);
        // Keys that edit the line in ways cox cannot follow: where the policy would judge the
        // command, the person judges the keys instead.
        if let (Decision::Allow, Some(unclear)) = (&decision, &touches.unclear)
            && (escalate || self.config.approval == cox_sandbox::approval::Policy::Untrusted)
        {
            decision = decide_unclear(unclear, self.config.approval);
        }
        // A command the rules cannot judge before it runs: the person judges it (fail closed).
        if let (Decision::Allow, Some(reason)) = (&decision, opaque) {
            decision = match self.config.approval {
                cox_sandbox::approval::Policy::Never => Decision::Deny {
                    reason: format!("{reason}; the approval policy is `never`, so it does not run"),
                },
                _ => Decision::Ask { reason },
            };
        }
        let action = match &touches.unclear {
            Some(_) if action.is_empty() => "keys typed into a terminal session".to_string(),
            Some(_) => format!("keys typed into a terminal session, reading as: {action}"),
            None => action,
        };
        let reason = match decision {
            Decision::Allow => return Ok(escalate),
            Decision::Deny { reason } => return Err(format!("not run: {reason}")),
            Decision::Ask { reason } => reason,
        };
        let decision = self.ask(call, action, reason, cancel, answers).await?;
        let new_grants: Vec<Grant> = match &request {
            Request::Command { commands, .. } => commands.iter().map(Grant::for_command).collect(),
            Request::Edit => Vec::new(),
        };
        match decision {
            ApprovalDecision::Once => {}
            ApprovalDecision::Session | ApprovalDecision::Project => {
                if matches!(request, Request::Edit) {
                    self.edits_granted = true;
                }
                self.grants.extend(new_grants);
                if decision == ApprovalDecision::Project
                    && let Some(store) = &self.config.grants
                    && let Err(e) = save(store, &self.grants)
                {
                    self.warn(format!(
                        "could not save the approval in {}: {e}",
                        store.projects.path().display()
                    ))
                    .await;
                }
            }
            ApprovalDecision::Deny { reason } => return Err(declined(reason)),
        }
        Ok(escalate)
    }
}
