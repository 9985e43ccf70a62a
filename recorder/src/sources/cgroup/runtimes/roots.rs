//! Where each runtime keeps its files: the defaults, moved by the runtime's
//! own configuration file when it says so (docs/runtimes.md, "Data roots").
//! Read at each kill: three small files, and a runtime configured after the
//! recorder started is then followed.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::under;
use crate::model::identity::Identity;

/// containers/storage's directories (podman and CRI-O share them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Storage {
    /// `graphroot`: persistent, `<graphroot>/<driver>-containers/`.
    pub graph: PathBuf,
    /// `runroot`: volatile (tmpfs), bundles and the transient store.
    pub run: PathBuf,
    /// The storage driver, which names the directories (`overlay`).
    pub driver: String,
}

impl Storage {
    /// `<root>/<driver>-containers` (containers/storage `store.go`,
    /// `newContainerStore` under `<driver>-containers`).
    pub fn containers(&self, root: &Path) -> PathBuf {
        root.join(format!("{}-containers", self.driver))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Containerd {
    /// `root`: `io.containerd.metadata.v1.bolt/meta.db`.
    pub root: PathBuf,
    /// `state`: the task bundles, `io.containerd.runtime.v2.task/<ns>/<id>/`.
    pub state: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Roots {
    /// Docker's `data-root`.
    pub docker: PathBuf,
    pub storage: Storage,
    pub containerd: Containerd,
    /// A configuration file that could not be read: (runtime, note).
    notes: Vec<(&'static str, String)>,
}

impl Roots {
    /// The directories under the node's `root`.
    pub fn read(root: &Path) -> Roots {
        let mut notes = Vec::new();
        let mut config = |runtime: &'static str, file: &str| -> Option<String> {
            let path = under(root, Path::new(file));
            match fs::read_to_string(&path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    notes.push((
                        runtime,
                        format!("{}: {}; default directories used", path.display(), super::reason(&e)),
                    ));
                    None
                }
            }
        };
        let docker_conf = config("docker", "/etc/docker/daemon.json");
        let storage_conf = config("containers/storage", "/etc/containers/storage.conf");
        let containerd_conf = config("containerd", "/etc/containerd/config.toml");
        let mut bad = |runtime: &'static str, file: &str, e: String| {
            notes.push((runtime, format!("{file}: {e}; default directories used")));
        };

        // moby `daemon/config/config.go`: `data-root` (formerly `graph`).
        let mut docker = PathBuf::from("/var/lib/docker");
        if let Some(text) = docker_conf {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => {
                    if let Some(dir) = v["data-root"].as_str().or(v["graph"].as_str()) {
                        docker = PathBuf::from(dir);
                    }
                }
                Err(e) => bad("docker", "/etc/docker/daemon.json", e.to_string()),
            }
        }

        // containers/storage `docs/containers-storage.conf.5.md`: `[storage]
        // driver, graphroot, runroot`.
        let mut storage = Storage {
            graph: PathBuf::from("/var/lib/containers/storage"),
            run: PathBuf::from("/run/containers/storage"),
            driver: "overlay".into(),
        };
        if let Some(text) = storage_conf {
            match text.parse::<toml::Table>() {
                Ok(t) => {
                    let s = t.get("storage").and_then(|s| s.as_table());
                    let key =
                        |k: &str| s.and_then(|s| s.get(k)).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
                    if let Some(v) = key("graphroot") {
                        storage.graph = PathBuf::from(v);
                    }
                    if let Some(v) = key("runroot") {
                        storage.run = PathBuf::from(v);
                    }
                    if let Some(v) = key("driver").filter(|d| d.bytes().all(|b| b.is_ascii_alphanumeric())) {
                        storage.driver = v.to_owned();
                    }
                }
                Err(e) => bad("containers/storage", "/etc/containers/storage.conf", e.message().to_owned()),
            }
        }

        // containerd `services/server/config/config.go`: top-level `root`, `state`.
        let mut containerd = Containerd {
            root: PathBuf::from("/var/lib/containerd"),
            state: PathBuf::from("/run/containerd"),
        };
        if let Some(text) = containerd_conf {
            match text.parse::<toml::Table>() {
                Ok(t) => {
                    if let Some(v) = t.get("root").and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
                        containerd.root = PathBuf::from(v);
                    }
                    if let Some(v) = t.get("state").and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
                        containerd.state = PathBuf::from(v);
                    }
                }
                Err(e) => bad("containerd", "/etc/containerd/config.toml", e.message().to_owned()),
            }
        }

        Roots {
            docker: under(root, &docker),
            storage: Storage {
                graph: under(root, &storage.graph),
                run: under(root, &storage.run),
                ..storage
            },
            containerd: Containerd {
                root: under(root, &containerd.root),
                state: under(root, &containerd.state),
            },
            notes,
        }
    }

    /// The notes about the configuration of the victim's runtime.
    pub fn note_for(&self, identity: &mut Identity) {
        let runtime = match identity.runtime.as_deref() {
            Some("podman" | "cri-o") => "containers/storage".to_owned(),
            Some(r) => r.to_owned(),
            None => return,
        };
        for (r, note) in &self.notes {
            if *r == runtime {
                identity.note(format!("{r}: {note}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_what_the_configuration_files_move() {
        let root = tempfile::tempdir().unwrap();
        let defaults = Roots::read(root.path());
        assert_eq!(defaults.docker, root.path().join("var/lib/docker"));
        assert_eq!(
            defaults.storage.containers(&defaults.storage.graph),
            root.path().join("var/lib/containers/storage/overlay-containers")
        );
        assert_eq!(defaults.containerd.state, root.path().join("run/containerd"));
        assert!(defaults.notes.is_empty());

        for dir in ["etc/docker", "etc/containers", "etc/containerd"] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        fs::write(root.path().join("etc/docker/daemon.json"), r#"{"data-root": "/data/docker"}"#).unwrap();
        fs::write(
            root.path().join("etc/containers/storage.conf"),
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"/data/storage\"\n",
        )
        .unwrap();
        fs::write(
            root.path().join("etc/containerd/config.toml"),
            "version = 2\nroot = \"/data/containerd\"\n",
        )
        .unwrap();
        let moved = Roots::read(root.path());
        assert_eq!(moved.docker, root.path().join("data/docker"));
        assert_eq!(
            moved.storage.containers(&moved.storage.graph),
            root.path().join("data/storage/vfs-containers")
        );
        assert_eq!(moved.storage.run, root.path().join("run/containers/storage"), "not moved");
        assert_eq!(moved.containerd.root, root.path().join("data/containerd"));
        assert_eq!(moved.containerd.state, root.path().join("run/containerd"), "not moved");

        // A file that does not parse: the defaults, and a note for that
        // runtime's victims only.
        fs::write(root.path().join("etc/containerd/config.toml"), "root = [unclosed\n").unwrap();
        let broken = Roots::read(root.path());
        assert_eq!(broken.containerd.root, root.path().join("var/lib/containerd"));
        let mut containerd = Identity { runtime: Some("containerd".into()), ..Identity::default() };
        broken.note_for(&mut containerd);
        assert_eq!(containerd.notes.len(), 1, "{:?}", containerd.notes);
        assert!(
            containerd.notes[0].starts_with("containerd: /etc/containerd/config.toml: "),
            "{:?}",
            containerd.notes
        );
        let mut docker = Identity { runtime: Some("docker".into()), ..Identity::default() };
        broken.note_for(&mut docker);
        assert!(docker.notes.is_empty());
    }
}
