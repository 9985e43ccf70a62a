//! containers/storage's lists of containers, which podman and CRI-O share:
//! `<graphroot>/<driver>-containers/containers.json` and, for containers
//! created `Volatile` (CRI-O's since 1.22; kept apart by containers/storage
//! 1.45+), `volatile-containers.json` next to it, or both under the runroot
//! with `transient_store` (containers/storage `containers.go`,
//! `newContainerStore`, `jsonPath`). Each is a JSON array of `{id, names,
//! image, metadata}`, `metadata` being a JSON string the runtime wrote
//! (podman `libpod/storage.go`, `RuntimeContainerMetadata`; CRI-O
//! `internal/storage/runtime.go`). The store writes a list whole and
//! renames it into place, so a reader sees one complete version.
//!
//! A list holds every container on the node: it is parsed once per version
//! of the file (device, inode, size, mtime), not once per victim.

use std::{collections::HashMap, fs, os::unix::fs::MetadataExt, path::Path, path::PathBuf, sync::Arc};

use super::{read_json, reason, roots::Storage};

/// One container of a list, as this reader uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Entry {
    pub names: Vec<String>,
    pub metadata: Metadata,
}

/// The runtime's `metadata` string, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub(super) struct Metadata {
    #[serde(default, rename = "image-name")]
    pub image_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// CRI-O: the sandbox's `k8s_<pod>_<namespace>_<uid>_<attempt>` name.
    #[serde(default, rename = "pod-name")]
    pub pod_name: Option<String>,
    /// CRI-O: the container's own name in the pod spec (a sandbox's is
    /// its pod's name).
    #[serde(default, rename = "metadata-name")]
    pub metadata_name: Option<String>,
    /// CRI-O: the entry is a pod's sandbox (infra container).
    #[serde(default)]
    pub pod: bool,
}

#[derive(serde::Deserialize)]
struct RawEntry {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    metadata: String,
}

/// A version of a file, as the kernel dates it.
type FileKey = (u64, u64, u64, i64, i64);

fn file_key(path: &Path) -> std::io::Result<FileKey> {
    let m = fs::metadata(path)?;
    Ok((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The lists read so far, each with the version it was read at.
#[derive(Default)]
pub(super) struct Lists {
    parsed: HashMap<PathBuf, (FileKey, Arc<HashMap<String, Entry>>)>,
}

impl Lists {
    /// The entry for container `id` in the list at `path`; the error is a
    /// note's reason (missing, unreadable, damaged).
    pub fn entry(&mut self, path: &Path, id: &str) -> Result<Option<Entry>, String> {
        let key = file_key(path).map_err(|e| reason(&e))?;
        if let Some((k, entries)) = self.parsed.get(path) {
            if *k == key {
                return Ok(entries.get(id).cloned());
            }
        }
        let raw: Vec<RawEntry> = read_json(path)?;
        let entries: HashMap<String, Entry> = raw
            .into_iter()
            .map(|r| {
                // A metadata string that does not parse leaves the names.
                let metadata = serde_json::from_str(&r.metadata).unwrap_or_default();
                (r.id, Entry { names: r.names, metadata })
            })
            .collect();
        let found = entries.get(id).cloned();
        // Only the lists of one node's runtimes are ever asked for.
        if self.parsed.len() > 16 {
            self.parsed.clear();
        }
        self.parsed.insert(path.to_path_buf(), (key, Arc::new(entries)));
        Ok(found)
    }

    /// The version of the list at `path` that is parsed, if any.
    #[cfg(test)]
    pub fn version_of(&self, path: &Path) -> Option<FileKey> {
        self.parsed.get(path).map(|(k, _)| *k)
    }

    /// Container `id` in the first of the node's lists that has it:
    /// `containers.json`, then `volatile-containers.json`, under the
    /// graphroot and then the runroot. `Err` holds a note: why no list had it.
    pub fn find(&mut self, storage: &Storage, id: &str) -> Result<Entry, String> {
        let mut problems = Vec::new();
        let mut absent = 0;
        let lists: Vec<PathBuf> = [&storage.graph, &storage.run]
            .into_iter()
            .flat_map(|root| {
                let dir = storage.containers(root);
                [dir.join("containers.json"), dir.join("volatile-containers.json")]
            })
            .collect();
        for path in &lists {
            match self.entry(path, id) {
                Ok(Some(entry)) => return Ok(entry),
                Ok(None) => {}
                Err(why) if why == "not found" => absent += 1,
                Err(why) => problems.push(format!("{}: {why}", path.display())),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let dir = storage.containers(&storage.graph);
        Err(if absent == lists.len() {
            format!("{}: no containers.json (nor volatile-containers.json)", dir.display())
        } else {
            format!("no entry for {id} in {}/{{containers,volatile-containers}}.json", dir.display())
        })
    }
}
