//! `mcp_search_tools`: offered instead of the MCP tools' schemas when they pass the budget.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use cox_protocol::{Action, ToolKind, ToolSpec};
use cox_tools::{BoxFuture, Tool, ToolContext, ToolOutput, Touches};
use serde_json::Value;

/// The search tool offered instead of deferred tools' schemas.
pub const SEARCH_TOOL: &str = "mcp_search_tools";
/// Tools one search returns at most.
const SEARCH_LIMIT: usize = 8;

/// `mcp_search_tools`: finds deferred MCP tools by words of their name or description and
/// offers the ones found from the next request on.
pub(super) struct Search {
    pub(super) index: Vec<(String, String, Value)>,
    pub(super) loaded: Arc<Mutex<HashSet<String>>>,
    pub(super) tokens: usize,
}

#[derive(serde::Deserialize)]
struct SearchArgs {
    query: String,
}

impl Tool for Search {
    fn name(&self) -> &str {
        SEARCH_TOOL
    }

    fn spec(&self) -> ToolSpec {
        let servers: HashSet<&str> = self
            .index
            .iter()
            .filter_map(|(name, _, _)| name.split("__").next())
            .collect();
        let mut servers: Vec<&str> = servers.into_iter().collect();
        servers.sort_unstable();
        ToolSpec {
            name: SEARCH_TOOL.to_string(),
            description: format!(
                "Find tools of the MCP servers {} ({} tools, whose schemas — about {} tokens — \
                 are not sent with every request). Give words of what you need; the tools found \
                 are shown with their schemas and can be called from your next step on.",
                servers.join(", "),
                self.index.len(),
                self.tokens
            ),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"query": {"type": "string", "description": "Words of the tool's name or purpose"}},
                "required": ["query"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Read
    }

    fn describe(&self, arguments: &Value, _ctx: &ToolContext) -> (Vec<Action>, Touches) {
        let query = arguments
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or_default();
        (
            vec![Action::Search {
                pattern: query.to_string(),
                path: "MCP tools".to_string(),
            }],
            Touches::default(),
        )
    }

    fn call<'a>(&'a self, arguments: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let args: SearchArgs = match cox_tools::parse_args(SEARCH_TOOL, arguments) {
                Ok(args) => args,
                Err(output) => return output,
            };
            let items: Vec<(&str, &str)> = self
                .index
                .iter()
                .map(|(n, d, _)| (n.as_str(), d.as_str()))
                .collect();
            let found = cox_mcp::offer::search(&items, &args.query, SEARCH_LIMIT);
            if found.is_empty() {
                return ToolOutput::ok(format!(
                    "no MCP tool matches every word of \"{}\"; try fewer or other words",
                    args.query
                ));
            }
            let mut text = String::new();
            if let Ok(mut loaded) = self.loaded.lock() {
                for name in &found {
                    loaded.insert(name.to_string());
                }
            }
            for name in found {
                if let Some((_, description, schema)) =
                    self.index.iter().find(|(n, _, _)| n == name)
                {
                    text.push_str(&format!("{name}: {description}\nparameters: {schema}\n\n"));
                }
            }
            text.push_str("These tools are offered from your next step on.");
            ToolOutput::ok(text)
        })
    }
}
