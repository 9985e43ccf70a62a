//! The names a cgroup path does not carry, from the files the node keeps,
//! read right after the kill (several go with the container): each
//! runtime's own record of the container for its name and image (and for
//! containerd whether it is containerd's at all), then the kubelet's log
//! directories for pods. docs/runtimes.md says which file holds what, in
//! which format, for how long.
//!
//! Every reader takes the node's root directory (tests point it at fixture
//! trees). A runtime's file that is missing, unreadable or damaged leaves
//! the name `None` and adds a note to the identity, never an error; a note
//! is only added for the runtime the victim belongs to.

mod containerd;
mod crio;
mod docker;
mod kubelet;
mod podman;
mod roots;
mod storage;

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
};

use crate::model::identity::{self, is_container_id, Identity};

/// Reads the node's files for each victim, and keeps what is costly to read
/// again (containerd's database, containers/storage's lists) until the file
/// changes.
pub struct Runtimes {
    root: PathBuf,
    containerd: containerd::MetaDb,
    lists: storage::Lists,
}

impl Runtimes {
    /// `root` is the node's `/` (a fake tree in tests).
    pub fn new(root: &Path) -> Runtimes {
        Runtimes {
            root: root.to_path_buf(),
            containerd: containerd::MetaDb::default(),
            lists: storage::Lists::default(),
        }
    }

    /// Who the victim in memory cgroup `cgroup_path` was: the path's shape
    /// (`identity::from_path`), then the runtime's and the kubelet's files.
    pub fn identify(&mut self, cgroup_path: &str) -> Identity {
        let mut id = identity::from_path(cgroup_path);
        self.enrich(&mut id, cgroup_path);
        id
    }

    /// Adds the names the node's files give to `id`, which is what
    /// [`identity::from_path`] made of `cgroup_path`.
    pub fn enrich(&mut self, id: &mut Identity, cgroup_path: &str) {
        let roots = roots::Roots::read(&self.root);
        match id.runtime.as_deref() {
            Some("docker") => docker::enrich(id, &roots.docker, docker::Missing::Note),
            Some("podman") => podman::enrich(id, &roots.storage, &mut self.lists),
            Some("cri-o") => crio::enrich(id, &roots.storage, &mut self.lists),
            Some("containerd") | None => {
                let candidates = identity::containerd_candidates(cgroup_path, id);
                let found =
                    containerd::enrich(id, cgroup_path, &candidates, &roots.containerd, &mut self.containerd);
                // A bare id under a pod that containerd does not know:
                // cri-dockerd's (Docker under a kubelet), if anyone's.
                if !found && id.runtime.is_none() && id.pod_uid.is_some() {
                    if let Some(cid) = id.id.clone().filter(|c| is_container_id(c)) {
                        docker::enrich(id, &roots.docker, docker::Missing::Quiet);
                        if id.runtime.is_none() {
                            id.note(format!(
                                "container {cid}: neither containerd nor Docker has a record of it"
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        roots.note_for(id);
        kubelet::enrich(id, &self.root);
    }
}

/// `/an/absolute/path` under the node's root.
fn under(root: &Path, absolute: &Path) -> PathBuf {
    root.join(absolute.strip_prefix("/").unwrap_or(absolute))
}

/// Runtime files read whole are small (a spec, a list of containers);
/// anything larger than this is not one.
const MAX_FILE: u64 = 64 << 20;

/// Why a file gave nothing, for a note.
fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "not found".into(),
        _ => format!("unreadable: {e}"),
    }
}

/// A whole JSON file; the error is a note's reason.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| reason(&e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("larger than {} MiB", MAX_FILE >> 20));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("not the JSON expected: {e}"))
}

/// What an OCI runtime spec (a bundle's `config.json`, containerd's stored
/// spec) says about identity (opencontainers/runtime-spec `config.md`:
/// `annotations`; `config-linux.md`: `linux.cgroupsPath`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
struct OciSpec {
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    linux: Option<OciLinux>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
struct OciLinux {
    #[serde(default, rename = "cgroupsPath")]
    cgroups_path: Option<String>,
}

impl OciSpec {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn cgroups_path(&self) -> Option<&str> {
        self.linux.as_ref()?.cgroups_path.as_deref()
    }
}

/// The cgroup directory a spec's `linux.cgroupsPath` names: a path as it is
/// (cgroupfs driver), or runc's systemd form `slice:prefix:name`, which is
/// unit `<prefix>-<name>.scope` under the slice's expanded path (runc
/// `libcontainer/cgroups/systemd/common.go`: `ExpandSlice` turns
/// `a-b.slice` into `/a.slice/a-b.slice`; an empty slice is `system.slice`;
/// `getUnitName`).
fn cgroup_dir(cgroups_path: &str) -> Option<String> {
    if cgroups_path.starts_with('/') || !cgroups_path.contains(':') {
        let p = cgroups_path.trim_end_matches('/');
        return Some(if p.starts_with('/') { p.to_owned() } else { format!("/{p}") });
    }
    let mut parts = cgroups_path.splitn(3, ':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let mut dir = String::new();
    let stem = slice.strip_suffix(".slice").filter(|s| !s.contains('/'))?;
    if stem != "-" {
        let mut so_far = String::new();
        for component in stem.split('-') {
            if component.is_empty() {
                return None;
            }
            so_far.push_str(component);
            dir.push('/');
            dir.push_str(&so_far);
            dir.push_str(".slice");
            so_far.push('-');
        }
    }
    let unit = if name.ends_with(".slice") { name.to_owned() } else { format!("{prefix}-{name}.scope") };
    Some(format!("{dir}/{unit}"))
}

/// Whether a spec's cgroupsPath is the victim's cgroup.
fn same_cgroup(cgroups_path: &str, victim: &str) -> bool {
    cgroup_dir(cgroups_path).is_some_and(|dir| dir == victim.trim_end_matches('/'))
}

/// The kubelet's names for a container, as runtimes copy its labels
/// (kubernetes `staging/src/k8s.io/kubelet/pkg/types/labels.go`).
const K8S_CONTAINER_NAME: &str = "io.kubernetes.container.name";
const K8S_POD_NAME: &str = "io.kubernetes.pod.name";
const K8S_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const K8S_POD_UID: &str = "io.kubernetes.pod.uid";

/// Sets `field` to `value` unless it is known already (the cgroup path and
/// the runtime's own record come first).
fn fill(field: &mut Option<String>, value: Option<&str>) {
    if field.is_none() {
        *field = value.filter(|v| !v.is_empty()).map(str::to_owned);
    }
}

#[cfg(test)]
mod tests;
