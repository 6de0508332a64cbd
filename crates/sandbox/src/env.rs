//! Which environment variables hold credentials, so that no command gets them and no record shows
//! their values.
//!
//! A name is a credential's when one of its `_`-separated words is, or ends in, `KEY`/`KEYS`,
//! `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `PASS`, `PWD` after another word (`DB_PWD`, never
//! `PWD` alone: that is the working directory), `CREDENTIAL(S)`, `AUTH`, `AUTHORIZATION`,
//! `COOKIE`, `SESSION`, `PRIVATE`, `SIGNATURE`, `DSN`; or it starts with `AWS_`, `AZURE_`,
//! `GOOGLE_APPLICATION_`, `GCP_`, `VAULT_`; or it is one of [`NAMED`] (`DATABASE_URL`, the
//! agents' sockets); or its value is a URL with a password in it (`postgres://u:p@host`). The
//! person adds names and patterns (`scrub`) and takes some back (`keep`) in config.toml:
//!
//! ```toml
//! [sandbox.env]
//! scrub = ["CORP_*", "LICENSE_SERVER"]
//! keep = ["GIT_ASKPASS"]
//! ```
//!
//! Patterns are names with `*` for any run of characters, matched without regard to case.

/// Names that are credentials (or reach them) whatever their words say.
pub const NAMED: &[&str] = &[
    "DATABASE_URL",
    "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
    "KRB5CCNAME",
    "DOCKER_AUTH_CONFIG",
    "NETRC",
    "PGPASSFILE",
];

const WORDS: &[&str] = &[
    "KEY",
    "KEYS",
    "TOKEN",
    "TOKENS",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "AUTH",
    "AUTHORIZATION",
    "COOKIE",
    "SESSION",
    "PRIVATE",
    "SIGNATURE",
    "DSN",
];

const PREFIXES: &[&str] = &["AWS_", "AZURE_", "GOOGLE_APPLICATION_", "GCP_", "VAULT_"];

/// The person's additions and exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scrub {
    pub scrub: Vec<String>,
    pub keep: Vec<String>,
}

impl Scrub {
    /// Whether `name` (with `value`) is kept from commands and redacted from records.
    pub fn hides(&self, name: &str, value: &str) -> bool {
        if self.keep.iter().any(|p| matches(p, name)) {
            return false;
        }
        self.scrub.iter().any(|p| matches(p, name)) || looks_like_credential(name, value)
    }
}

/// The built-in rule, without the person's additions.
pub fn looks_like_credential(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if NAMED.contains(&upper.as_str()) || PREFIXES.iter().any(|p| upper.starts_with(p)) {
        return true;
    }
    let words: Vec<&str> = upper.split('_').filter(|w| !w.is_empty()).collect();
    let credential_word = words.iter().enumerate().any(|(n, word)| {
        WORDS
            .iter()
            .any(|w| word == w || (word.ends_with(w) && word.len() > w.len() + 1))
            || (n > 0 && *word == "PWD")
    });
    credential_word || url_with_password(value)
}

/// `scheme://user:password@host…`
fn url_with_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
}

/// Overwrites, in the block the kernel shows as `/proc/PID/environ`, the values of the variables
/// `hide` names, after moving them to copies of libc's own: the process reads them as before,
/// and no reader of its environ (not even root's) sees them. Call first thing in `main`, while
/// the process has one thread.
#[allow(unsafe_code)]
pub fn blank_environ_block(hide: impl Fn(&str, &str) -> bool) {
    unsafe extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    let mut found: Vec<(*mut u8, usize, String, String)> = Vec::new();
    // SAFETY: single-threaded (the caller's contract); libc's `environ` is a NULL-terminated
    // array of NUL-terminated strings, which we only read here.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let bytes = std::ffi::CStr::from_ptr(*entry).to_bytes();
            if let Ok(text) = std::str::from_utf8(bytes)
                && let Some((name, value)) = text.split_once('=')
                && !value.is_empty()
                && hide(name, value)
            {
                let start = (*entry as *mut u8).add(name.len() + 1);
                found.push((start, value.len(), name.to_string(), value.to_string()));
            }
            entry = entry.add(1);
        }
    }
    for (start, len, name, value) in found {
        // SAFETY: single-threaded; `set_var` gives the variable a string of libc's own and leaves
        // the original (on the initial stack, never freed) in place, which we then overwrite
        // within its length.
        unsafe {
            std::env::set_var(&name, &value);
            std::ptr::write_bytes(start, b'*', len);
        }
    }
}

/// A name against a pattern with `*`, ignoring case.
fn matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_uppercase(), name.to_ascii_uppercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name.as_str();
    for (n, part) in parts.iter().enumerate() {
        if n == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if n == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_and_values() {
        let hidden = [
            "OPENAI_API_KEY",
            "OPENAI_KEY",
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "NPM_AUTH_TOKEN",
            "MY_SECRET",
            "PGPASSWORD",
            "MYSQL_PWD",
            "DB_PASS",
            "DATABASE_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_REGION",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "SSH_AUTH_SOCK",
            "HF_APIKEY",
            "SENTRY_DSN",
            "session_cookie",
            "VAULT_ADDR",
        ];
        for name in hidden {
            assert!(looks_like_credential(name, "x"), "{name}");
        }
        let kept = [
            "PATH",
            "HOME",
            "PWD",
            "OLDPWD",
            "GIT_AUTHOR_NAME",
            "KEYBOARD_LAYOUT",
            "LANG",
            "TERM",
            "CARGO_HOME",
            "TOKENIZERS_PARALLELISM",
            "SECRETARY",
            "PASSAGE",
        ];
        for name in kept {
            assert!(!looks_like_credential(name, "x"), "{name}");
        }
        assert!(looks_like_credential(
            "REDIS_URL",
            "redis://u:hunter2@db:6379/0"
        ));
        assert!(!looks_like_credential("REDIS_URL", "redis://db:6379/0"));
        assert!(!looks_like_credential("DOCS", "https://user@example.com/x"));
    }

    #[test]
    fn the_persons_additions_and_exceptions() {
        let scrub = Scrub {
            scrub: vec!["corp_*".into(), "LICENSE_SERVER".into()],
            keep: vec!["GITHUB_TOKEN".into()],
        };
        assert!(scrub.hides("CORP_BUILD_ID", "1"));
        assert!(scrub.hides("license_server", "host"));
        assert!(!scrub.hides("GITHUB_TOKEN", "ghp_x"));
        assert!(scrub.hides("GH_TOKEN", "ghp_x"));
        assert!(!scrub.hides("PATH", "/bin"));
        assert!(matches("A*B*C", "AxxBxxC"));
        assert!(!matches("A*B*C", "AxxC"));
    }
}
