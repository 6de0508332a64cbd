//! What every attack runs among: the listeners and the process outside, set up once; a fresh
//! project per attack; the secrets cox is given.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::*;

/// Secrets cox is given (environment and `auth.json`): none may reach a command, the model, an
/// event or the journal.
pub(super) const SECRETS: &[(&str, &str)] = &[
    ("ANTHROPIC_API_KEY", "sk-ant-env-Zq81hQ2wLx"),
    ("PGPASSWORD", "pg-S3cret-pass-7731"),
    (
        "DATABASE_URL",
        "postgres://app:db-S3cret-pw-4410@db.internal/app",
    ),
    ("OPENAI_KEY", "sk-openai-alt-Kp20Xv93"),
    ("GITHUB_TOKEN", "ghp_EscapeSuiteToken99"),
    ("AWS_SECRET_ACCESS_KEY", "aws-S3cret-wJalrXUtnF"),
];
/// A second provider's key, stored in `auth.json` only.
pub(super) const STORED_KEY: &str = "sk-ant-stored-Vb6Tn4Rr";
/// The marker every process an attack starts carries, to find survivors.
pub(super) const MARKER: &str = "31337.5";

/// What the suite sets up once: listeners that count who reaches them, and a process outside.
pub(super) struct Listeners {
    pub(super) tcp_port: u16,
    pub(super) tcp_hits: Arc<AtomicUsize>,
    pub(super) unix_path: PathBuf,
    pub(super) unix_hits: Arc<AtomicUsize>,
    pub(super) abstract_name: String,
    pub(super) abstract_hits: Arc<AtomicUsize>,
    pub(super) ssh_agent_sock: PathBuf,
    pub(super) tmux_sock: PathBuf,
    /// A terminal of the person's: the suite holds its master side.
    pub(super) pts: PathBuf,
    pub(super) _pty: nix::pty::OpenptyResult,
    pub(super) sleeper: std::process::Child,
    pub(super) _dir: tempfile::TempDir,
}

pub(super) fn count_tcp(listener: std::net::TcpListener, hits: Arc<AtomicUsize>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            hits.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
}

pub(super) fn count_unix(listener: UnixListener, hits: Arc<AtomicUsize>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            hits.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
}

impl Listeners {
    /// The outside programs some attacks reach for (`{AGENT}`, `{TMUX}`), and how to get them.
    pub(super) const OUTSIDE: [(&str, &str, &str); 3] = [
        ("{AGENT}", "ssh-agent", "apt-get install openssh-client"),
        ("{AGENT}", "ssh-add", "apt-get install openssh-client"),
        ("{TMUX}", "tmux", "apt-get install tmux"),
    ];

    /// Whether `program` is here; a missing one skips, loudly, the attacks that need it.
    pub(super) fn has(program: &str) -> bool {
        Listeners::OUTSIDE
            .iter()
            .filter(|(_, p, _)| *p == program)
            .all(|(_, p, how)| {
                cox_testkit::outside_tool_for(p, how, &format!("the attacks that reach {p}"))
            })
    }

    pub(super) fn start() -> Listeners {
        let dir = tempfile::tempdir_in(crate::sandbox::base()).unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp_port = tcp.local_addr().unwrap().port();
        let tcp_hits = Arc::new(AtomicUsize::new(0));
        count_tcp(tcp, tcp_hits.clone());
        let unix_path = dir.path().join("helper.sock");
        let unix_hits = Arc::new(AtomicUsize::new(0));
        count_unix(UnixListener::bind(&unix_path).unwrap(), unix_hits.clone());
        let abstract_name = format!("cox-escape-{}", std::process::id());
        let abstract_hits = Arc::new(AtomicUsize::new(0));
        let address = SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        count_unix(
            UnixListener::bind_addr(&address).unwrap(),
            abstract_hits.clone(),
        );
        // A real ssh-agent holding no key: reaching it at all is the escape.
        let ssh_agent_sock = dir.path().join("agent.sock");
        if Listeners::has("ssh-agent") {
            let agent = Command::new("ssh-agent")
                .arg("-a")
                .arg(&ssh_agent_sock)
                .stdout(Stdio::null())
                .status()
                .expect("ssh-agent (openssh-client) runs");
            assert!(agent.success());
        }
        // A tmux server of the person's: a new window would run a command outside.
        let tmux_sock = dir.path().join("tmux.sock");
        if Listeners::has("tmux") {
            let tmux = Command::new("tmux")
                .arg("-S")
                .arg(&tmux_sock)
                .args(["new-session", "-d", "-s", "escape", "sleep 600"])
                .status()
                .expect("tmux runs");
            assert!(tmux.success());
        }
        let pty = nix::pty::openpty(None, None).unwrap();
        let pts = fs_err::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&pty.slave)
        ))
        .unwrap();
        let sleeper = Command::new("sleep").arg("600.25").spawn().unwrap();
        Listeners {
            tcp_port,
            tcp_hits,
            unix_path,
            unix_hits,
            abstract_name,
            abstract_hits,
            ssh_agent_sock,
            tmux_sock,
            pts,
            _pty: pty,
            sleeper,
            _dir: dir,
        }
    }

    pub(super) fn hits(&self) -> [usize; 3] {
        [&self.tcp_hits, &self.unix_hits, &self.abstract_hits].map(|h| h.load(Ordering::SeqCst))
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        let _ = self.sleeper.kill();
        let _ = self.sleeper.wait();
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.tmux_sock)
            .arg("kill-server")
            .status();
        let _ = Command::new("pkill")
            .args([
                "-f",
                &format!("ssh-agent -a {}", self.ssh_agent_sock.display()),
            ])
            .status();
    }
}

/// A fresh project for one attack: a real git repository with a hook and a config, trusted
/// rules, a stored key, and a directory outside every writable root.
pub(super) struct Project {
    pub(super) _root: tempfile::TempDir,
    pub(super) repo: PathBuf,
    pub(super) outside: PathBuf,
    pub(super) home: PathBuf,
}

pub(super) const RULES: &str = r#"[[rule]]
id = "no-psql"
text = "Never run psql."
deny_command = ["psql *"]
"#;

/// The same rule as text only: with a `deny_command` rule in force, the attacks' `python3 -c`
/// would be opaque and refused before the sandbox is ever tried (issue 21), so the attacks on
/// the sandbox run without one.
pub(super) const TEXT_RULES: &str = r#"[[rule]]
id = "no-psql"
text = "Never run psql."
"#;

impl Project {
    pub(super) fn new() -> Project {
        Project::with_rules(RULES)
    }

    pub(super) fn with_rules(rules: &str) -> Project {
        let root = tempfile::tempdir_in(crate::sandbox::base()).unwrap();
        let repo = root.path().join("repo");
        let outside = root.path().join("outside");
        let home = root.path().join("home");
        for dir in [&repo, &outside, &home] {
            fs_err::create_dir_all(dir).unwrap();
        }
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(git.success());
        fs_err::write(repo.join("README.md"), "# Demo\n").unwrap();
        fs_err::create_dir_all(repo.join(".cox")).unwrap();
        fs_err::write(repo.join(".cox/rules.toml"), rules).unwrap();
        fs_err::write(outside.join("victim.txt"), "original\n").unwrap();
        let auth = serde_json::json!({"providers": {"anthropic": {"api_key": STORED_KEY}}});
        fs_err::write(home.join("auth.json"), auth.to_string()).unwrap();
        let project = Project {
            repo: fs_err::canonicalize(&repo).unwrap(),
            outside: fs_err::canonicalize(&outside).unwrap(),
            home: fs_err::canonicalize(&home).unwrap(),
            _root: root,
        };
        let trusted = project.cox().arg("trust").output().unwrap();
        assert!(trusted.status.success(), "{}", text(&trusted.stderr));
        project
    }

    /// The cox under test: the build's, or a copy inside the workspace when an attack put one
    /// there.
    pub(super) fn cox(&self) -> Command {
        let inside = self.repo.join("target/release/cox");
        let program = if inside.exists() {
            inside
        } else {
            PathBuf::from(env!("CARGO_BIN_EXE_cox"))
        };
        let mut command = Command::new(program);
        command
            .current_dir(&self.repo)
            .env("COX_HOME", &self.home)
            .env("HOME", self.home.parent().unwrap())
            .env_remove("OPENAI_BASE_URL")
            .stdin(Stdio::null());
        command
    }

    /// Everything an attack may want to leave unchanged, to compare after it.
    pub(super) fn state(&self) -> String {
        let mut out = String::new();
        for dir in [
            self.repo.join(".git"),
            self.repo.join(".cox"),
            self.outside.clone(),
        ] {
            let mut entries: Vec<PathBuf> = walk(&dir)
                .into_iter()
                .filter(|p| !p.starts_with(self.repo.join(".git/objects")))
                .collect();
            entries.sort();
            for path in entries {
                let content = fs_err::read(&path).map(|b| text(&b)).unwrap_or_default();
                out.push_str(&format!("{}\n{content}\n", path.display()));
            }
        }
        for file in ["auth.json", "config.toml", "projects.toml"] {
            let content = fs_err::read_to_string(self.home.join(file)).unwrap_or_default();
            out.push_str(&format!("{file}\n{content}\n"));
        }
        out
    }
}

pub(super) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(entries) = fs_err::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
