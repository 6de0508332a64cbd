//! Credentials: `$COX_HOME/auth.json` (mode 0600, written atomically) and the environment, which
//! wins. Keys travel as [`Secret`] so that they print masked wherever they end up.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use fs_err::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use cox_model::Secret;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::ProviderSpec;

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    providers: BTreeMap<String, StoredKey>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    api_key: String,
}

/// Writes a file of cox's home that only its owner may read: its directory made `0700`, the file
/// written to a sibling created `0600` from the start, synced, then renamed over — a reader never
/// sees a half-written file, and the content is never readable by others, not even for a moment.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let _ = fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut out = fs_err::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs_err::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&temp);
    }
    result
}

/// Where a key came from, for `cox auth status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env(String),
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(var) => write!(f, "env {var}"),
            KeySource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// The credential store under a cox home directory.
#[derive(Debug, Clone)]
pub struct AuthStore {
    path: PathBuf,
}

impl AuthStore {
    pub fn new(home: &Path) -> Self {
        AuthStore {
            path: home.join("auth.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<AuthFile, Error> {
        match fs_err::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| Error::AuthFile {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(e) => Err(Error::Io(e)),
        }
    }

    fn write(&self, file: &AuthFile) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
        Ok(write_private(&self.path, format!("{text}\n").as_bytes())?)
    }

    /// Every stored key, for redaction (an unreadable file has none to redact).
    pub fn all_stored(&self) -> Vec<Secret> {
        self.read()
            .map(|file| {
                file.providers
                    .into_values()
                    .map(|k| Secret::new(k.api_key))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The stored key for `provider`, if any.
    pub fn stored(&self, provider: &str) -> Result<Option<Secret>, Error> {
        Ok(self
            .read()?
            .providers
            .get(provider)
            .map(|k| Secret::new(k.api_key.clone())))
    }

    pub fn save(&self, provider: &str, key: &Secret) -> Result<(), Error> {
        let mut file = self.read()?;
        file.providers.insert(
            provider.to_string(),
            StoredKey {
                api_key: key.expose().to_string(),
            },
        );
        self.write(&file)
    }

    /// Removes the stored key; returns whether there was one.
    pub fn remove(&self, provider: &str) -> Result<bool, Error> {
        let mut file = self.read()?;
        let had = file.providers.remove(provider).is_some();
        if had {
            self.write(&file)?;
        }
        Ok(had)
    }

    /// The key to use for `provider`: its environment variable first, then the store.
    pub fn resolve(&self, provider: &ProviderSpec) -> Result<Option<(Secret, KeySource)>, Error> {
        if let Some(var) = &provider.api_key_env
            && let Ok(value) = std::env::var(var)
            && !value.trim().is_empty()
        {
            return Ok(Some((
                Secret::new(value.trim()),
                KeySource::Env(var.clone()),
            )));
        }
        Ok(self
            .stored(&provider.name)?
            .map(|key| (key, KeySource::File(self.path.clone()))))
    }

    /// Like [`AuthStore::resolve`], but a provider that needs a key and has none is an error that
    /// says how to set one.
    pub fn require(&self, provider: &ProviderSpec) -> Result<Option<Secret>, Error> {
        match self.resolve(provider)? {
            Some((key, _)) => Ok(Some(key)),
            None if provider.requires_key => Err(Error::MissingKey {
                provider: provider.name.clone(),
                hint: match &provider.api_key_env {
                    Some(var) => format!(
                        "set {var}, or run `cox auth login --provider {}`",
                        provider.name
                    ),
                    None => format!("run `cox auth login --provider {}`", provider.name),
                },
            }),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_is_private_and_round_trips() {
        let home = std::env::temp_dir().join(format!("cox-auth-{}", std::process::id()));
        let store = AuthStore::new(&home);
        store
            .save("corp", &Secret::new("sk-test-0000000000001234"))
            .unwrap();
        let mode = fs_err::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let key = store.stored("corp").unwrap().unwrap();
        assert_eq!(key.expose(), "sk-test-0000000000001234");
        assert!(store.remove("corp").unwrap());
        assert!(store.stored("corp").unwrap().is_none());
        assert!(!store.remove("corp").unwrap());
    }
}
