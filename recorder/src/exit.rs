//! The process exit codes, in one place so they mean the same thing for every
//! command (scripts branch on them).

/// 0: done. 1: the asked-for record does not exist. 2: usage or runtime error
/// (clap also exits 2 on a usage error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    NotFound = 1,
    Error = 2,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}
