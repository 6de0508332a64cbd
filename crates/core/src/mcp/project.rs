//! A project's own MCP servers (`.cox/mcp.toml`), used only as `cox trust` confirmed them.

use crate::config::McpServer;

/// `.cox/mcp.toml`: the project's own servers, `[mcp_servers.NAME]` tables as in config.toml.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    mcp_servers: std::collections::BTreeMap<String, cox_mcp::ServerConfig>,
}

/// Where the project's servers file is, if it has one (at the repository root).
pub fn project_file(cwd: &std::path::Path) -> Option<std::path::PathBuf> {
    let path = crate::repo_root(cwd).join(".cox/mcp.toml");
    path.is_file().then_some(path)
}

/// Parses a project's servers file (what `cox trust` checks before it confirms one).
pub fn parse_project(text: &str, path: &std::path::Path) -> Result<Vec<McpServer>, crate::Error> {
    let file: ProjectFile =
        toml::from_str(text).map_err(|source| crate::Error::McpProjectFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    crate::config::mcp_servers(&file.mcp_servers)
}

/// The project's servers as the person confirmed them with `cox trust` (a repository cannot
/// start a program on cox's behalf by shipping a file): none in a project that is not trusted,
/// the confirmed ones when the file changed since — with a note saying so either way.
pub fn project_servers(
    cwd: &std::path::Path,
    project: &crate::projects::Project,
) -> Result<(Vec<McpServer>, Option<String>), crate::Error> {
    let path = project_file(cwd);
    let current = match &path {
        Some(path) => Some(fs_err::read_to_string(path)?),
        None => None,
    };
    let shown = path
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(".cox/mcp.toml"));
    if !project.trusted {
        let note = path.map(|p| {
            format!(
                "{} is not used: {} is not a trusted project; run `cox trust` there to confirm \
                 its MCP servers",
                p.display(),
                project.path
            )
        });
        return Ok((Vec::new(), note));
    }
    let note = (current != project.mcp_servers).then(|| {
        format!(
            "{} changed since you trusted {}; the MCP servers you confirmed are used until you \
             run `cox trust` again",
            shown.display(),
            project.path
        )
    });
    match &project.mcp_servers {
        Some(text) => Ok((parse_project(text, &shown)?, note)),
        None => Ok((Vec::new(), note)),
    }
}
