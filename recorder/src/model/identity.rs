//! Who the victim was, in the names SREs use, from its cgroup path alone (no
//! API server): Kubernetes pod and container, QoS class, Docker, podman,
//! CRI-O, LXC, and systemd units, slices and sessions. The names a path does
//! not carry (pod namespace and name, container name, image, and for
//! containerd the runtime itself) come from files the node keeps
//! (`sources::cgroup::runtimes`).
//!
//! Path shapes (cgroup v1 and v2 alike; docs/runtimes.md cites the source
//! of each):
//! - kubelet, systemd driver: `/kubepods.slice/kubepods-<qos>.slice/
//!   kubepods-<qos>-pod<uid with _>.slice/<runtime>-<id>.scope` (guaranteed
//!   pods lack the `<qos>` level and part), runtime `cri-containerd`, `crio`
//!   or `docker`;
//! - kubelet, cgroupfs driver: `/kubepods/<qos>/pod<uid>/<id>` (containerd,
//!   cri-dockerd) or `…/pod<uid>/crio-<id>` (CRI-O: no `.scope`);
//! - Docker: `/docker/<id>`, `/system.slice/docker-<id>.scope`;
//! - podman: `/libpod_parent/libpod-<id>` (cgroupfs),
//!   `/machine.slice/libpod-<id>.scope` (systemd); `libpod-conmon-<id>.scope`
//!   and `conmon` are its monitor, not the container;
//! - CRI-O: `crio-<id>` (cgroupfs), `crio-<id>.scope` (systemd);
//!   `crio-conmon-<id>[.scope]` is its monitor;
//! - containerd without CRI (`ctr`, nerdctl): `/<namespace>/<id>`, or under
//!   systemd whatever `slice:prefix:name` was asked for
//!   (`/system.slice/<prefix>-<name>.scope`). Neither shape says
//!   "containerd": [`containerd_candidates`] lists what the path could be,
//!   and containerd's own files decide;
//! - LXC: `/lxc/<name>`, `/lxc.payload.<name>` (LXC 4+);
//! - systemd: `….service`, `….scope` (`session-N.scope`), `….slice`.

/// Its serde form is the store's `container_json` column only (the JSON
/// output is built key by key, model::json). The names `list` filters on
/// have columns of their own (store::rows `IDENTITY_COLUMNS`): the column
/// leaves them out, and unknown names too, and a row is read back with
/// them from their columns; rows stored before migration 010 hold them in
/// both, and read the same. A kubepods kill's column went from 405 bytes
/// to about 100.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// `containerd`, `cri-o`, `docker`, `podman`, `lxc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The container id (64 hex digits for OCI runtimes; the name for LXC).
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
    #[serde(default, skip_serializing)]
    pub pod_uid: Option<String>,
    /// `guaranteed`, `burstable` or `besteffort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    #[serde(default, skip_serializing)]
    pub pod_namespace: Option<String>,
    #[serde(default, skip_serializing)]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing)]
    pub container_name: Option<String>,
    /// The image as the runtime names it (`nginx:1.25`,
    /// `docker.io/library/nginx:1.25`), from its files at the kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The innermost systemd service or scope.
    #[serde(default, skip_serializing)]
    pub unit: Option<String>,
    /// The innermost systemd slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
    /// The runtime's own namespace the container lives in: containerd's
    /// (`default`, `k8s.io`, `moby`, …). Not the pod's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_namespace: Option<String>,
    /// Why a name is unknown: a runtime's file that was missing, unreadable
    /// or damaged at the kill (`podman: …/containers.json: no entry for …`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Identity {
    /// Adds a note once.
    pub fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

pub(crate) fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `<prefix>-<id>.scope` → id, for 64-hex ids.
fn scope_id<'a>(segment: &'a str, prefix: &str) -> Option<&'a str> {
    segment.strip_prefix(prefix)?.strip_prefix('-')?.strip_suffix(".scope").filter(|id| is_container_id(id))
}

/// `<prefix>-<id>` → id, for 64-hex ids: the cgroupfs leaves of podman
/// (`libpod-<id>`, podman `libpod/container_internal_linux.go`,
/// `getOCICgroupPath`) and CRI-O (`crio-<id>`, cri-o
/// `internal/config/cgmgr/cgmgr_linux.go`, `containerCgroupPath`). Their
/// monitors' `…-conmon-<id>` never match: `conmon-<id>` is not an id.
fn cgroupfs_id<'a>(segment: &'a str, prefix: &str) -> Option<&'a str> {
    segment.strip_prefix(prefix)?.strip_prefix('-').filter(|id| is_container_id(id))
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid with _>.slice`
/// (systemd, where the uid's dashes became underscores).
fn pod_uid(segment: &str) -> Option<String> {
    if let Some(uid) = segment.strip_prefix("pod") {
        return Some(uid.to_owned()).filter(|u| u.len() >= 32);
    }
    let inner = segment.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
    let at = inner.rfind("pod")?;
    Some(inner[at + 3..].replace('_', "-")).filter(|u| u.len() >= 32)
}

/// What a cgroup path alone says of the victim, `None` when it says
/// nothing (a path outside any container, pod or unit).
pub fn named_by_path(path: &str) -> Option<Identity> {
    Some(from_path(path)).filter(|id| *id != Identity::default())
}

/// Parses the identity out of a cgroup path. Pure.
pub fn from_path(path: &str) -> Identity {
    let mut id = Identity::default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let kubepods = segments.first().is_some_and(|s| *s == "kubepods" || *s == "kubepods.slice");
    for (i, segment) in segments.iter().enumerate() {
        let segment = *segment;
        if segment.ends_with(".slice") {
            id.slice = Some(segment.to_owned());
        } else if segment.ends_with(".service") || segment.ends_with(".scope") {
            id.unit = Some(segment.to_owned());
        }
        if kubepods {
            match segment {
                "burstable" | "besteffort" => id.qos = Some(segment.to_owned()),
                s if s.starts_with("kubepods-burstable") => id.qos = Some("burstable".into()),
                s if s.starts_with("kubepods-besteffort") => id.qos = Some("besteffort".into()),
                _ => {}
            }
            if let Some(uid) = pod_uid(segment) {
                id.pod_uid = Some(uid);
                // Pods outside a QoS level are guaranteed (kubelet's QoS tree).
                id.qos.get_or_insert_with(|| "guaranteed".into());
            }
        }
        for (prefix, runtime) in
            [("cri-containerd", "containerd"), ("crio", "cri-o"), ("docker", "docker"), ("libpod", "podman")]
        {
            if let Some(cid) = scope_id(segment, prefix) {
                id.runtime = Some(runtime.into());
                id.id = Some(cid.to_owned());
            }
        }
        for (prefix, runtime) in [("crio", "cri-o"), ("libpod", "podman")] {
            if let Some(cid) = cgroupfs_id(segment, prefix) {
                id.runtime = Some(runtime.into());
                id.id = Some(cid.to_owned());
            }
        }
        // cgroupfs drivers: the container id is a bare segment.
        if is_container_id(segment) && i > 0 {
            let parent = segments[i - 1];
            id.id = Some(segment.to_owned());
            if parent == "docker" {
                id.runtime = Some("docker".into());
            }
        }
        if segment == "lxc" {
            if let Some(name) = segments.get(i + 1) {
                id.runtime = Some("lxc".into());
                id.id = Some((*name).to_owned());
            }
        } else if let Some(name) = segment.strip_prefix("lxc.payload.") {
            id.runtime = Some("lxc".into());
            id.id = Some(name.to_owned());
        }
    }
    id
}

/// A containerd container a cgroup path may be, before containerd's own
/// files say whether it is one: the namespace when the shape names it, and
/// the container id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub namespace: Option<String>,
    pub id: String,
}

/// containerd's identifiers (namespaces and container ids alike):
/// `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters (containerd
/// `identifiers/validate.go`). Also what keeps a path segment from naming
/// anything but one directory.
pub fn is_containerd_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 76
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !b.windows(2).any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
}

/// systemd unit suffixes: a segment with one is a unit, not a containerd name.
fn is_unit(segment: &str) -> bool {
    [".slice", ".scope", ".service", ".mount", ".socket", ".swap"].iter().any(|s| segment.ends_with(s))
}

/// The containerd containers the victim's cgroup may be, given what
/// [`from_path`] made of it (none when the path names another runtime):
/// - CRI under a kubelet (a bare id or `cri-containerd-<id>.scope` under a
///   pod): namespace `k8s.io`, the CRI plugin's only one (containerd
///   `pkg/cri/constants/constants.go`, `K8sContainerdNamespace`);
/// - `ctr`'s and nerdctl's default `/<namespace>/<id>`, exactly two segments
///   (containerd `oci/spec.go`, `populateDefaultUnixSpec`);
/// - under systemd, a `<prefix>-<name>.scope` leaf, which runc makes from a
///   `slice:prefix:name` cgroupsPath (runc
///   `libcontainer/cgroups/systemd/common.go`, `getUnitName`): each split of
///   the scope's name at a `-` gives a candidate id in any namespace
///   (`ctr --cgroup system.slice:default:<id>`, nerdctl's
///   `system.slice:nerdctl:<id>`).
///
/// Only candidates: the caller keeps one whose recorded cgroupsPath is this
/// path, so a `session-4.scope` never becomes container `4`.
pub fn containerd_candidates(path: &str, identity: &Identity) -> Vec<Candidate> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let k8s = |id: &str| vec![Candidate { namespace: Some("k8s.io".into()), id: id.to_owned() }];
    match (identity.runtime.as_deref(), identity.id.as_deref()) {
        (Some("containerd"), Some(id)) => return k8s(id),
        (Some(_), _) => return Vec::new(),
        (None, Some(id)) if identity.pod_uid.is_some() => return k8s(id),
        (None, _) => {}
    }
    if let [namespace, id] = segments[..] {
        if !is_unit(namespace)
            && !is_unit(id)
            && is_containerd_identifier(namespace)
            && is_containerd_identifier(id)
        {
            return vec![Candidate { namespace: Some(namespace.to_owned()), id: id.to_owned() }];
        }
    }
    let Some(stem) = segments.last().and_then(|s| s.strip_suffix(".scope")) else { return Vec::new() };
    stem.match_indices('-')
        .map(|(at, _)| &stem[at + 1..])
        .filter(|id| is_containerd_identifier(id))
        .take(8)
        .map(|id| Candidate { namespace: None, id: id.to_owned() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
    const UID: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

    fn uid_underscored() -> String {
        UID.replace('-', "_")
    }

    #[test]
    fn kubernetes_systemd_driver() {
        for (runtime_prefix, runtime) in
            [("cri-containerd", "containerd"), ("crio", "cri-o"), ("docker", "docker")]
        {
            let path = format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/{runtime_prefix}-{CID}.scope",
                uid_underscored()
            );
            let id = from_path(&path);
            assert_eq!(id.runtime.as_deref(), Some(runtime), "{path}");
            assert_eq!(id.id.as_deref(), Some(CID));
            assert_eq!(id.pod_uid.as_deref(), Some(UID));
            assert_eq!(id.qos.as_deref(), Some("burstable"));
            assert_eq!(id.unit, Some(format!("{runtime_prefix}-{CID}.scope")));
        }
        let guaranteed = from_path(&format!(
            "/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{CID}.scope",
            uid_underscored()
        ));
        assert_eq!(guaranteed.qos.as_deref(), Some("guaranteed"));
        assert_eq!(guaranteed.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn kubernetes_cgroupfs_driver() {
        let id = from_path(&format!("/kubepods/besteffort/pod{UID}/{CID}"));
        assert_eq!(
            (id.qos.as_deref(), id.pod_uid.as_deref(), id.id.as_deref()),
            (Some("besteffort"), Some(UID), Some(CID))
        );
        let guaranteed = from_path(&format!("/kubepods/pod{UID}/{CID}"));
        assert_eq!(guaranteed.qos.as_deref(), Some("guaranteed"));
        assert_eq!(id.unit, None);
    }

    #[test]
    fn docker_podman_lxc() {
        let docker = from_path(&format!("/docker/{CID}"));
        assert_eq!((docker.runtime.as_deref(), docker.id.as_deref()), (Some("docker"), Some(CID)));
        let docker_systemd = from_path(&format!("/system.slice/docker-{CID}.scope"));
        assert_eq!(
            (docker_systemd.runtime.as_deref(), docker_systemd.slice.as_deref()),
            (Some("docker"), Some("system.slice"))
        );
        let podman = from_path(&format!("/machine.slice/libpod-{CID}.scope/container"));
        assert_eq!((podman.runtime.as_deref(), podman.id.as_deref()), (Some("podman"), Some(CID)));
        let rootless = from_path(&format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope"
        ));
        assert_eq!(rootless.runtime.as_deref(), Some("podman"));
        let conmon = from_path(&format!("/machine.slice/libpod-conmon-{CID}.scope"));
        assert_eq!(conmon.runtime, None, "conmon is podman's monitor, not the container");
        let lxc = from_path("/lxc/web01");
        assert_eq!((lxc.runtime.as_deref(), lxc.id.as_deref()), (Some("lxc"), Some("web01")));
        let lxc4 = from_path("/lxc.payload.db01/init.scope");
        assert_eq!((lxc4.runtime.as_deref(), lxc4.id.as_deref()), (Some("lxc"), Some("db01")));
    }

    #[test]
    fn podman_and_cri_o_under_the_cgroupfs_driver() {
        // podman's cgroupfs leaf has no .scope (libpod_parent/libpod-<id>),
        // nor does CRI-O's (<pod cgroup>/crio-<id>).
        let podman = from_path(&format!("/libpod_parent/libpod-{CID}"));
        assert_eq!((podman.runtime.as_deref(), podman.id.as_deref()), (Some("podman"), Some(CID)));
        let podman_pod = from_path(&format!("/libpod_parent/{}/libpod-{CID}", "b".repeat(64)));
        assert_eq!(podman_pod.id.as_deref(), Some(CID), "the container, not its pod");
        let crio = from_path(&format!("/kubepods/burstable/pod{UID}/crio-{CID}"));
        assert_eq!(
            (crio.runtime.as_deref(), crio.id.as_deref(), crio.pod_uid.as_deref(), crio.unit),
            (Some("cri-o"), Some(CID), Some(UID), None)
        );
        let crio_default = from_path(&format!("/crio/crio-{CID}"));
        assert_eq!(crio_default.runtime.as_deref(), Some("cri-o"));
        // Their monitors are not containers.
        for conmon in [
            format!("/kubepods/burstable/pod{UID}/crio-conmon-{CID}"),
            format!("/system.slice/crio-conmon-{CID}.scope"),
            format!("/libpod_parent/libpod-conmon-{CID}"),
            "/libpod_parent/conmon".to_owned(),
        ] {
            let id = from_path(&conmon);
            assert_eq!((id.runtime, id.id), (None, None), "{conmon}");
        }
    }

    fn candidates(path: &str) -> Vec<(Option<String>, String)> {
        containerd_candidates(path, &from_path(path)).into_iter().map(|c| (c.namespace, c.id)).collect()
    }

    #[test]
    fn what_a_path_could_be_in_containerd() {
        let k8s = |id: &str| vec![(Some("k8s.io".to_owned()), id.to_owned())];
        assert_eq!(candidates(&format!("/kubepods/burstable/pod{UID}/{CID}")), k8s(CID));
        assert_eq!(
            candidates(&format!(
                "/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{CID}.scope",
                uid_underscored()
            )),
            k8s(CID)
        );
        assert_eq!(candidates("/default/web-1"), [(Some("default".to_owned()), "web-1".to_owned())]);
        assert_eq!(
            candidates("/system.slice/default-web-1.scope"),
            [(None, "web-1".to_owned()), (None, "1".to_owned())]
        );
        // Other runtimes' shapes, units and odd names are nobody's here.
        for none in [
            format!("/docker/{CID}"),
            format!("/machine.slice/libpod-{CID}.scope"),
            format!("/kubepods/pod{UID}/crio-{CID}"),
            "/system.slice/cron.service".into(),
            "/user.slice/user-1000.slice".into(),
            "/a/b/c".into(),
            "/default/..".into(),
            "/default/-x".into(),
            "/".into(),
        ] {
            assert_eq!(candidates(&none), [], "{none}");
        }
        assert!(is_containerd_identifier("k8s.io") && is_containerd_identifier("a_b-c.d"));
        for bad in ["", "-a", "a-", "a..b", "a/b", "..", &"a".repeat(77)] {
            assert!(!is_containerd_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn systemd_units_slices_and_sessions() {
        let service = from_path("/system.slice/postgresql@15-main.service");
        assert_eq!(service.unit.as_deref(), Some("postgresql@15-main.service"));
        assert_eq!(service.slice.as_deref(), Some("system.slice"));
        assert_eq!(service.runtime, None);
        let session = from_path("/user.slice/user-1000.slice/session-4.scope");
        assert_eq!(session.unit.as_deref(), Some("session-4.scope"));
        assert_eq!(session.slice.as_deref(), Some("user-1000.slice"));
        assert_eq!(from_path("/"), Identity::default());
        assert_eq!(from_path(""), Identity::default());
    }
}
