//! The log: off unless `COX_LOG` names a filter (`debug`, `info`, `cox_core=trace,warn`, …); then
//! `tracing` events of every crate go to `$COX_HOME/logs/cox-YYYY-MM-DD.log` (appended), never to
//! the terminal, which belongs to the UI and the progress printer. What is logged is chosen where
//! it is emitted: ids, names, kinds, counts, durations and statuses — never prompts, arguments,
//! outputs, headers or keys, so no secret reaches the log.

use std::str::FromStr;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::exit::Failure;

/// The variable that turns the log on.
pub const VARIABLE: &str = "COX_LOG";

/// Starts the log when `COX_LOG` asks for it. A filter that does not parse, or a log file that
/// cannot be opened, is an error (exit 2) rather than a run without the log that was asked for.
pub fn init() -> Result<(), Failure> {
    let Some(spec) = std::env::var_os(VARIABLE).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let spec = spec.to_string_lossy().into_owned();
    let mut filter = Targets::from_str(&spec).map_err(|e| {
        Failure::usage(
            format!("{VARIABLE}=`{spec}` is not a log filter: {e}"),
            "use a level (error, warn, info, debug, trace) or target=level pairs, e.g. COX_LOG=cox_core=debug,info",
        )
    })?;
    // The HTTP and TLS crates' trace level shows what goes over the wire; they stop at debug
    // unless named, so `COX_LOG=trace` cannot put a request's headers (the key) in the log.
    for wire in ["hyper", "hyper_util", "reqwest", "h2", "rustls"] {
        if !spec.contains(wire) {
            filter = filter.with_target(wire, tracing_subscriber::filter::LevelFilter::DEBUG);
        }
    }
    let dir = cox_core::config::cox_home()?.join("logs");
    let date = cox_core::timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let path = dir.join(format!("cox-{}.log", &date[..10]));
    let open = || -> std::io::Result<fs_err::File> {
        fs_err::create_dir_all(&dir)?;
        fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
    };
    let file = open().map_err(|e| {
        Failure::usage(
            format!("{VARIABLE}: cannot open the log: {e}"),
            "check that COX_HOME is writable, or unset COX_LOG",
        )
    })?;
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file.into_parts().0));
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|e| Failure::usage(format!("{VARIABLE}: {e}"), "unset COX_LOG"))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "cox started"
    );
    Ok(())
}
