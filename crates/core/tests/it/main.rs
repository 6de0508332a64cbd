//! cox-core driven as an embedder would: through its handles, against the scripted mock model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mcp;
mod plan_run;
mod session;

/// The configuration of a provider `mock` at the scripted server, as `config.toml` under `home`
/// gives it (no key needed).
pub fn mock_config(home: &std::path::Path, server: &cox_testkit::MockServer) -> cox_core::Config {
    fs_err::create_dir_all(home).unwrap();
    fs_err::write(
        home.join("config.toml"),
        format!(
            "retry_base_delay_ms = 10\n\n[providers.mock]\nwire = \"chat\"\nbase_url = \"{}/v1\"\nrequires_key = false\nmodel = \"mock-model\"\n",
            server.url()
        ),
    )
    .unwrap();
    let overrides = cox_core::Overrides {
        provider: Some("mock".into()),
        ..cox_core::Overrides::default()
    };
    cox_core::Config::load(home, &overrides).unwrap()
}
