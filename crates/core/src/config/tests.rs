//! Configuration resolution: file, overrides, providers, roles, the local provider's settings.

use super::*;

fn load(toml_text: &str, overrides: Overrides) -> Result<Config, Error> {
    let dir = std::env::temp_dir().join(format!(
        "cox-config-{}-{}",
        std::process::id(),
        fastish_id()
    ));
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join("config.toml"), toml_text).unwrap();
    Config::load(&dir, &overrides)
}

fn local(toml_text: &str, overrides: &Overrides) -> Result<cox_model::local::LocalSettings, Error> {
    let file: ConfigFile = toml::from_str(toml_text).unwrap();
    let name = overrides
        .provider
        .clone()
        .unwrap_or_else(|| LOCAL_PROVIDER.into());
    let (provider, _) = resolve_provider(&name, &file.providers)?;
    resolve_local(&provider, file.providers.get(&name), overrides, true)
        .map(|settings| settings.unwrap())
}

#[test]
fn local_settings_resolve_and_are_checked() {
    let home = std::env::var("HOME").unwrap();
    let settings = local(
        "[providers.local]\nmodel_path = \"~/m/q.gguf\"\ncontext_size = 4096\nthreads = 3\ntemperature = 0.7\nseed = 9\ntool_choice = \"required-first\"\n",
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(settings.model_path, PathBuf::from(home).join("m/q.gguf"));
    assert_eq!(
        (
            settings.context_size,
            settings.threads,
            settings.temperature,
            settings.seed
        ),
        (Some(4096), Some(3), 0.7, 9)
    );
    assert_eq!(
        settings.tool_choice,
        cox_model::local::ToolChoice::RequiredFirst
    );
    // --model-path beats the file; defaults otherwise.
    let cli = Overrides {
        model_path: Some("other.gguf".into()),
        ..Overrides::default()
    };
    let settings = local("[providers.local]\nmodel_path = \"a.gguf\"\n", &cli).unwrap();
    assert_eq!(settings, cox_model::local::LocalSettings::new("other.gguf"));
    for (text, needle) in [
        (
            "[providers.local]\nmodel_path = \"a.gguf\"\ntemperature = 3.0\n",
            "temperature = 3 is out of range",
        ),
        (
            "[providers.local]\nmodel_path = \"a.gguf\"\nthreads = 0\n",
            "threads = 0",
        ),
        (
            "[providers.local]\nmodel_path = \"a.gguf\"\ncontext_size = 100\n",
            "context_size = 100 is too small",
        ),
        ("", "the local provider needs a model file"),
    ] {
        let err = local(text, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
    let file: ConfigFile = toml::from_str("").unwrap();
    let (provider, _) = resolve_provider(LOCAL_PROVIDER, &file.providers).unwrap();
    let err = resolve_local(&provider, None, &cli, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("built without the `local` provider") && err.contains("--features local"),
        "{err}"
    );
}

#[test]
fn a_local_model_is_named_after_its_file() {
    let overrides = Overrides {
        model_path: Some("/models/qwen2.5-coder-7b-q4_k_m.gguf".into()),
        ..Overrides::default()
    };
    match (cox_model::local::BUILT, load("", overrides)) {
        // This build has the feature: the path implies the local provider.
        (true, Ok(config)) => {
            assert_eq!(config.provider.name, "local");
            assert_eq!(config.provider.kind, ProviderKind::Local);
            assert_eq!(config.model, "qwen2.5-coder-7b-q4_k_m");
        }
        (false, Err(err)) => assert!(err.to_string().contains("--features local"), "{err}"),
        (built, other) => panic!("built with local: {built}, but: {other:?}"),
    }
}

fn fastish_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn defaults_to_openai_and_codex_model() {
    let config = load("", Overrides::default()).unwrap();
    assert_eq!(config.provider.name, "openai");
    assert_eq!(config.provider.wire, Wire::Responses);
    assert_eq!(config.model, "gpt-5.3-codex");
    assert_eq!(config.max_turns, 100);
    assert_eq!(config.retry.idle_timeout, Duration::from_secs(120));
}

#[test]
fn custom_provider_and_overrides() {
    let text = "[providers.corp]\nwire = \"chat\"\nbase_url = \"http://10.0.0.1:9000/v1\"\napi_key_env = \"CORP_KEY\"\nmodel = \"corp-coder\"\n";
    let overrides = Overrides {
        provider: Some("corp".into()),
        settings: vec!["max_turns=7".into(), "stream_idle_timeout_ms=500".into()],
        ..Overrides::default()
    };
    let config = load(text, overrides).unwrap();
    assert_eq!(config.provider.wire, Wire::Chat);
    assert_eq!(config.provider.base_url, "http://10.0.0.1:9000/v1");
    assert_eq!(config.provider.api_key_env.as_deref(), Some("CORP_KEY"));
    assert!(config.provider.requires_key);
    assert_eq!(config.model, "corp-coder");
    assert_eq!(config.max_turns, 7);
    assert_eq!(config.retry.idle_timeout, Duration::from_millis(500));
}

#[test]
fn dotted_override_reaches_provider_table() {
    let overrides = Overrides {
        provider: Some("ollama".into()),
        model: Some("qwen".into()),
        settings: vec!["providers.ollama.base_url=http://127.0.0.1:9/v1".into()],
        ..Overrides::default()
    };
    let config = load("", overrides).unwrap();
    assert_eq!(config.provider.base_url, "http://127.0.0.1:9/v1");
    assert!(!config.provider.requires_key);
}

#[test]
fn rejects_unknown_key_provider_and_missing_model() {
    let err = load("max_turn = 5\n", Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("max_turn"), "{err}");
    let unknown = Overrides {
        provider: Some("nope".into()),
        ..Overrides::default()
    };
    let err = load("", unknown).unwrap_err();
    assert!(err.to_string().contains("unknown provider `nope`"), "{err}");
    let no_model = Overrides {
        provider: Some("ollama".into()),
        ..Overrides::default()
    };
    assert!(
        load("", no_model)
            .unwrap_err()
            .to_string()
            .contains("-m MODEL")
    );
    let bad = Overrides {
        settings: vec!["novalue".into()],
        ..Overrides::default()
    };
    assert!(load("", bad).unwrap_err().to_string().contains("key=value"));
}
