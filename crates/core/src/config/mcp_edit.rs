//! `cox mcp add | remove`: edits `[mcp_servers.NAME]` in `config.toml` in place, keeping the
//! person's comments, order and other settings (`toml_edit`). The result is checked as a whole
//! config before it is written; it is written whole (a sibling renamed over, `0600`: entries can
//! hold header values), so a failed edit leaves the file as it was.

use std::path::Path;

use crate::Error;
use crate::error::McpEditProblem;

fn edit(
    home: &Path,
    change: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<(), McpEditProblem>,
) -> Result<(), Error> {
    let path = home.join("config.toml");
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::Io(e)),
    };
    let mut document: toml_edit::DocumentMut =
        text.parse()
            .map_err(|source: toml_edit::TomlError| Error::McpEdit {
                path: path.clone(),
                problem: McpEditProblem::NotToml(source.to_string()),
            })?;
    change(&mut document).map_err(|problem| Error::McpEdit {
        path: path.clone(),
        problem,
    })?;
    let updated = document.to_string();
    // The whole file must still be a config cox reads.
    let file: super::ConfigFile =
        toml::from_str(&updated).map_err(|source| Error::ConfigInvalid {
            path: path.clone(),
            source: Box::new(source),
        })?;
    super::mcp_servers(&file.mcp_servers)?;
    crate::auth::write_private(&path, updated.as_bytes()).map_err(Error::Io)
}

/// Adds the server `name`; an existing entry of that name is an error (remove it first).
pub fn add(home: &Path, name: &str, server: &cox_mcp::ServerConfig) -> Result<(), Error> {
    server.check(name)?;
    let entry = toml::to_string(server).map_err(|e| Error::McpEdit {
        path: home.join("config.toml"),
        problem: McpEditProblem::NotToml(e.to_string()),
    })?;
    edit(home, |document| {
        let entry: toml_edit::DocumentMut = entry
            .parse()
            .map_err(|e: toml_edit::TomlError| McpEditProblem::NotToml(e.to_string()))?;
        let servers = document
            .entry("mcp_servers")
            .or_insert_with(|| {
                let mut table = toml_edit::Table::new();
                table.set_implicit(true);
                toml_edit::Item::Table(table)
            })
            .as_table_mut()
            .ok_or(McpEditProblem::NotATable)?;
        if servers.contains_key(name) {
            return Err(McpEditProblem::Exists(name.to_string()));
        }
        servers.insert(name, toml_edit::Item::Table(entry.as_table().clone()));
        Ok(())
    })
}

/// Removes the server `name`; one that is not there is an error naming the ones that are.
pub fn remove(home: &Path, name: &str) -> Result<(), Error> {
    edit(home, |document| {
        let servers = document
            .get_mut("mcp_servers")
            .and_then(toml_edit::Item::as_table_mut);
        let known: Vec<String> = servers
            .as_ref()
            .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default();
        let removed = servers.is_some_and(|servers| servers.remove(name).is_some());
        if removed {
            let empty = document
                .get("mcp_servers")
                .and_then(toml_edit::Item::as_table)
                .is_some_and(toml_edit::Table::is_empty);
            if empty {
                document.remove("mcp_servers");
            }
            return Ok(());
        }
        Err(McpEditProblem::Missing {
            name: name.to_string(),
            known: if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_remove_keep_the_rest_of_the_file() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("config.toml");
        fs_err::write(
            &path,
            "# my settings\nmodel = \"gpt-5.3-codex\" # the usual\n",
        )
        .unwrap();
        let server = cox_mcp::ServerConfig {
            command: Some("npx".into()),
            args: vec![
                "-y".into(),
                "@modelcontextprotocol/server-filesystem".into(),
            ],
            ..Default::default()
        };
        add(home.path(), "fs", &server).unwrap();
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# my settings\nmodel = \"gpt-5.3-codex\" # the usual\n"),
            "{text}"
        );
        assert!(
            text.contains("[mcp_servers.fs]\ncommand = \"npx\""),
            "{text}"
        );
        let again = add(home.path(), "fs", &server).unwrap_err().to_string();
        assert!(again.contains("already"), "{again}");
        let missing = remove(home.path(), "nope").unwrap_err().to_string();
        assert!(missing.contains("fs"), "{missing}");
        remove(home.path(), "fs").unwrap();
        assert_eq!(
            fs_err::read_to_string(&path).unwrap(),
            "# my settings\nmodel = \"gpt-5.3-codex\" # the usual\n"
        );
    }

    #[test]
    fn a_bad_entry_is_refused_and_nothing_is_written() {
        let home = tempfile::tempdir().unwrap();
        let server = cox_mcp::ServerConfig {
            url: Some("ftp://example".into()),
            ..Default::default()
        };
        assert!(add(home.path(), "x", &server).is_err());
        assert!(!home.path().join("config.toml").exists());
    }
}
