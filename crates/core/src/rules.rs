//! Project rules (`.cox/rules.toml` at the repository root): each rule's text is pinned in every
//! request, and the checks a rule carries block the offending action before it runs.
//!
//! ```toml
//! [[rule]]
//! id = "no-real-db"
//! text = "NEVER use the real database in tests; only in-memory mocks."
//! deny_command = ["psql *", "*DATABASE_URL=postgres*"]
//! deny_content = { paths = ["tests/**"], regex = "pg\\.connect|new Pool\\(" }
//! deny_write = ["migrations/**"]
//! deny_connect = ["tcp:5432", "unix:/var/run/postgresql/*"]
//! ```
//!
//! `deny_command` globs are matched against every simple command of a shell line (split by
//! `cox_sandbox::command`, so `ls && psql` is caught) and against the whole line; `deny_write` globs
//! against the paths an edit touches; `deny_content` against the lines an edit adds to files whose
//! path matches — before an action runs, by what it says it will do, and after, on what it really
//! changed (checkpoints: whichever tool did it, whole files, paths as the file system has them);
//! `deny_connect` endpoints are closed by the sandbox for every command. A line the shell
//! splitter cannot read is blocked when any rule checks commands; one whose commands cannot be
//! known before it runs needs the person's approval.

mod runs;

use std::path::{Path, PathBuf};

use crate::projects::Project;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::Error;

pub use runs::{NoScripts, Scripts};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    text: String,
    #[serde(default)]
    deny_command: Vec<String>,
    #[serde(default)]
    deny_content: Option<ContentSpec>,
    #[serde(default)]
    deny_write: Vec<String>,
    #[serde(default)]
    deny_connect: Vec<String>,
    /// MCP tools no call may use, as globs over the names the model calls (`github__*`,
    /// `fs__write_file`).
    #[serde(default)]
    deny_tool: Vec<String>,
}

/// A file an action actually changed, as checkpoints found it (see [`Rules::check_changes`]).
#[derive(Debug, Clone)]
pub struct ChangedFile {
    /// Relative to the repository root, as the file system names it (no `..`, no link).
    pub path: String,
    /// The whole file now (through a symbolic link); `None` when it was deleted or is a directory.
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentSpec {
    paths: Vec<String>,
    regex: String,
}

/// One rule, compiled.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub text: String,
    commands: Option<GlobSet>,
    content: Option<(GlobSet, regex::Regex)>,
    writes: Option<GlobSet>,
    tools: Option<GlobSet>,
    /// Endpoints no command may connect to (enforced by the sandbox).
    connect: Vec<Endpoint>,
    /// The globs as written, for [`Rules::guarded_prefixes`].
    write_patterns: Vec<String>,
    content_patterns: Vec<String>,
}

/// The project's rules.
#[derive(Debug, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// Why an action was blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule_id: String,
    pub rule_text: String,
    /// What matched, e.g. "command `psql -c …` matches `psql *`".
    pub reason: String,
}

/// An endpoint a rule closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(u16),
    /// A socket path, or a pattern whose directory is closed.
    Unix(PathBuf),
}

fn endpoint(value: &str) -> Option<Endpoint> {
    if let Some(port) = value.strip_prefix("tcp:") {
        return port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(Endpoint::Tcp);
    }
    let path = value.strip_prefix("unix:")?;
    path.starts_with('/')
        .then(|| Endpoint::Unix(PathBuf::from(path)))
}

/// What `deny_command` says of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandCheck {
    Clear,
    Denied(Violation),
    /// What it runs is only known when it runs (`reason` says why): it needs the person's
    /// approval, since the rule could not be checked.
    Opaque(Violation),
}

impl CommandCheck {
    pub fn denied(self) -> Option<Violation> {
        match self {
            CommandCheck::Denied(violation) => Some(violation),
            _ => None,
        }
    }
}

/// What an edit does to one file, for the content and write checks.
#[derive(Debug, Clone)]
pub struct FileEdit {
    /// Relative to the repository root where possible.
    pub path: String,
    pub added: String,
}

fn globs(patterns: &[String], file: &Path, field: &str) -> Result<Option<GlobSet>, Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|source| Error::RuleGlob {
            path: file.to_path_buf(),
            field: field.to_string(),
            pattern: pattern.clone(),
            source,
        })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|source| Error::RuleGlobSet {
            path: file.to_path_buf(),
            field: field.to_string(),
            source,
        })
}

impl Rules {
    /// The `.cox/rules.toml` in force for `cwd` (the repository root's, else the working
    /// directory's), by what the person decided about the project (`crate::projects`): none in an
    /// untrusted project; in a trusted one the text they confirmed, whatever the file says now.
    /// The second value is what the session says about it (ignored, or changed since trusted).
    /// A malformed file is an error naming line and field, never a rule silently ignored.
    pub fn load(cwd: &Path, project: &Project) -> Result<(Rules, Option<String>), Error> {
        let path = Rules::path(cwd);
        let current = match &path {
            Some(path) => Some(fs_err::read_to_string(path)?),
            None => None,
        };
        let shown = path
            .clone()
            .unwrap_or_else(|| PathBuf::from(".cox/rules.toml"));
        if !project.trusted {
            let note = path.map(|p| {
                format!(
                    "{} is not in force: {} is not a trusted project; run `cox trust` there to \
                     confirm its rules",
                    p.display(),
                    project.path
                )
            });
            return Ok((Rules::default(), note));
        }
        let note = (current != project.rules).then(|| {
            format!(
                "{} changed since you trusted {}; the rules you confirmed stay in force until \
                 you run `cox trust` again",
                shown.display(),
                project.path
            )
        });
        match &project.rules {
            Some(text) => Ok((Rules::parse(text, &shown)?, note)),
            None => Ok((Rules::default(), note)),
        }
    }

    /// Where the project's rules file is, if it has one.
    pub fn path(cwd: &Path) -> Option<PathBuf> {
        let root = crate::repo_root(cwd);
        [root.join(".cox/rules.toml"), cwd.join(".cox/rules.toml")]
            .into_iter()
            .find(|p| p.is_file())
    }

    pub fn parse(text: &str, path: &Path) -> Result<Rules, Error> {
        let file: RulesFile = toml::from_str(text).map_err(|source| Error::RulesToml {
            path: path.to_path_buf(),
            line: source
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
            source: Box::new(source),
        })?;
        let mut rules = Vec::new();
        for (n, spec) in file.rules.into_iter().enumerate() {
            let field = |name: &str| format!("rule[{n}] ({}).{name}", spec.id);
            if spec.id.trim().is_empty() || spec.text.trim().is_empty() {
                return Err(Error::RuleIncomplete {
                    path: path.to_path_buf(),
                    index: n,
                });
            }
            let content = match &spec.deny_content {
                Some(content) => {
                    let paths = globs(&content.paths, path, &field("deny_content.paths"))?
                        .unwrap_or_else(GlobSet::empty);
                    let regex =
                        regex::Regex::new(&content.regex).map_err(|source| Error::RuleRegex {
                            path: path.to_path_buf(),
                            field: field("deny_content.regex"),
                            source,
                        })?;
                    Some((paths, regex))
                }
                None => None,
            };
            let mut connect = Vec::new();
            for value in &spec.deny_connect {
                connect.push(endpoint(value).ok_or_else(|| Error::RuleEndpoint {
                    path: path.to_path_buf(),
                    field: field("deny_connect"),
                    value: value.clone(),
                })?);
            }
            rules.push(Rule {
                connect,
                write_patterns: spec.deny_write.clone(),
                content_patterns: spec
                    .deny_content
                    .as_ref()
                    .map(|c| c.paths.clone())
                    .unwrap_or_default(),
                commands: globs(&spec.deny_command, path, &field("deny_command"))?,
                writes: globs(&spec.deny_write, path, &field("deny_write"))?,
                tools: globs(&spec.deny_tool, path, &field("deny_tool"))?,
                content,
                id: spec.id,
                text: spec.text,
            });
        }
        Ok(Rules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules' texts, for the pinned block.
    pub fn pinned(&self) -> Option<String> {
        (!self.rules.is_empty()).then(|| {
            self.rules
                .iter()
                .map(|r| format!("- [{}] {}", r.id, r.text))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Checks an MCP tool (by the name the model calls) against `deny_tool`.
    pub fn check_tool(&self, name: &str) -> Option<Violation> {
        self.rules.iter().find_map(|rule| {
            let tools = rule.tools.as_ref()?;
            tools.is_match(name).then(|| Violation {
                rule_id: rule.id.clone(),
                rule_text: rule.text.clone(),
                reason: format!("MCP tool `{name}` is denied by `deny_tool`"),
            })
        })
    }

    /// A command that cannot be read for sure (`unclear` says why) is blocked by the first rule
    /// that checks commands.
    pub fn check_unclear(&self, unclear: &str) -> Option<Violation> {
        let rule = self.rules.iter().find(|r| r.commands.is_some())?;
        Some(Violation {
            rule_id: rule.id.clone(),
            rule_text: rule.text.clone(),
            reason: format!(
                "cox cannot tell which command this runs: {unclear}; type the whole line plainly, \
                 then Enter"
            ),
        })
    }

    /// Checks a shell command line against `deny_command`, on what it will really execute (see
    /// [`runs`]): each simple command as written, each program its wrappers run, the scripts it
    /// runs, and the whole line. A line the shell splitter cannot read is denied; what cannot be
    /// known before it runs is [`CommandCheck::Opaque`].
    pub fn check_command(&self, line: &str, cwd: &Path, scripts: &dyn Scripts) -> CommandCheck {
        let checking: Vec<&Rule> = self.rules.iter().filter(|r| r.commands.is_some()).collect();
        let Some(first) = checking.first() else {
            return CommandCheck::Clear;
        };
        let commands = match cox_sandbox::command::split(line) {
            Ok(commands) => commands,
            Err(e) => {
                return CommandCheck::Denied(Violation {
                    rule_id: first.id.clone(),
                    rule_text: first.text.clone(),
                    reason: format!("{e}, so the rules cannot be checked; write it more simply"),
                });
            }
        };
        let found = runs::runs(&commands, cwd, scripts);
        let mut candidates: Vec<String> = commands.iter().map(|c| c.text()).collect();
        candidates.extend(found.commands.iter().map(|words| words.join(" ")));
        candidates.push(line.to_string());
        for rule in &checking {
            let Some(globs) = &rule.commands else {
                continue;
            };
            if let Some(hit) = candidates.iter().find(|c| globs.is_match(c.as_str())) {
                return CommandCheck::Denied(Violation {
                    rule_id: rule.id.clone(),
                    rule_text: rule.text.clone(),
                    reason: format!("the command `{hit}` is denied"),
                });
            }
        }
        match found.opaque.first() {
            Some(why) => CommandCheck::Opaque(Violation {
                rule_id: first.id.clone(),
                rule_text: first.text.clone(),
                reason: why.clone(),
            }),
            None => CommandCheck::Clear,
        }
    }

    /// The endpoints the rules close: TCP ports and unix socket paths (the sandbox enforces
    /// them for every command).
    pub fn closed_endpoints(&self) -> (Vec<u16>, Vec<PathBuf>) {
        let (mut ports, mut sockets) = (Vec::new(), Vec::new());
        for endpoint in self.rules.iter().flat_map(|r| &r.connect) {
            match endpoint {
                Endpoint::Tcp(port) if !ports.contains(port) => ports.push(*port),
                Endpoint::Unix(path) if !sockets.contains(path) => sockets.push(path.clone()),
                _ => {}
            }
        }
        (ports, sockets)
    }

    /// Whether any rule checks commands (`deny_command`).
    pub fn checks_commands(&self) -> bool {
        self.rules.iter().any(|r| r.commands.is_some())
    }

    /// Whether any rule is about files (`deny_write`, `deny_content`): then what every action
    /// changed must be checked.
    pub fn checks_files(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.writes.is_some() || r.content.is_some())
    }

    /// Where the rules on files look, as path prefixes relative to the repository root: each
    /// glob's components before the first wildcard (`tests/**` → `tests`, `**/*.sql` → the root).
    pub fn guarded_prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = self
            .rules
            .iter()
            .flat_map(|r| r.write_patterns.iter().chain(r.content_patterns.iter()))
            .map(|pattern| {
                pattern
                    .split('/')
                    .take_while(|part| !part.contains(['*', '?', '[', '{']))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        prefixes
    }

    /// Checks what an action really changed: every changed path against `deny_write` (deleting
    /// or re-moding a denied file is writing it), and the whole resulting content of each
    /// changed file against `deny_content` — as it is, with whitespace runs collapsed, and with
    /// whitespace removed, so text split across edits or lines is caught. Returns the rule, the
    /// file and the line (1-based) where the match starts.
    pub fn check_changes(&self, files: &[ChangedFile]) -> Option<(Violation, String, Option<u32>)> {
        for rule in &self.rules {
            for file in files {
                if rule.writes.as_ref().is_some_and(|g| g.is_match(&file.path)) {
                    let violation = Violation {
                        rule_id: rule.id.clone(),
                        rule_text: rule.text.clone(),
                        reason: format!("writing {} is denied", file.path),
                    };
                    return Some((violation, file.path.clone(), None));
                }
                let (Some((paths, regex)), Some(content)) = (&rule.content, &file.content) else {
                    continue;
                };
                if !paths.is_match(&file.path) {
                    continue;
                }
                let text = String::from_utf8_lossy(content);
                if let Some((found, at)) = find_spread(regex, &text) {
                    let line = text[..at].matches('\n').count() as u32 + 1;
                    let violation = Violation {
                        rule_id: rule.id.clone(),
                        rule_text: rule.text.clone(),
                        reason: format!("`{found}` may not appear in {} (line {line})", file.path),
                    };
                    return Some((violation, file.path.clone(), Some(line)));
                }
            }
        }
        None
    }

    /// Checks the files an edit touches and the lines it adds.
    pub fn check_edits(&self, edits: &[FileEdit]) -> Option<Violation> {
        for rule in &self.rules {
            for edit in edits {
                if rule.writes.as_ref().is_some_and(|g| g.is_match(&edit.path)) {
                    return Some(Violation {
                        rule_id: rule.id.clone(),
                        rule_text: rule.text.clone(),
                        reason: format!("writing {} is denied", edit.path),
                    });
                }
                if let Some((paths, regex)) = &rule.content
                    && paths.is_match(&edit.path)
                    && let Some(found) = regex.find(&edit.added)
                {
                    return Some(Violation {
                        rule_id: rule.id.clone(),
                        rule_text: rule.text.clone(),
                        reason: format!("`{}` may not appear in {}", found.as_str(), edit.path),
                    });
                }
            }
        }
        None
    }
}

/// The first match of `regex` in `text`, or in `text` with whitespace runs collapsed to one
/// space, or with whitespace removed: what matched, and its byte offset in `text`.
fn find_spread(regex: &regex::Regex, text: &str) -> Option<(String, usize)> {
    if let Some(found) = regex.find(text) {
        return Some((found.as_str().to_string(), found.start()));
    }
    for keep_one_space in [true, false] {
        // The squeezed text and, for each of its bytes, where it came from.
        let mut squeezed = String::with_capacity(text.len());
        let mut origin = Vec::with_capacity(text.len());
        let mut in_space = false;
        for (at, c) in text.char_indices() {
            if c.is_whitespace() {
                if keep_one_space && !in_space {
                    squeezed.push(' ');
                    origin.push(at);
                }
                in_space = true;
                continue;
            }
            in_space = false;
            squeezed.push(c);
            origin.extend(std::iter::repeat_n(at, c.len_utf8()));
        }
        if let Some(found) = regex.find(&squeezed) {
            return Some((found.as_str().to_string(), origin[found.start()]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
[[rule]]
id = "no-real-db"
text = "NEVER use the real database in tests; only in-memory mocks."
deny_command = ["psql *", "*DATABASE_URL=postgres*"]
deny_content = { paths = ["tests/**"], regex = "pg\\.connect|new Pool\\(" }
deny_write = ["migrations/**"]
"#;

    fn rules() -> Rules {
        Rules::parse(RULES, Path::new(".cox/rules.toml")).unwrap()
    }

    impl Rules {
        fn cmd(&self, line: &str) -> Option<Violation> {
            self.check_command(line, Path::new("/repo"), &NoScripts)
                .denied()
        }
    }

    #[test]
    fn commands_are_checked_one_by_one() {
        let rules = rules();
        assert!(rules.cmd("ls").is_none());
        let hit = rules
            .cmd("git status && psql -c 'drop table users'")
            .unwrap();
        assert_eq!(hit.rule_id, "no-real-db");
        assert_eq!(
            hit.reason,
            "the command `psql -c drop table users` is denied"
        );
        assert!(rules.cmd("DATABASE_URL=postgres://prod npm test").is_some());
        assert!(rules.cmd("echo $(psql -l)").is_some());
        assert!(rules.cmd("PGHOST=db /usr/bin/psql -l").is_some());
        assert!(matches!(
            rules.check_command("python3 -c 'import socket'", Path::new("/repo"), &NoScripts),
            CommandCheck::Opaque(_)
        ));
        assert!(
            rules
                .cmd("echo 'unclosed")
                .unwrap()
                .reason
                .contains("cannot be checked")
        );
    }

    #[test]
    fn edits_are_checked_by_path_and_content() {
        let rules = rules();
        let edit = |path: &str, added: &str| {
            vec![FileEdit {
                path: path.into(),
                added: added.into(),
            }]
        };
        assert!(
            rules
                .check_edits(&edit("tests/db.test.js", "const db = makeMock();"))
                .is_none()
        );
        let hit = rules
            .check_edits(&edit("tests/db.test.js", "const c = pg.connect(url);"))
            .unwrap();
        assert_eq!(
            hit.reason,
            "`pg.connect` may not appear in tests/db.test.js"
        );
        assert!(
            rules
                .check_edits(&edit("src/db.js", "pg.connect(url)"))
                .is_none(),
            "only in tests/"
        );
        assert!(
            rules
                .check_edits(&edit("migrations/001.sql", "create table x"))
                .is_some()
        );
        assert_eq!(
            rules.pinned().unwrap(),
            "- [no-real-db] NEVER use the real database in tests; only in-memory mocks."
        );
    }

    #[test]
    fn changes_are_checked_on_whole_files_whatever_the_split() {
        let rules = rules();
        let file = |path: &str, text: &str| ChangedFile {
            path: path.into(),
            content: Some(text.as_bytes().to_vec()),
        };
        let (hit, path, line) = rules
            .check_changes(&[file(
                "tests/db.test.js",
                "const a = 1;\nconst c = pg.connect(url);\n",
            )])
            .unwrap();
        assert_eq!(
            (hit.rule_id.as_str(), path.as_str(), line),
            ("no-real-db", "tests/db.test.js", Some(2))
        );
        // Split across lines: found with the whitespace gone, at the line where it starts.
        let (_, _, line) = rules
            .check_changes(&[file("tests/x.js", "ok\nconst c = pg.\n    connect(url)\n")])
            .unwrap();
        assert_eq!(line, Some(2));
        let (_, _, line) = rules
            .check_changes(&[file("tests/y.js", "x = new\n   Pool(url)\n")])
            .unwrap();
        assert_eq!(line, Some(1));
        assert!(
            rules
                .check_changes(&[file("src/db.js", "pg.connect()")])
                .is_none()
        );
        let deleted = ChangedFile {
            path: "migrations/001.sql".into(),
            content: None,
        };
        assert!(
            rules.check_changes(&[deleted]).is_some(),
            "deleting is writing"
        );
        assert_eq!(rules.guarded_prefixes(), vec!["migrations", "tests"]);
        assert!(rules.checks_files());
    }

    #[test]
    fn malformed_files_name_line_and_field() {
        let bad = "[[rule]]\nid = \"x\"\ntext = \"t\"\ndeny_comand = [\"a\"]\n";
        let error = Rules::parse(bad, Path::new(".cox/rules.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(".cox/rules.toml: line 4: unknown field `deny_comand`"),
            "{error}"
        );
        let bad_endpoint = "[[rule]]\nid = \"x\"\ntext = \"t\"\ndeny_connect = [\"tcp:99999\"]\n";
        let error = Rules::parse(bad_endpoint, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rule[0] (x).deny_connect: `tcp:99999` is not an endpoint"),
            "{error}"
        );
        let bad_regex = "[[rule]]\nid = \"x\"\ntext = \"t\"\ndeny_content = { paths = [\"a\"], regex = \"(\" }\n";
        let error = Rules::parse(bad_regex, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("rule[0] (x).deny_content.regex"), "{error}");
    }
}
