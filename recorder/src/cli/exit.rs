//! The process exit codes, in one place so they mean the same thing for every
//! command (scripts branch on them).

/// 0: done. 1: the asked-for record does not exist, or (`status`) the
/// daemon is not running, lost something, or its audit does not match.
/// 2: usage or runtime error (clap also exits 2 on a usage error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    NotFound,
    /// `status` found something to look at.
    Attention,
    Error,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(match exit {
            Exit::Ok => 0,
            Exit::NotFound | Exit::Attention => 1,
            Exit::Error => 2,
        })
    }
}
