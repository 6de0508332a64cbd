//! Shell completions (`cox completions SHELL`) and man pages (`cox __man --dir DIR`, which
//! `scripts/package` ships), both generated from the clap definition, so they cannot drift from
//! the command line.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::args::Cli;
use crate::exit::{self, Failure};

/// Written whole to stdout; a reader that stops early (`| head`) ends it quietly, as with any
/// Unix tool (clap_complete's own writer panics on a closed pipe).
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "cox", &mut script);
    use std::io::Write;
    match std::io::stdout().lock().write_all(&script) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::usage(
            format!("cannot write the completion script: {e}"),
            "redirect it to a file: cox completions bash > cox.bash",
        )),
    }
}

/// `cox.1`, and `cox-NAME.1` for each command a person uses (the internal ones are left out).
pub fn man_pages(dir: &Path) -> Result<ExitCode, Failure> {
    let unwritable = |e: std::io::Error| {
        Failure::usage(
            format!(
                "cannot write the man pages into {}: {}",
                dir.display(),
                exit::os_reason(&e)
            ),
            "give --dir a writable directory",
        )
    };
    fs_err::create_dir_all(dir).map_err(unwritable)?;
    let command = Cli::command();
    let mut written = Vec::new();
    let mut pages = vec![("cox".to_string(), command.clone())];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("cox-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name)));
    }
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut roff)
            .map_err(unwritable)?;
        let path = dir.join(format!("{name}.1"));
        fs_err::write(&path, roff).map_err(unwritable)?;
        written.push(path);
    }
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
