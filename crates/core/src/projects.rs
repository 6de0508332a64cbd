//! What the person decided about a project, kept in `$COX_HOME/projects.toml` — outside every
//! writable root, where no command, file tool or cloned repository can reach — keyed by the
//! project's canonical root (the nearest ancestor with `.git`, else the working directory):
//!
//! - whether the project is **trusted** (`cox trust`): only then do its `.cox/` files configure
//!   cox;
//! - the text of `.cox/rules.toml` the person **confirmed** when trusting: a later change to the
//!   file (by a command, a `git pull`, anyone) is not obeyed until `cox trust` is run again; the
//!   confirmed text stays in force meanwhile, and each session says so;
//! - the **grants** of "yes for this project" answers.
//!
//! ```toml
//! [[project]]
//! path = "/home/me/src/app"
//! trusted = true
//! rules = "[[rules]]\nid = \"no-real-db\"\n…"
//! grants = [["git", "push"]]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The file, under `$COX_HOME`.
pub const FILE: &str = "projects.toml";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectsFile {
    #[serde(default)]
    project: Vec<Project>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub path: String,
    #[serde(default)]
    pub trusted: bool,
    /// `.cox/rules.toml` as confirmed (`None`: there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Vec<String>>,
    /// MCP tools approved for the project, by the names the model calls (`server__tool`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_tools: Vec<String>,
    /// `.cox/mcp.toml` as confirmed (`None`: there was none): the project's own MCP servers,
    /// started only while the file is as the person confirmed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<String>,
}

/// The store of one cox home.
#[derive(Debug, Clone)]
pub struct Projects {
    path: PathBuf,
}

/// The root a project is known by: the nearest ancestor of `cwd` with `.git`, else `cwd`,
/// canonical.
pub fn root_of(cwd: &Path) -> PathBuf {
    let root = crate::repo_root(cwd);
    fs_err::canonicalize(&root).unwrap_or(root)
}

impl Projects {
    pub fn new(home: &Path) -> Projects {
        Projects {
            path: home.join(FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<ProjectsFile, Error> {
        let text = match fs_err::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ProjectsFile::default());
            }
            Err(source) => return Err(Error::Io(source)),
        };
        toml::from_str(&text).map_err(|source| Error::ProjectsToml {
            path: self.path.clone(),
            source: Box::new(source),
        })
    }

    /// What is known of the project at `root` (nothing: untrusted, no grants).
    pub fn get(&self, root: &Path) -> Result<Project, Error> {
        let key = root.display().to_string();
        Ok(self
            .read()?
            .project
            .into_iter()
            .find(|p| p.path == key)
            .unwrap_or(Project {
                path: key,
                ..Project::default()
            }))
    }

    /// Changes the project's entry (made if missing; dropped when it holds nothing) and writes
    /// the file whole, private to the person (`auth::write_private`).
    pub fn update(&self, root: &Path, change: impl FnOnce(&mut Project)) -> Result<(), Error> {
        let mut file = self.read()?;
        let key = root.display().to_string();
        let at = match file.project.iter().position(|p| p.path == key) {
            Some(at) => at,
            None => {
                file.project.push(Project {
                    path: key,
                    ..Project::default()
                });
                file.project.len() - 1
            }
        };
        change(&mut file.project[at]);
        let entry = &file.project[at];
        if !entry.trusted && entry.grants.is_empty() {
            file.project.remove(at);
        }
        let text = toml::to_string(&file).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        crate::auth::write_private(&self.path, text.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_empty_ones_go() {
        let home = tempfile::tempdir().unwrap();
        let projects = Projects::new(home.path());
        let root = Path::new("/work/app");
        assert!(!projects.get(root).unwrap().trusted);
        projects
            .update(root, |p| {
                p.trusted = true;
                p.rules = Some("[[rules]]\n".into());
            })
            .unwrap();
        projects
            .update(root, |p| p.grants.push(vec!["git".into(), "push".into()]))
            .unwrap();
        let got = projects.get(root).unwrap();
        assert!(got.trusted);
        assert_eq!(got.rules.as_deref(), Some("[[rules]]\n"));
        assert_eq!(got.grants, [["git", "push"]]);
        assert!(!projects.get(Path::new("/work/other")).unwrap().trusted);
        projects
            .update(root, |p| {
                p.trusted = false;
                p.grants.clear();
            })
            .unwrap();
        let text = fs_err::read_to_string(projects.path()).unwrap();
        assert!(!text.contains("/work/app"), "{text}");
    }
}
