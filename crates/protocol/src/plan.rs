//! The plan document (`cox plan` output, `cox run --plan` input), as in `docs/contracts.md`.
//! Fields cox does not know are kept, so a plan survives a round trip through cox unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub goal: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    pub steps: Vec<PlanStepDoc>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStepDoc {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StepState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Written by a run: the directives the person gave while this step ran, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directives: Vec<String>,
    /// Written by a run: how the step's outcome differs from its title after a directive (the
    /// model's one-line account), so a step marked done is not read as done as titled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    InProgress,
    Done,
    Skipped,
    Failed,
}

impl From<StepState> for crate::StepStatus {
    /// A plan document's step state as a `plan_updated` status (done is completed).
    fn from(state: StepState) -> Self {
        match state {
            StepState::Pending => crate::StepStatus::Pending,
            StepState::InProgress => crate::StepStatus::InProgress,
            StepState::Done => crate::StepStatus::Completed,
            StepState::Skipped => crate::StepStatus::Skipped,
            StepState::Failed => crate::StepStatus::Failed,
        }
    }
}
