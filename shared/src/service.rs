//! What the service binaries' `main` functions share: the `healthcheck` subcommand and turning
//! start-up and run results into logged errors and exit codes.

use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

/// The `healthcheck` subcommand: exit 0 when `url` answers 200 (for container health checks
/// without curl).
pub fn healthcheck(url: &str) -> ExitCode {
    match crate::health::probe(url, Duration::from_secs(2)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The built service, or the failure exit code after reporting why `service` could not start.
pub fn started<T, E: Display>(service: &str, result: Result<T, E>) -> Result<T, ExitCode> {
    result.map_err(|err| {
        tracing::error!(error = %err, "{service} failed to start");
        eprintln!("error: {err}");
        ExitCode::FAILURE
    })
}

/// The exit code for the end of `service`'s run, reporting a failure.
pub fn finished<E: Display>(service: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "{service} failed");
            ExitCode::FAILURE
        }
    }
}
