//! Reading and checking plan documents. Every problem names where it is: the line and column of a
//! JSON error, or the field (`steps[2].depends_on`) of a semantic one, so a person or a model can
//! fix it in one go.

use std::collections::{HashMap, HashSet};

use cox_protocol::{Plan, StepState};
use serde_json::{Value, json};

/// Why a plan document is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

fn field(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses and checks a plan document.
pub fn parse(text: &str) -> Result<Plan, PlanError> {
    let plan: Plan = serde_json::from_str(text).map_err(|e| PlanError::Syntax {
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    })?;
    check(&plan)?;
    Ok(plan)
}

/// The checks beyond the shape: a goal, steps with unique ids and titles, dependencies that name
/// earlier-defined steps and form no cycle.
pub fn check(plan: &Plan) -> Result<(), PlanError> {
    if plan.goal.trim().is_empty() {
        return Err(field("goal", "is empty; say what the plan achieves"));
    }
    if plan.steps.is_empty() {
        return Err(field("steps", "is empty; a plan needs at least one step"));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (n, step) in plan.steps.iter().enumerate() {
        if step.id.trim().is_empty() {
            return Err(field(format!("steps[{n}].id"), "is empty"));
        }
        if step.title.trim().is_empty() {
            return Err(field(format!("steps[{n}].title"), "is empty"));
        }
        if let Some(first) = seen.insert(step.id.as_str(), n) {
            return Err(field(
                format!("steps[{n}].id"),
                format!(
                    "`{}` repeats steps[{first}].id; step ids must be unique",
                    step.id
                ),
            ));
        }
    }
    for (n, step) in plan.steps.iter().enumerate() {
        for dep in &step.depends_on {
            if !seen.contains_key(dep.as_str()) {
                return Err(field(
                    format!("steps[{n}].depends_on"),
                    format!("names `{dep}`, which is not a step id"),
                ));
            }
        }
    }
    // A dependency cycle would leave steps that can never start.
    let mut done: HashSet<&str> = HashSet::new();
    loop {
        let ready: Vec<&str> = plan
            .steps
            .iter()
            .filter(|s| !done.contains(s.id.as_str()))
            .filter(|s| s.depends_on.iter().all(|d| done.contains(d.as_str())))
            .map(|s| s.id.as_str())
            .collect();
        if ready.is_empty() {
            break;
        }
        done.extend(ready);
    }
    if let Some((n, step)) = plan
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| !done.contains(s.id.as_str()))
    {
        return Err(field(
            format!("steps[{n}].depends_on"),
            format!("step `{}` is part of a dependency cycle", step.id),
        ));
    }
    Ok(())
}

/// The plan as pinned in every request of a run: goal, constraints, every step with its status, and
/// the current step in full.
pub fn render_for_run(plan: &Plan, current: &str) -> String {
    let mut out = format!("Goal: {}\n", plan.goal);
    if !plan.constraints.is_empty() {
        out.push_str("Constraints (never break them):\n");
        for constraint in &plan.constraints {
            out.push_str(&format!("- {constraint}\n"));
        }
    }
    if !plan.context.is_empty() {
        out.push_str(&format!("Context: {}\n", plan.context.join(", ")));
    }
    out.push_str("Steps:\n");
    for step in &plan.steps {
        let status = match step.status.unwrap_or(StepState::Pending) {
            StepState::Pending => "pending",
            StepState::InProgress => "in progress",
            StepState::Done => "done",
            StepState::Skipped => "skipped",
            StepState::Failed => "failed",
        };
        let marker = if step.id == current {
            "  ← current"
        } else {
            ""
        };
        out.push_str(&format!(
            "- {} {} ({status}){marker}\n",
            step.id, step.title
        ));
    }
    if let Some(step) = plan.steps.iter().find(|s| s.id == current) {
        out.push_str(&format!("Current step {}: {}\n", step.id, step.title));
        if !step.files.is_empty() {
            out.push_str(&format!("Files: {}\n", step.files.join(", ")));
        }
        if !step.targets.is_empty() {
            out.push_str(&format!("Targets: {}\n", step.targets.join(", ")));
        }
        if let Some(details) = &step.details {
            out.push_str(&format!("Details: {details}\n"));
        }
    }
    out
}

/// The plan document's JSON schema, for providers with structured output.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "version": {"type": "integer"},
            "goal": {"type": "string"},
            "constraints": {"type": "array", "items": {"type": "string"}},
            "context": {"type": "array", "items": {"type": "string"}},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "files": {"type": "array", "items": {"type": "string"}},
                        "targets": {"type": "array", "items": {"type": "string"}},
                        "details": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "in_progress", "done", "skipped", "failed"]},
                        "depends_on": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["id", "title"]
                }
            }
        },
        "required": ["goal", "steps"]
    })
}

/// Takes the plan out of a model's answer: the answer itself, or the first `{` to the last `}`
/// when the model wrapped it in prose or a code fence.
pub fn extract(answer: &str) -> &str {
    let trimmed = answer.trim();
    if trimmed.starts_with('{') {
        return trimmed;
    }
    match (trimmed.find('{'), trimmed.rfind('}')) {
        (Some(start), Some(end)) if start < end => &trimmed[start..=end],
        _ => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "version": 1,
  "goal": "Migrate src/routes to async/await",
  "constraints": ["Keep public function names"],
  "owner": "team-a",
  "steps": [
    {"id": "S1", "title": "Convert getUser", "files": ["src/routes/users.js"], "status": "pending", "risk": "low"},
    {"id": "S2", "title": "Convert listUsers", "depends_on": ["S1"]}
  ]
}"#;

    #[test]
    fn a_good_plan_round_trips_with_unknown_fields() {
        let plan = parse(GOOD).unwrap();
        assert_eq!(plan.steps.len(), 2);
        let again: Value = serde_json::to_value(&plan).unwrap();
        assert_eq!(again["owner"], "team-a");
        assert_eq!(again["steps"][0]["risk"], "low");
    }

    #[test]
    fn errors_name_line_column_or_field() {
        let bad_json =
            "{\n  \"goal\": \"x\",\n  \"steps\": [\n    {\"id\": \"S1\" \"title\": \"t\"}\n  ]\n}";
        assert_eq!(
            parse(bad_json).unwrap_err().to_string(),
            "line 4, column 17: expected `,` or `}`"
        );
        let missing = r#"{"goal": "x"}"#;
        assert_eq!(
            parse(missing).unwrap_err().to_string(),
            "line 1, column 13: missing field `steps`"
        );
        let dup =
            r#"{"goal": "x", "steps": [{"id": "S1", "title": "a"}, {"id": "S1", "title": "b"}]}"#;
        assert_eq!(
            parse(dup).unwrap_err().to_string(),
            "steps[1].id: `S1` repeats steps[0].id; step ids must be unique"
        );
        let unknown =
            r#"{"goal": "x", "steps": [{"id": "S1", "title": "a", "depends_on": ["S9"]}]}"#;
        assert_eq!(
            parse(unknown).unwrap_err().to_string(),
            "steps[0].depends_on: names `S9`, which is not a step id"
        );
        let cycle = r#"{"goal": "x", "steps": [{"id": "A", "title": "a", "depends_on": ["B"]}, {"id": "B", "title": "b", "depends_on": ["A"]}]}"#;
        assert!(
            parse(cycle)
                .unwrap_err()
                .to_string()
                .contains("dependency cycle")
        );
        let status = r#"{"goal": "x", "steps": [{"id": "A", "title": "a", "status": "finished"}]}"#;
        assert!(
            parse(status)
                .unwrap_err()
                .to_string()
                .contains("unknown variant `finished`")
        );
        assert_eq!(
            parse(r#"{"goal": "x", "steps": []}"#)
                .unwrap_err()
                .to_string(),
            "steps: is empty; a plan needs at least one step"
        );
    }

    #[test]
    fn extracts_a_plan_from_prose() {
        assert_eq!(
            extract("Here it is:\n```json\n{\"a\": 1}\n```"),
            "{\"a\": 1}"
        );
        assert_eq!(extract(" {\"a\": 1} "), "{\"a\": 1}");
    }
}
