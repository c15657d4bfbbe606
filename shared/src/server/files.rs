//! Open files and the connection cap. Every client connection is a file descriptor: a cap above
//! the process's `RLIMIT_NOFILE` is never reached (so eviction never starts) while `accept`
//! fails for lack of descriptors, and slow clients can then hold every descriptor. So the
//! services raise their soft limit to the hard one at start (as nginx's
//! `worker_rlimit_nofile` does), keep every listener's cap below what is left, and treat a
//! failed `accept` for lack of descriptors as being at the cap.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// Descriptors a service needs besides client connections: the runtime, NATS, listeners, logs,
/// the outgoing connections of exporters.
pub const OTHER_FILES: u64 = 64;

/// Raises the soft limit of open files to the hard limit (or to 1,048,576, Linux's usual
/// ceiling, when the hard limit is unlimited) and returns the soft limit in force afterwards;
/// `None` where there is no such limit to read.
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let target = limit.maximum.unwrap_or(1 << 20);
        let current = limit.current.unwrap_or(u64::MAX);
        if current >= target {
            return Some(current);
        }
        let raised = Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(from = current, to = target, "raised the open-files limit");
                Some(target)
            }
            Err(err) => {
                tracing::warn!(limit = current, error = %err, "cannot raise the open-files limit");
                Some(current)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The soft limit of open files now (`None` where there is none).
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Caps for listeners that want `wanted` connections each, shrunk proportionally so that
/// together they stay below `open_files` minus [`OTHER_FILES`] (each keeps at least 1).
pub fn fit_caps(wanted: &[usize], open_files: Option<u64>) -> Vec<usize> {
    let Some(open_files) = open_files else {
        return wanted.to_vec();
    };
    let available =
        usize::try_from(open_files.saturating_sub(OTHER_FILES).max(2)).unwrap_or(usize::MAX);
    let total: usize = wanted.iter().sum();
    if total <= available {
        return wanted.to_vec();
    }
    wanted
        .iter()
        .map(|&cap| {
            let share = (cap as u128 * available as u128 / total.max(1) as u128) as usize;
            share.clamp(1, cap.max(1))
        })
        .collect()
}

/// Whether a failed `accept` means the process (or the system) ran out of descriptors or
/// buffers: the listener is then as good as at its cap.
pub fn out_of_files(err: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
            .iter()
            .any(|errno| err.raw_os_error() == Some(errno.raw_os_error()))
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// How often running out of descriptors is logged (the rest is counted into the next line).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Logs running out of descriptors at warn level, at most once per [`WARN_EVERY`].
#[derive(Debug, Default)]
pub struct OutOfFilesLog {
    last: Option<Instant>,
    left_out: u64,
}

impl OutOfFilesLog {
    pub fn record(&mut self, listener: &'static str, err: &io::Error) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + WARN_EVERY) {
            self.left_out += 1;
            return;
        }
        self.last = Some(now);
        tracing::warn!(
            listener,
            error = %err,
            limit = open_files_limit(),
            repeated = std::mem::take(&mut self.left_out),
            "out of file descriptors: treated as at the connection cap (raise the open-files \
             limit or lower MAX_CONNECTIONS)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_shrink_to_fit_the_descriptors_left_and_stay_at_least_one() {
        assert_eq!(fit_caps(&[8192, 256], None), vec![8192, 256]);
        assert_eq!(fit_caps(&[8192, 256], Some(1 << 20)), vec![8192, 256]);
        let fitted = fit_caps(&[8192, 256], Some(1024));
        assert!(
            fitted.iter().sum::<usize>() <= 1024 - OTHER_FILES as usize,
            "{fitted:?}"
        );
        assert!(fitted[0] > 800 && fitted[1] >= 1, "{fitted:?}");
        assert_eq!(fit_caps(&[8192, 256], Some(10)), vec![1, 1]);
    }

    #[test]
    fn running_out_of_descriptors_is_recognised() {
        assert!(out_of_files(&io::Error::from_raw_os_error(24)));
        assert!(!out_of_files(&io::Error::from_raw_os_error(104)));
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let raised = raise_open_files_limit();
        assert_eq!(raised, open_files_limit());
    }
}
