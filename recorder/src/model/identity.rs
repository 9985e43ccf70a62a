//! Who the victim was, in the names SREs use, from its cgroup path alone (no
//! API server): Kubernetes pod and container, QoS class, Docker, podman,
//! LXC, and systemd units, slices and sessions. The names a path does not
//! carry (pod namespace and name, container name, Docker name and image) come
//! from files the node keeps (`sources::cgroup::runtimes`).
//!
//! Path shapes (cgroup v1 and v2 alike):
//! - kubelet, systemd driver: `/kubepods.slice/kubepods-<qos>.slice/
//!   kubepods-<qos>-pod<uid with _>.slice/<runtime>-<id>.scope` (guaranteed
//!   pods lack the `<qos>` level and part), runtime `cri-containerd`, `crio`
//!   or `docker`;
//! - kubelet, cgroupfs driver: `/kubepods/<qos>/pod<uid>/<id>`;
//! - Docker: `/docker/<id>`, `/system.slice/docker-<id>.scope`;
//! - podman: `…/libpod-<id>.scope` (`libpod-conmon-<id>.scope` is its monitor);
//! - LXC: `/lxc/<name>`, `/lxc.payload.<name>` (LXC 4+);
//! - systemd: `….service`, `….scope` (`session-N.scope`), `….slice`.

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// `containerd`, `cri-o`, `docker`, `podman`, `lxc`.
    pub runtime: Option<String>,
    /// The container id (64 hex digits for OCI runtimes; the name for LXC).
    pub id: Option<String>,
    pub pod_uid: Option<String>,
    /// `guaranteed`, `burstable` or `besteffort`.
    pub qos: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub container_name: Option<String>,
    /// Docker image, from the container's config.
    pub image: Option<String>,
    /// The innermost systemd service or scope.
    pub unit: Option<String>,
    /// The innermost systemd slice.
    pub slice: Option<String>,
}

pub(crate) fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `<prefix>-<id>.scope` → id, for 64-hex ids.
fn scope_id<'a>(segment: &'a str, prefix: &str) -> Option<&'a str> {
    segment.strip_prefix(prefix)?.strip_prefix('-')?.strip_suffix(".scope").filter(|id| is_container_id(id))
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
