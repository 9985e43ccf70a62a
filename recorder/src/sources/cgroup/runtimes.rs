//! The names a cgroup path does not carry, from the files the node keeps:
//! the kubelet's log directories for pods, each runtime's own metadata for
//! container names and images. Each lookup takes a root directory (tests
//! build fake trees), and a file that is not there gives `None`, never an
//! error.

use std::{fs, path::Path};

use crate::model::identity::{is_container_id, Identity};

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
    use crate::model::identity::from_path;

    const CID: &str = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
    const UID: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

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
