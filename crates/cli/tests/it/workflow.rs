//! The two-phase workflow on a fixture Node.js service (`tests/fixtures/node-service`): `cox plan`
//! writes a plan, `cox run` executes it with scripted edits, killed twice with SIGKILL — after step
//! 1's edit and in the middle of step 2 — and resumed each time. Every edit lands exactly once and
//! the plan file ends with every step done.

use std::path::Path;
use std::process::Stdio;

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

fn copy_fixture(from: &Path, to: &Path) {
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            fs_err::create_dir_all(&target).unwrap();
            copy_fixture(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), target).unwrap();
        }
    }
}

fn patch(text: &str) -> Turn {
    Turn::call(
        "apply_patch",
        &serde_json::json!({ "input": text }).to_string(),
    )
}

const PLAN: &str = r#"{"goal": "Migrate src/routes from callbacks to async/await", "constraints": ["Keep public function names", "Keep the legacy wrapper; mark it @deprecated"], "context": ["docs/architecture.md"], "steps": [{"id": "S1", "title": "Convert getUser to async", "files": ["src/routes/users.js"], "targets": ["getUser"]}, {"id": "S2", "title": "Deprecate queryCallback", "files": ["src/utils/db-helper.js"], "depends_on": ["S1"]}]}"#;

const STEP1: &str = "*** Begin Patch\n*** Update File: src/routes/users.js\n@@\n-function getUser(req, res) {\n-  db.queryCallback('SELECT * FROM users WHERE id = ?', [req.params.id], function (err, rows) {\n-    if (err) return res.status(500).send(err.message);\n-    res.json(rows[0]);\n-  });\n-}\n+async function getUser(req, res) {\n+  try {\n+    const rows = await db.query('SELECT * FROM users WHERE id = ?', [req.params.id]);\n+    res.json(rows[0]);\n+  } catch (err) {\n+    res.status(500).send(err.message);\n+  }\n+}\n*** End Patch\n";

const STEP2: &str = "*** Begin Patch\n*** Update File: src/utils/db-helper.js\n@@\n+/** @deprecated Use `query` with async/await. */\n function queryCallback(sql, params, callback) {\n*** End Patch\n";

fn slow_check(name: &str) -> Turn {
    Turn::call(
        "shell",
        &format!(r#"{{"command":["sh","-c","echo {name} >> checks.log; sleep 30"]}}"#),
    )
}

#[test]
fn plan_then_run_a_fixture_service_through_two_kills() {
    let env = Env::new();
    copy_fixture(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node-service"),
        &env.repo,
    );
    let turns = vec![
        // cox plan
        Turn::call("read_file", r#"{"path":"src/routes/users.js"}"#),
        Turn::text(&[PLAN]),
        // cox run, step 1: the edit, then a check that the first kill interrupts
        patch(STEP1),
        slow_check("s1"),
        // resumed step 1
        Turn::text(&["getUser is async now."]),
        // step 2: the edit, a check that the second kill interrupts
        patch(STEP2),
        slow_check("s2"),
        Turn::text(&["queryCallback is deprecated."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();

    let planned = run(env.cox_with(&server).args([
        "plan",
        "Analyze src/routes/*.js. Follow @docs/architecture.md. Output a migration plan as JSON.",
    ]));
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    let prompt = server.requests()[0].body["input"][0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.contains("<file path=\"docs/architecture.md\">"),
        "{prompt}"
    );
    fs_err::write(env.repo.join("plan.json"), stdout(&planned)).unwrap();

    let kill_when = |file: &str, needle: &str| {
        let mut child = env
            .cox_with(&server)
            .args(["run", "--plan", "plan.json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(needle, || {
            fs_err::read_to_string(env.repo.join(file)).is_ok_and(|t| t.contains(needle))
        });
        child.kill().unwrap();
        child.wait().unwrap();
    };
    kill_when("checks.log", "s1");
    let plan: Value =
        serde_json::from_str(&fs_err::read_to_string(env.repo.join("plan.json")).unwrap()).unwrap();
    assert_eq!(
        plan["steps"][0]["status"], "in_progress",
        "killed in step 1, after its edit"
    );
    kill_when("checks.log", "s2");
    let finished = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(finished.status.code(), Some(0), "{}", stderr(&finished));

    let users = fs_err::read_to_string(env.repo.join("src/routes/users.js")).unwrap();
    assert_eq!(
        users.matches("async function getUser").count(),
        1,
        "{users}"
    );
    assert!(!users.contains("queryCallback"));
    let helper = fs_err::read_to_string(env.repo.join("src/utils/db-helper.js")).unwrap();
    assert_eq!(helper.matches("@deprecated").count(), 1, "{helper}");
    assert_eq!(
        fs_err::read_to_string(env.repo.join("checks.log")).unwrap(),
        "s1\ns2\n",
        "no command ran twice"
    );
    let plan: Value =
        serde_json::from_str(&fs_err::read_to_string(env.repo.join("plan.json")).unwrap()).unwrap();
    assert!(
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "done"),
        "{plan}"
    );
    assert_eq!(
        plan["constraints"][1],
        "Keep the legacy wrapper; mark it @deprecated"
    );
}
