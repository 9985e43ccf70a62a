//! `oomrecorder run`.

use std::path::Path;

use clap::Args;

use crate::{
    daemon::{self, DaemonConfig},
    exit::Exit,
};

#[derive(Debug, Args)]
pub struct RunArgs {}

pub fn run(db: &Path, _args: &RunArgs) -> anyhow::Result<Exit> {
    daemon::run(&DaemonConfig { db: db.to_path_buf() })?;
    Ok(Exit::Ok)
}
