//! Issue 18: string commands run with the person's login environment, captured once, without the
//! login profile's noise. The profile here does what pyenv's does under a sandbox — writes where
//! it may not and complains on stderr — and exports a variable, a `PATH` entry and a token.

use cox_testkit::{MockServer, Script, Turn};

use crate::harness::*;

const PROFILE: &str = r#"export FROM_PROFILE=profile-was-read
export PATH="$HOME/bin:$PATH"
export SERVICE_TOKEN=ghp_abcdefghijklmnopqrstuvwx12345
mktemp "/proc/cox-login-noise.XXXXXX" || true
echo "pyenv: cannot rehash: profile noise" >&2
touch "$HOME/profile-ran-$$"
"#;

#[test]
fn string_commands_get_the_login_environment_without_its_noise() {
    let env = Env::new();
    let home = env.home.parent().unwrap().to_path_buf();
    fs_err::write(home.join(".bash_profile"), PROFILE).unwrap();
    fs_err::create_dir_all(home.join("bin")).unwrap();
    let tool = home.join("bin/profile-tool");
    fs_err::write(&tool, "#!/bin/sh\necho profile-tool ran\n").unwrap();
    fs_err::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let line = r#"echo "var=$FROM_PROFILE token=[$SERVICE_TOKEN]"; profile-tool"#;
    let turns = vec![
        Turn::call("shell", &serde_json::json!({ "command": line }).to_string()),
        Turn::call(
            "shell",
            &serde_json::json!({ "command": "echo second: $FROM_PROFILE" }).to_string(),
        ),
        Turn::call(
            "shell",
            &serde_json::json!({ "command": ["sh", "-c", "echo argv: [$FROM_PROFILE]"] })
                .to_string(),
        ),
        Turn::text(&["Done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "check the environment"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = &tool_outputs(&server, 1)[0];
    assert!(first.contains("var=profile-was-read"), "{first}");
    assert!(first.contains("profile-tool ran"), "{first}");
    // The token the profile exports is a credential: commands do not get it.
    assert!(first.contains("token=[]"), "{first}");
    for noise in ["profile noise", "mktemp", "cannot rehash"] {
        assert!(!first.contains(noise), "{noise} in {first}");
    }
    let second = tool_outputs(&server, 2).join("\n");
    assert!(second.contains("second: profile-was-read"), "{second}");
    // Once per session, not once per command.
    let runs = fs_err::read_dir(&home)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("profile-ran-")
        })
        .count();
    assert_eq!(runs, 1, "the login profile ran {runs} times");
    // An argv command runs with cox's own environment, as before.
    let third = tool_outputs(&server, 3).join("\n");
    assert!(third.contains("argv: []"), "{third}");
}
