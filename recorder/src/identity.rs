//! Who the victim was, in the names SREs use, from its cgroup path alone (no
//! API server): Kubernetes pod and container, QoS class, Docker, podman,
//! LXC, and systemd units, slices and sessions. The names a path does not
//! carry (pod namespace and name, container name, Docker name and image) come
//! from files the node keeps; each lookup takes a root directory, and a file
//! that is not there gives `None`, never an error.
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

use std::{fs, path::Path};

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

fn is_container_id(s: &str) -> bool {
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

/// Fills in the names the node keeps on disk:
/// - `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` (the
///   kubelet's links to container logs) for pod, namespace and container;
/// - `/var/log/pods/<namespace>_<pod>_<uid>/` for pod and namespace by uid;
/// - `/var/lib/docker/containers/<id>/config.v2.json` for Docker's name and image.
pub fn enrich(identity: &mut Identity, root: &Path) {
    if let Some(cid) = identity.id.clone().filter(|c| is_container_id(c)) {
        let suffix = format!("-{cid}.log");
        if let Ok(entries) = fs::read_dir(root.join("var/log/containers")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix(&suffix) else { continue };
                let mut parts = stem.splitn(3, '_');
                if let (Some(pod), Some(ns), Some(container)) = (parts.next(), parts.next(), parts.next()) {
                    identity.pod_name.get_or_insert_with(|| pod.to_owned());
                    identity.pod_namespace.get_or_insert_with(|| ns.to_owned());
                    identity.container_name.get_or_insert_with(|| container.to_owned());
                }
            }
        }
        if identity.runtime.as_deref() == Some("docker") {
            let config = root.join("var/lib/docker/containers").join(&cid).join("config.v2.json");
            if let Some(json) =
                fs::read(config).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                if let Some(name) = json["Name"].as_str() {
                    identity.container_name.get_or_insert_with(|| name.trim_start_matches('/').to_owned());
                }
                if let Some(image) = json["Config"]["Image"].as_str() {
                    identity.image.get_or_insert_with(|| image.to_owned());
                }
            }
        }
    }
    if let Some(uid) = identity.pod_uid.clone() {
        if identity.pod_name.is_none() || identity.pod_namespace.is_none() {
            let suffix = format!("_{uid}");
            if let Ok(entries) = fs::read_dir(root.join("var/log/pods")) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Some(stem) = name.strip_suffix(&suffix) else { continue };
                    if let Some((ns, pod)) = stem.split_once('_') {
                        identity.pod_namespace.get_or_insert_with(|| ns.to_owned());
                        identity.pod_name.get_or_insert_with(|| pod.to_owned());
                    }
                }
            }
        }
    }
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

    #[test]
    fn names_come_from_the_node_and_missing_files_are_none() {
        let root = tempfile::tempdir().unwrap();
        let containers = root.path().join("var/log/containers");
        fs::create_dir_all(&containers).unwrap();
        fs::write(containers.join(format!("web-7d9_shop_app-{CID}.log")), "").unwrap();
        fs::create_dir_all(root.path().join(format!("var/log/pods/shop_web-7d9_{UID}/app"))).unwrap();
        let mut id = from_path(&format!("/kubepods/burstable/pod{UID}/{CID}"));
        enrich(&mut id, root.path());
        assert_eq!(id.pod_name.as_deref(), Some("web-7d9"));
        assert_eq!(id.pod_namespace.as_deref(), Some("shop"));
        assert_eq!(id.container_name.as_deref(), Some("app"));

        // Only the pods directory: namespace and name by uid, no container.
        fs::remove_dir_all(&containers).unwrap();
        let mut by_uid = from_path(&format!("/kubepods/burstable/pod{UID}/{CID}"));
        enrich(&mut by_uid, root.path());
        assert_eq!(
            (by_uid.pod_namespace.as_deref(), by_uid.pod_name.as_deref()),
            (Some("shop"), Some("web-7d9"))
        );
        assert_eq!(by_uid.container_name, None);

        let docker_dir = root.path().join("var/lib/docker/containers").join(CID);
        fs::create_dir_all(&docker_dir).unwrap();
        fs::write(
            docker_dir.join("config.v2.json"),
            r#"{"Name":"/redis-cache","Config":{"Image":"redis:7"}}"#,
        )
        .unwrap();
        let mut docker = from_path(&format!("/docker/{CID}"));
        enrich(&mut docker, root.path());
        assert_eq!(
            (docker.container_name.as_deref(), docker.image.as_deref()),
            (Some("redis-cache"), Some("redis:7"))
        );

        let mut nothing = from_path(&format!("/docker/{CID}"));
        enrich(&mut nothing, Path::new("/nonexistent-root"));
        assert_eq!(nothing.container_name, None);
    }
}
