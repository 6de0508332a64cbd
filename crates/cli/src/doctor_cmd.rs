//! `cox doctor`: what cox needs on this machine and whether it has it — the kernel's sandbox
//! features, the tools commands run through, the configuration, each provider's key (masked, with
//! where it comes from) and, with `--check-urls`, whether the providers in use answer.
//!
//! A check is `ok`, `warn` (cox works, with less), `missing` (something required: the exit code is
//! 1 and the line says what to do) or `info` (not used by this configuration). Required: a valid
//! configuration, Landlock and seccomp filters unless `--sandbox full-access`, `bash`, a key for
//! every provider in use that needs one, and with `--check-urls` an answer from each of them.
//! Doctor reads and never writes: it creates no `$COX_HOME`, stores nothing, starts no session.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cox_core::config::{self, ProviderKind, ProviderSpec};
use cox_core::{AuthStore, Config};
use serde_json::json;

use crate::args::{SandboxArg, Shared};
use crate::exit::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ok,
    Warn,
    Missing,
    Info,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warn => "warn",
            State::Missing => "missing",
            State::Info => "info",
        }
    }
}

#[derive(Debug)]
struct Check {
    name: String,
    state: State,
    detail: String,
    fix: Option<String>,
}

fn check(name: impl Into<String>, state: State, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        state,
        detail: detail.into(),
        fix: None,
    }
}

impl Check {
    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

pub fn run(shared: &Shared, check_urls: bool) -> Result<ExitCode, Failure> {
    let home = config::cox_home()?;
    let confine = shared.sandbox != SandboxArg::FullAccess;
    let file = config::read_file(&home, &shared.config).ok();
    let mut checks = vec![home_check(&home)];
    let (config_check, used) = configuration(shared, &home, file.as_ref());
    checks.push(config_check);
    checks.extend(sandbox_checks(confine));
    checks.push(tool_check("bash", true));
    checks.push(tool_check("git", false));
    let store = AuthStore::new(&home);
    let providers = file.as_ref().map(config::all_providers).unwrap_or_default();
    for (name, spec) in &providers {
        checks.push(key_check(name, spec, &store, used.contains(name)));
    }
    if check_urls {
        let specs: Vec<&ProviderSpec> = providers
            .iter()
            .filter(|(name, _)| used.contains(name))
            .filter_map(|(_, spec)| spec.as_ref().ok())
            .filter(|spec| spec.kind == ProviderKind::Remote)
            .collect();
        checks.extend(crate::exec::runtime()?.block_on(url_checks(&specs)));
    }
    report(&checks, shared.json);
    let missing = checks.iter().filter(|c| c.state == State::Missing).count();
    if missing == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "cox doctor: {missing} required {} missing (see `missing` above for what to do)",
        if missing == 1 {
            "thing is"
        } else {
            "things are"
        }
    );
    Ok(ExitCode::from(crate::exit::FAILED))
}

fn report(checks: &[Check], as_json: bool) {
    if as_json {
        for c in checks {
            let line = json!({
                "check": c.name,
                "status": c.state.label(),
                "detail": c.detail,
                "fix": c.fix,
            });
            println!("{line}");
        }
        return;
    }
    println!(
        "cox {} ({}; the `local` provider {})",
        env!("CARGO_PKG_VERSION"),
        std::env::current_exe().map_or_else(|_| "?".into(), |p| p.display().to_string()),
        if cfg!(feature = "local") {
            "built in"
        } else {
            "not built in"
        }
    );
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        println!("{:<7}  {:<width$}  {}", c.state.label(), c.name, c.detail);
        if let Some(fix) = &c.fix {
            println!("{:<7}  {:<width$}  → {fix}", "", "");
        }
    }
}

/// `$COX_HOME`: where keys, sessions and settings live. Absent is fine if it can be made.
fn home_check(home: &Path) -> Check {
    let name = "home";
    if home.is_dir() {
        return match writable(home) {
            true => check(name, State::Ok, home.display().to_string()),
            false => check(
                name,
                State::Missing,
                format!("{} is not writable", home.display()),
            )
            .fix("make it writable, or point COX_HOME at a directory that is"),
        };
    }
    let parent = home.ancestors().skip(1).find(|a| a.exists());
    match parent {
        Some(parent) if parent.is_dir() && writable(parent) => check(
            name,
            State::Ok,
            format!("{} (made on first use)", home.display()),
        ),
        _ => check(
            name,
            State::Missing,
            format!("{} does not exist and cannot be made", home.display()),
        )
        .fix("set COX_HOME to a writable directory"),
    }
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The configuration, resolved as a session would resolve it, and the providers it uses: the
/// default (or `--provider`) and the `[roles]` of `file` (config.toml with the `-c` settings).
fn configuration(
    shared: &Shared,
    home: &Path,
    file: Option<&config::ConfigFile>,
) -> (Check, Vec<String>) {
    let path = home.join("config.toml");
    let shown = if path.exists() {
        path.display().to_string()
    } else {
        format!("{} (absent: the defaults)", path.display())
    };
    let overrides = crate::exec::overrides(shared);
    let mut used = Vec::new();
    let config = match Config::load(home, &overrides) {
        Ok(config) => config,
        Err(e) => {
            return (
                check("config", State::Missing, format!("{shown}: {e}")).fix(
                    "fix the setting named above (`cox --help` lists the flags, README the keys)",
                ),
                used,
            );
        }
    };
    used.push(config.provider.name.clone());
    let mut detail = format!(
        "{shown}; provider {}, model {}",
        config.provider.name, config.model
    );
    if let Some(file) = file {
        for (role, spec) in [
            ("planner", &file.roles.planner),
            ("worker", &file.roles.worker),
        ] {
            let Some(spec) = spec else { continue };
            match config::parse_role(spec) {
                Ok((provider, model)) => {
                    let provider = provider.unwrap_or_else(|| config.provider.name.clone());
                    detail.push_str(&format!("; {role} {provider}:{model}"));
                    if !used.contains(&provider) {
                        used.push(provider);
                    }
                }
                Err(e) => {
                    return (
                        check(
                            "config",
                            State::Missing,
                            format!("{shown}: [roles] {role}: {e}"),
                        )
                        .fix("write the role as `provider:model` or a model name"),
                        used,
                    );
                }
            }
        }
    }
    (check("config", State::Ok, detail), used)
}

fn sandbox_checks(confine: bool) -> Vec<Check> {
    let needed = if confine { State::Missing } else { State::Warn };
    let full_access = "or run with --sandbox full-access knowingly (commands then run unconfined)";
    let mut checks = Vec::new();
    checks.push(match cox_core::sandbox_probe::landlock_abi() {
        None => check(
            "landlock",
            needed,
            "not available: commands cannot be confined",
        )
        .fix(format!(
            "a Linux 5.13+ kernel with Landlock enabled (CONFIG_SECURITY_LANDLOCK, `lsm=` listing landlock), {full_access}"
        )),
        Some(abi) if abi < 4 => check(
            "landlock",
            State::Warn,
            format!("ABI {abi}: files confined; rules' deny_connect needs ABI 4 (Linux 6.7)"),
        ),
        Some(abi) if abi < 6 => check(
            "landlock",
            State::Warn,
            format!(
                "ABI {abi}: files and TCP ports confined; signals to outside processes are not scoped (ABI 6, Linux 6.12)"
            ),
        ),
        Some(abi) => check(
            "landlock",
            State::Ok,
            format!("ABI {abi}: files, TCP ports, signal and socket scopes"),
        ),
    });
    let seccomp = cox_core::sandbox_probe::seccomp();
    checks.push(if seccomp.filters {
        let under = if seccomp.already_filtered {
            " (cox itself runs under a filter, e.g. a container's: commands get both)"
        } else {
            ""
        };
        check("seccomp", State::Ok, format!("filters available{under}"))
    } else {
        check(
            "seccomp",
            needed,
            "filters unavailable: the network and terminal rules cannot be enforced",
        )
        .fix(format!(
            "a kernel with CONFIG_SECCOMP_FILTER, {full_access}"
        ))
    });
    checks.push(namespaces_check());
    checks
}

/// Asks a fresh process of this binary to take the namespaces a launcher takes.
fn namespaces_check() -> Check {
    let name = "namespaces";
    let probe = std::process::Command::new(cox_core::own_binary())
        .arg("__probe-namespaces")
        .stdin(std::process::Stdio::null())
        .output();
    match probe {
        Ok(out) if out.status.success() => check(
            name,
            State::Ok,
            "mount and pid namespaces per command: .git/.cox bound read-only, nothing outlives a command",
        ),
        Ok(out) => check(
            name,
            State::Warn,
            format!(
                "unavailable ({}): commands are contained by a subreaper instead, .git/.cox restored after each",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
        .fix("allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or the AppArmor restriction off) for the stronger containment"),
        Err(e) => check(name, State::Warn, format!("cannot run the probe: {e}")),
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn tool_check(program: &str, required: bool) -> Check {
    match find_on_path(program) {
        Some(path) => {
            let version = std::process::Command::new(&path)
                .arg("--version")
                .stdin(std::process::Stdio::null())
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            check(program, State::Ok, format!("{} {version}", path.display()))
        }
        None if required => check(
            program,
            State::Missing,
            "not on PATH: the model's string commands run through `bash -c`, with the environment `bash -lc` gives",
        )
        .fix(format!("install {program}")),
        None => check(
            program,
            State::Warn,
            "not on PATH: the model's git commands fail; cox itself does not need it",
        )
        .fix(format!("install {program}")),
    }
}

fn key_check(
    name: &str,
    spec: &Result<ProviderSpec, cox_core::Error>,
    store: &AuthStore,
    used: bool,
) -> Check {
    let label = format!("key {name}");
    let in_use = if used { " · in use" } else { "" };
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            let state = if used { State::Missing } else { State::Warn };
            return check(label, state, format!("misconfigured: {e}"))
                .fix(format!("fix [providers.{name}] in config.toml"));
        }
    };
    match store.resolve(spec) {
        Err(e) => check(
            label,
            State::Missing,
            format!("cannot read the stored keys: {e}"),
        )
        .fix("fix or remove auth.json, then `cox auth login`"),
        Ok(Some((key, source))) => check(
            label,
            if used { State::Ok } else { State::Info },
            format!("{} from {source}{in_use}", key.masked()),
        ),
        Ok(None) if !spec.requires_key => check(
            label,
            if used { State::Ok } else { State::Info },
            format!("none needed ({}){in_use}", where_it_runs(spec)),
        ),
        Ok(None) => {
            let fix = match &spec.api_key_env {
                Some(var) => format!("set {var}, or run `cox auth login --provider {name}`"),
                None => format!("run `cox auth login --provider {name}`"),
            };
            if used {
                check(label, State::Missing, format!("not set{in_use}")).fix(fix)
            } else {
                check(label, State::Info, "not set (not in use)")
            }
        }
    }
}

fn where_it_runs(spec: &ProviderSpec) -> String {
    match spec.kind {
        ProviderKind::Local => "in-process".to_string(),
        ProviderKind::Remote => shown_url(&spec.base_url),
    }
}

/// A base URL as doctor prints it: a user name or password in it is left out.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Whether each provider's base URL answers at all: any HTTP status counts (a 401 or 404 says a
/// server is there); no answer within 5 s does not.
async fn url_checks(specs: &[&ProviderSpec]) -> Vec<Check> {
    cox_core::install_tls();
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(e) => return vec![check("url", State::Missing, format!("no HTTP client: {e}"))],
    };
    let mut checks = Vec::new();
    for spec in specs {
        let label = format!("url {}", spec.name);
        let shown = shown_url(&spec.base_url);
        checks.push(match client.get(&spec.base_url).send().await {
            Ok(response) => check(
                label,
                State::Ok,
                format!("{shown} answers (HTTP {})", response.status().as_u16()),
            ),
            Err(e) => {
                let why = if e.is_timeout() {
                    "no answer within 5 s".to_string()
                } else if e.is_connect() {
                    "cannot connect".to_string()
                } else {
                    e.without_url().to_string()
                };
                check(label, State::Missing, format!("{shown}: {why}")).fix(format!(
                    "start the server, check the network, or set providers.{}.base_url",
                    spec.name
                ))
            }
        });
    }
    checks
}
