//! `cox auth login|status|logout`: provider keys in `$COX_HOME/auth.json`. Keys are shown masked
//! (`sk-…abcd`), never in full.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use cox_core::config::{self, cox_home};
use cox_core::{AuthStore, Secret};

use crate::args::{AuthAction, Shared};
use crate::exit::Failure;

pub fn run(shared: &Shared, action: AuthAction) -> Result<ExitCode, Failure> {
    let home = cox_home()?;
    let store = AuthStore::new(&home);
    match action {
        AuthAction::Login => login(shared, &home, &store),
        AuthAction::Status => status(shared, &home, &store),
        AuthAction::Logout => logout(shared, &home, &store),
    }
}

/// The provider named with `--provider`, or the configured default, resolved (so a typo fails).
fn provider(shared: &Shared, home: &std::path::Path) -> Result<config::ProviderSpec, Failure> {
    let file = config::read_file(home, &shared.config)?;
    let name = shared
        .provider
        .clone()
        .or(file.provider.clone())
        .unwrap_or_else(|| config::DEFAULT_PROVIDER.to_string());
    let mut specs = config::all_providers(&file);
    match specs.iter().position(|(n, _)| *n == name) {
        Some(found) => Ok(specs.swap_remove(found).1?),
        None => Err(cox_core::Error::UnknownProvider {
            name,
            known: config::known_providers(&file.providers).join(", "),
        }
        .into()),
    }
}

fn login(shared: &Shared, home: &std::path::Path, store: &AuthStore) -> Result<ExitCode, Failure> {
    let spec = provider(shared, home)?;
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API key for {}: ", spec.name)).map_err(|e| {
            Failure::usage(
                format!("cannot read the key: {e}"),
                "pipe the key on stdin instead",
            )
        })?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::usage(
                format!("cannot read the key from stdin: {e}"),
                "pipe the key as text",
            )
        })?;
        text
    };
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(Failure::usage(
            "no usable API key was given (empty, or containing spaces)",
            format!(
                "printf %s \"$KEY\" | cox auth login --provider {}",
                spec.name
            ),
        ));
    }
    let key = Secret::new(key);
    store.save(&spec.name, &key)?;
    eprintln!(
        "saved the key {} for {} in {}",
        key.masked(),
        spec.name,
        store.path().display()
    );
    if let Some(var) = key_var_in_env(&spec) {
        eprintln!("note: {var} is set in the environment and takes precedence over the stored key");
    }
    Ok(ExitCode::SUCCESS)
}

fn status(shared: &Shared, home: &std::path::Path, store: &AuthStore) -> Result<ExitCode, Failure> {
    let file = config::read_file(home, &shared.config)?;
    for (name, spec) in config::all_providers(&file) {
        if shared
            .provider
            .as_ref()
            .is_some_and(|wanted| *wanted != name)
        {
            continue;
        }
        let line = match spec {
            Err(e) => format!("misconfigured: {e}"),
            Ok(spec) => match store.resolve(&spec)? {
                Some((key, source)) => format!("{source} · {}", key.masked()),
                None if spec.requires_key => match &spec.api_key_env {
                    Some(var) => {
                        format!("not set (set {var} or run `cox auth login --provider {name}`)")
                    }
                    None => format!("not set (run `cox auth login --provider {name}`)"),
                },
                None => "no key needed".to_string(),
            },
        };
        println!("{name:<12} {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn logout(shared: &Shared, home: &std::path::Path, store: &AuthStore) -> Result<ExitCode, Failure> {
    let spec = provider(shared, home)?;
    if store.remove(&spec.name)? {
        eprintln!("removed the stored key for {}", spec.name);
    } else {
        eprintln!(
            "no stored key for {} in {}",
            spec.name,
            store.path().display()
        );
    }
    if let Some(var) = key_var_in_env(&spec) {
        eprintln!("note: {var} is still set in the environment");
    }
    Ok(ExitCode::SUCCESS)
}

/// The provider's key variable, when it is set (it then wins over the stored key).
fn key_var_in_env(spec: &config::ProviderSpec) -> Option<&String> {
    spec.api_key_env
        .as_ref()
        .filter(|var| std::env::var_os(var).is_some())
}
