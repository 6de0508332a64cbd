//! Exit codes (`docs/contracts.md`): 0 done; 1 the task failed; 2 bad usage or input; 3 provider
//! error (auth, network, quota, missing key); 130 interrupted.

use std::process::ExitCode;

use cox_core::Error;

pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const PROVIDER: u8 = 3;
pub const INTERRUPTED: u8 = 130;

/// The operating system's reason in an I/O error, without the path `fs-err` adds (for messages
/// that name the file themselves).
pub fn os_reason(error: &std::io::Error) -> String {
    std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string)
}

/// The exit code of a session or plan run that ended with `status`.
pub fn status_code(status: cox_protocol::SessionStatus) -> ExitCode {
    use cox_protocol::SessionStatus;
    ExitCode::from(match status {
        SessionStatus::Completed => 0,
        SessionStatus::Failed => FAILED,
        SessionStatus::ProviderError => PROVIDER,
        SessionStatus::Interrupted => INTERRUPTED,
    })
}

/// An error that ends the program before or outside a session, with what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure {
            code: USAGE,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        if let Some(hint) = self.hint {
            eprintln!("hint: {hint}");
        }
        ExitCode::from(self.code)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::MissingKey { .. } | Error::Model(_) => PROVIDER,
            Error::Io(_) | Error::Journal(_) | Error::Checkpoint { .. } | Error::Undo(_) => FAILED,
            _ => USAGE,
        };
        Failure {
            code,
            message: error.to_string(),
            hint: None,
        }
    }
}
