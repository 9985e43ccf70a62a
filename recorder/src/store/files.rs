//! The store's files on disk, and who may read them.
//!
//! Kill records name processes, users and (in full mode) command lines, so
//! the database and the WAL and SHM files SQLite keeps beside it are created
//! owner-only, 0600, whatever the umask; with a configured group, 0640 in
//! that group, as journald gives `systemd-journal` its files. SQLite creates
//! `-wal` and `-shm` with the main file's mode and owner
//! (`findCreateFileMode` in os_unix.c), so the main file is created here,
//! before SQLite opens it. A directory the store creates is 0700 (0750 in
//! the group); the package's state directory is brought to that mode at
//! every start. Any other existing directory is the administrator's and is
//! left as it is.

use std::{
    fs, io,
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::StoreError;
use crate::config::{Group, DEFAULT_DB};

/// Who besides the owner may read the history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sharing {
    /// A group that may read it (`group` in the configuration file).
    pub group: Option<Group>,
}

impl Sharing {
    /// The mode of the database and its WAL and SHM files.
    pub fn file_mode(&self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }

    /// The mode of a directory the store creates (and of the state directory).
    pub fn dir_mode(&self) -> u32 {
        if self.group.is_some() {
            0o750
        } else {
            0o700
        }
    }
}

/// `path` with `suffix` appended to its file name (`x.db` → `x.db-wal`).
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The database and the files SQLite keeps beside it, in that order.
pub(super) fn companions(path: &Path) -> [PathBuf; 3] {
    [path.to_path_buf(), with_suffix(path, "-wal"), with_suffix(path, "-shm")]
}

/// Refuses what can never be a database file: an empty path (SQLite would
/// open a temporary database that vanishes at exit) or a directory.
pub fn check_path(path: &Path) -> Result<(), StoreError> {
    if path.as_os_str().is_empty() {
        return Err(StoreError::EmptyPath);
    }
    if path.is_dir() {
        return Err(StoreError::IsDirectory { path: path.to_path_buf() });
    }
    Ok(())
}

/// Before a read-only open: the file exists, and this user may read it (a
/// clear line saying who may, instead of "no database" or SQLite's
/// "unable to open database file").
pub(super) fn check_readable(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(_) => match fs::File::open(path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(no_access(path)),
            Err(_) => Ok(()), // SQLite says what it is
        },
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(no_access(path)),
        Err(_) => Err(StoreError::Missing { path: path.to_path_buf() }),
    }
}

/// The error for a user who may not read the history: who may.
pub(super) fn no_access(path: &Path) -> StoreError {
    StoreError::NoAccess { path: path.to_path_buf(), who: who_may_read(path) }
}

/// Who may read `path`, from the modes this user can see: the file's if it
/// can be looked at, else the first directory on the way that shuts others out.
pub fn who_may_read(path: &Path) -> String {
    let describe = |what: &str, p: &Path, meta: &fs::Metadata| {
        let mode = meta.mode() & 0o7777;
        let owner = user_name(meta.uid());
        let group = group_name(meta.gid());
        let readers = if mode & 0o004 != 0 {
            "everyone".to_owned()
        } else if mode & 0o040 != 0 {
            format!("{owner} and the members of group {group}")
        } else {
            format!("{owner} only")
        };
        format!("{readers} ({what} {} is mode {mode:04o}, owner {owner}, group {group})", p.display())
    };
    if let Ok(meta) = fs::metadata(path) {
        return describe("the file", path, &meta);
    }
    let mut dir = path.parent();
    let mut found = None;
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(meta) = fs::metadata(d) {
            if meta.mode() & 0o001 == 0 {
                found = Some(describe("the directory", d, &meta));
            }
        }
        dir = d.parent();
    }
    found.unwrap_or_else(|| "its owner".to_owned())
}

fn user_name(uid: u32) -> String {
    // SAFETY: getpwuid returns NULL or a pointer to a static entry whose
    // pw_name is a NUL-terminated string; it is copied before any other call.
    let name = unsafe {
        let entry = libc::getpwuid(uid);
        (!entry.is_null()).then(|| std::ffi::CStr::from_ptr((*entry).pw_name).to_string_lossy().into_owned())
    };
    name.unwrap_or_else(|| format!("uid {uid}"))
}

fn group_name(gid: u32) -> String {
    // SAFETY: as in user_name, for getgrgid's static entry.
    let name = unsafe {
        let entry = libc::getgrgid(gid);
        (!entry.is_null()).then(|| std::ffi::CStr::from_ptr((*entry).gr_name).to_string_lossy().into_owned())
    };
    name.unwrap_or_else(|| format!("gid {gid}"))
}

/// Before a read-write open: the directories exist (created with the
/// store's mode), the database file exists with its mode and group, and the
/// WAL and SHM files left by an earlier run have them too.
pub(super) fn prepare(path: &Path, sharing: &Sharing) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir, sharing)?;
        if dir == Path::new(DEFAULT_DB).parent().unwrap_or(Path::new("/")) {
            set_mode(dir, sharing.dir_mode(), sharing);
        }
    }
    let created = fs::OpenOptions::new().write(true).create_new(true).mode(sharing.file_mode()).open(path);
    match created {
        Ok(_) => set_mode(path, sharing.file_mode(), sharing),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            for file in companions(path).iter().filter(|f| f.exists()) {
                set_mode(file, sharing.file_mode(), sharing);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(no_access(path)),
        // Read-only file system and the like: SQLite's open names it.
        Err(_) => {}
    }
    Ok(())
}

/// Creates `dir` and its missing parents with the store's mode (not the umask's).
fn create_dirs(dir: &Path, sharing: &Sharing) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent, sharing)?;
    }
    match fs::DirBuilder::new().mode(sharing.dir_mode()).create(dir) {
        Ok(()) => {
            set_mode(dir, sharing.dir_mode(), sharing);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(source) => Err(StoreError::CreateDir { path: dir.to_path_buf(), source }),
    }
}

/// Gives `path` exactly `mode` and the sharing group. A failure is logged,
/// not fatal: the file still records, and the log says who can read it.
fn set_mode(path: &Path, mode: u32, sharing: &Sharing) {
    let Ok(meta) = fs::metadata(path) else { return };
    if let Some(group) = &sharing.group {
        if meta.gid() != group.gid {
            if let Err(e) = std::os::unix::fs::chown(path, None, Some(group.gid)) {
                log::warn!(
                    "cannot give {} to group {} ({e}): only its owner can read it \
                     (the service needs SupplementaryGroups={} or CAP_CHOWN)",
                    path.display(),
                    group.name,
                    group.name
                );
                return;
            }
        }
    }
    if meta.mode() & 0o7777 != mode {
        if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
            log::warn!("cannot set {} to mode {mode:04o}: {e}", path.display());
        }
    }
}

/// Renames a damaged database aside with its WAL and SHM files, as journald
/// does with a corrupt journal (`system.journal~`): `NAME~corrupt-TIME`,
/// `NAME~corrupt-TIME-wal`, `NAME~corrupt-TIME-shm`, so that `sqlite3` opens
/// the copy with its WAL. Nothing is deleted. Returns the new name.
pub(super) fn set_aside(path: &Path, time: &str) -> io::Result<PathBuf> {
    let mut n = 0;
    let aside = loop {
        let suffix = if n == 0 { format!("~corrupt-{time}") } else { format!("~corrupt-{time}.{n}") };
        let candidate = with_suffix(path, &suffix);
        if !companions(&candidate).iter().any(|p| p.exists()) {
            break candidate;
        }
        n += 1;
    };
    // The WAL and SHM first: a database renamed without its WAL would lose
    // the commits still in it if anything opened it meanwhile.
    let from = companions(path);
    let to = companions(&aside);
    for (from, to) in from.iter().zip(&to).rev() {
        match fs::rename(from, to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && from != path => {}
            Err(e) => return Err(e),
        }
    }
    Ok(aside)
}

/// Space kept free for the moment the disk fills: a file of its own beside
/// the database (`NAME~reserve`), deleted when a write fails for lack of
/// room, so the run's row can still say what waits and why (journald
/// keeps free space for the same reason: `SystemKeepFree=`). Taken again
/// once writes succeed.
pub struct Reserve {
    path: PathBuf,
    bytes: u64,
    mode: u32,
    held: bool,
}

impl Reserve {
    /// How much is kept: room for the run row's updates and a few loss rows
    /// (each WAL frame is one 4 KiB page), small enough for a tiny disk.
    pub const BYTES: u64 = 128 * 1024;

    pub fn beside(db: &Path, sharing: &Sharing) -> Reserve {
        Reserve {
            path: with_suffix(db, "~reserve"),
            bytes: Reserve::BYTES,
            mode: sharing.file_mode(),
            held: false,
        }
    }

    /// Allocates the space (real blocks, not a sparse file); false when the
    /// disk has no room for it now.
    pub fn take(&mut self) -> bool {
        if self.held {
            return true;
        }
        let file =
            fs::OpenOptions::new().write(true).create(true).truncate(false).mode(self.mode).open(&self.path);
        let allocated = file.and_then(|f| {
            let len = libc::off_t::try_from(self.bytes).unwrap_or(libc::off_t::MAX);
            // SAFETY: posix_fallocate on a file descriptor owned by `f`.
            match unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, len) } {
                0 => f.sync_all(),
                rc => Err(io::Error::from_raw_os_error(rc)),
            }
        });
        match allocated {
            Ok(()) => self.held = true,
            Err(e) => {
                log::debug!("cannot keep {} bytes free in {}: {e}", self.bytes, self.path.display());
                let _ = fs::remove_file(&self.path);
            }
        }
        self.held
    }

    /// Frees the space; true when there was some to free.
    pub fn release(&mut self) -> bool {
        std::mem::take(&mut self.held) && fs::remove_file(&self.path).is_ok()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_and_its_directory_are_owner_only_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state/sub/oom.db");
        // SAFETY: umask(2) only sets this process's mask; restored below.
        let old = unsafe { libc::umask(0) };
        let result = prepare(&db, &Sharing::default());
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        result.unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.path().join("state/sub")), 0o700);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        // A file left 0644 by an earlier version, and its WAL, are tightened.
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(with_suffix(&db, "-wal"), b"").unwrap();
        fs::set_permissions(with_suffix(&db, "-wal"), fs::Permissions::from_mode(0o666)).unwrap();
        prepare(&db, &Sharing::default()).unwrap();
        assert_eq!((mode(&db), mode(&with_suffix(&db, "-wal"))), (0o600, 0o600));
    }

    #[test]
    fn a_group_may_read_when_one_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new/oom.db");
        // This process's own group: no privilege needed to give it a file.
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        let sharing = Sharing { group: Some(Group { name: "own".into(), gid }) };
        prepare(&db, &sharing).unwrap();
        let meta = fs::metadata(&db).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.gid()), (0o640, gid));
        assert_eq!(fs::metadata(dir.path().join("new")).unwrap().mode() & 0o7777, 0o750);
    }

    #[test]
    fn the_reserve_holds_real_space_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("oom.db");
        let mut reserve = Reserve::beside(&db, &Sharing::default());
        assert!(reserve.take() && reserve.take(), "taken once, held after");
        let meta = fs::metadata(reserve.path()).unwrap();
        assert_eq!((meta.len(), meta.mode() & 0o777), (Reserve::BYTES, 0o600));
        assert!(meta.blocks() * 512 >= Reserve::BYTES, "allocated, not sparse: {} blocks", meta.blocks());
        assert!(reserve.release() && !reserve.path().exists());
        assert!(!reserve.release(), "nothing left to free");
    }

    #[test]
    fn empty_paths_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(check_path(Path::new("")), Err(StoreError::EmptyPath)));
        assert!(matches!(check_path(dir.path()), Err(StoreError::IsDirectory { .. })));
        assert!(check_path(&dir.path().join("x.db")).is_ok());
    }

    #[test]
    fn a_damaged_database_goes_aside_with_its_wal_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("oom.db");
        fs::write(&db, b"main").unwrap();
        fs::write(with_suffix(&db, "-wal"), b"wal").unwrap();
        let aside = set_aside(&db, "20260101T000000Z").unwrap();
        assert_eq!(aside, dir.path().join("oom.db~corrupt-20260101T000000Z"));
        assert_eq!(fs::read(&aside).unwrap(), b"main");
        assert_eq!(fs::read(with_suffix(&aside, "-wal")).unwrap(), b"wal");
        assert!(!db.exists() && !with_suffix(&db, "-wal").exists());
        // The same second again: a new name, the first copy untouched.
        fs::write(&db, b"second").unwrap();
        let again = set_aside(&db, "20260101T000000Z").unwrap();
        assert_eq!(again, dir.path().join("oom.db~corrupt-20260101T000000Z.1"));
        assert_eq!(fs::read(&aside).unwrap(), b"main");
    }
}
