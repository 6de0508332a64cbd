//! `cox-mock-model --script FILE [--port N]`: the scripted mock model as a standalone server, for
//! manual runs and benchmarks. Prints its URL on stdout, then serves until killed; each request is
//! summarised on stderr.

use std::time::Duration;

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut script_path = None;
    let mut port = 0u16;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--script" => script_path = args.next(),
            "--port" => {
                let value = args.next().context("--port needs a number")?;
                port = value
                    .parse()
                    .with_context(|| format!("--port: not a port number: {value}"))?;
            }
            "-h" | "--help" => {
                println!("usage: cox-mock-model --script FILE [--port N]");
                return Ok(());
            }
            other => {
                bail!("unknown argument {other:?}; usage: cox-mock-model --script FILE [--port N]")
            }
        }
    }
    let Some(path) = script_path else {
        bail!("missing --script FILE; usage: cox-mock-model --script FILE [--port N]");
    };
    let text =
        fs_err::read_to_string(&path).with_context(|| format!("cannot read script {path}"))?;
    let script = Script::from_json(&text).with_context(|| format!("invalid script {path}"))?;
    let turns = script.turns.len();
    let server = MockServer::start_on(script, port).context("cannot start the mock server")?;
    println!("{}", server.url());
    eprintln!("mock model: serving {turns} scripted turns from {path}");
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let requests = server.requests();
        for request in &requests[seen..] {
            eprintln!(
                "mock model: {} ({} bytes of JSON)",
                request.path,
                request.body.to_string().len()
            );
        }
        seen = requests.len();
    }
}
