//! The person's login environment, captured once per session, so the model's string commands run
//! with `bash -c` — with the `PATH` and variables the login profile sets (pyenv, nvm, cargo…) but
//! without running the profile again for every command, inside the sandbox, where whatever it
//! tries to write outside the workspace fails noisily (`mktemp: failed to create file via
//! template '…/.pyenv/shims/…'`, `pyenv: cannot rehash`).
//!
//! The capture is `bash -lc 'env -0'` in `$HOME` (not in the workspace: nothing of the project
//! runs), stdin closed, stderr dropped, credentials removed from its environment, in a process
//! group of its own that is killed after [`CAPTURE_TIMEOUT`]. It runs on a thread of its own from
//! the session's start, so start-up does not wait for it; the first command that needs it waits.
//! What commands get is the difference from cox's own environment — the variables the profile
//! added or changed — less the shell's own bookkeeping (`PWD`, `SHLVL`, `_`…) and less anything
//! the credential rules hide (a key exported in `.bash_profile` is not handed to commands). A
//! capture that fails or times out leaves commands with cox's environment, and says so in the log.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a login profile may take before the capture gives up.
pub const CAPTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// Variables of the shell itself, never carried over.
const SHELL_OWN: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_", "BASH_EXECUTION_STRING"];

/// The login environment's additions, once captured.
#[derive(Debug, Default)]
pub struct LoginEnv {
    delta: OnceLock<Vec<(String, String)>>,
}

impl LoginEnv {
    /// Starts the capture on a thread of its own. `hides(name, value)`: the credential rule.
    pub fn start(hides: impl Fn(&str, &str) -> bool + Send + 'static) -> Arc<LoginEnv> {
        let env = Arc::new(LoginEnv::default());
        let filling = Arc::clone(&env);
        let spawned = std::thread::Builder::new()
            .name("cox-login-env".into())
            .spawn(move || {
                let delta = match capture() {
                    Ok(login) => delta(&login, std::env::vars(), &hides),
                    Err(why) => {
                        tracing::warn!("the login environment was not captured: {why}");
                        Vec::new()
                    }
                };
                let _ = filling.delta.set(delta);
            });
        if let Err(e) = spawned {
            tracing::warn!("the login environment was not captured: {e}");
            let _ = env.delta.set(Vec::new());
        }
        env
    }

    /// An environment with nothing added (tests, and sessions that must not run the profile).
    pub fn none() -> Arc<LoginEnv> {
        let env = LoginEnv::default();
        let _ = env.delta.set(Vec::new());
        Arc::new(env)
    }

    /// The variables to set on a command, waiting for the capture if it is still running.
    pub fn wait(&self) -> &[(String, String)] {
        self.delta.wait()
    }

    /// The same without blocking an async runtime's thread.
    pub async fn ready(self: &Arc<LoginEnv>) -> Vec<(String, String)> {
        if let Some(delta) = self.delta.get() {
            return delta.clone();
        }
        let env = Arc::clone(self);
        tokio::task::spawn_blocking(move || env.wait().to_vec())
            .await
            .unwrap_or_default()
    }
}

/// Runs the login shell once and reads its environment.
fn capture() -> Result<HashMap<String, String>, String> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let mut child = Command::new("bash")
        .args(["-lc", "env -0"])
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let deadline = Instant::now() + CAPTURE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!(
                    "the login profile took longer than {} s",
                    CAPTURE_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for bash: {e}")),
        }
    };
    let bytes = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("`bash -lc 'env -0'` ended with {status}"));
    }
    Ok(parse(&bytes))
}

/// `env -0` output: NAME=value records, NUL-ended.
fn parse(bytes: &[u8]) -> HashMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|record| std::str::from_utf8(record).ok())
        .filter_map(|record| record.split_once('='))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// What the login environment adds to or changes in `own`, less the shell's bookkeeping and what
/// `hides` keeps from commands; sorted by name.
fn delta(
    login: &HashMap<String, String>,
    own: impl Iterator<Item = (String, String)>,
    hides: &dyn Fn(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let own: HashMap<String, String> = own.collect();
    let mut out: Vec<(String, String)> = login
        .iter()
        .filter(|(name, value)| own.get(*name) != Some(*value))
        .filter(|(name, _)| !SHELL_OWN.contains(&name.as_str()))
        .filter(|(name, value)| !hides(name, value))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::{delta, parse};

    #[test]
    fn the_delta_is_what_the_profile_added_less_bookkeeping_and_credentials() {
        let login = parse(
            b"PATH=/home/p/.pyenv/shims:/usr/bin\0HOME=/home/p\0SHLVL=1\0PWD=/home/p\0\
              PYENV_ROOT=/home/p/.pyenv\0MULTI=a=b\nc\0GITHUB_TOKEN=ghp_secret\0",
        );
        assert_eq!(login["MULTI"], "a=b\nc");
        let own = [
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("HOME".to_string(), "/home/p".to_string()),
        ];
        let hides = |name: &str, _: &str| name.ends_with("_TOKEN");
        assert_eq!(
            delta(&login, own.into_iter(), &hides),
            [
                ("MULTI".to_string(), "a=b\nc".to_string()),
                (
                    "PATH".to_string(),
                    "/home/p/.pyenv/shims:/usr/bin".to_string()
                ),
                ("PYENV_ROOT".to_string(), "/home/p/.pyenv".to_string()),
            ]
        );
    }
}
