//! Telling the service manager the daemon is ready (`Type=notify`,
//! sd_notify(3)): READY=1 once the eBPF program is attached.

use std::ffi::OsStr;

/// The variable systemd sets for a `Type=notify` service.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Whether there is a service manager to tell: sd_notify(3) does nothing
/// when `$NOTIFY_SOCKET` is unset *or empty* (a shell's `NOTIFY_SOCKET=`,
/// a container runtime passing the variable through blank), and neither
/// is worth a warning.
fn has_socket(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Sends READY=1 when there is a socket to send it to; a socket that is
/// named but cannot be reached is worth a warning (systemd would then
/// wait for a readiness that never comes).
pub fn ready() {
    if !has_socket(std::env::var_os(NOTIFY_SOCKET).as_deref()) {
        return;
    }
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        log::warn!("could not notify the service manager (READY=1): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_notify_socket_is_no_socket() {
        assert!(!has_socket(None));
        assert!(!has_socket(Some(OsStr::new(""))));
        assert!(has_socket(Some(OsStr::new("/run/systemd/notify"))));
        assert!(has_socket(Some(OsStr::new("@abstract"))));
    }
}
