//! The kubelet's files, for any runtime under it (kubernetes
//! `pkg/kubelet/kuberuntime/helpers.go`, `BuildPodLogsDirectory`;
//! `legacy.go`, `legacyLogSymlink`):
//! - `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`, a link
//!   that maps a container id to its pod, namespace and container name; the
//!   name is cut to 251 bytes (+ `.log`) for ext4, which can cut the id;
//! - `/var/log/pods/<namespace>_<pod>_<uid>/` for pod and namespace by uid.
//!
//! Kubernetes names have no `_`, so `_` splits these names. What the
//! runtime's own record said is kept; these only fill what it did not.

use std::{fs, path::Path};

use super::fill;
use crate::model::identity::{is_container_id, Identity};

/// kubernetes `legacy.go`: `ext4MaxFileNameLen` 255 less `.log`.
const MAX_STEM: usize = 251;

/// `<pod>_<namespace>_<container>` of a `/var/log/containers` link named
/// for container `id`, whole or cut short.
fn link_names<'a>(file: &'a str, id: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let stem = file.strip_suffix(".log")?;
    let names = match stem.strip_suffix(id).and_then(|s| s.strip_suffix('-')) {
        Some(names) => names,
        // Cut at 251 bytes: the id's start ends the name.
        None if stem.len() == MAX_STEM => {
            let (names, cut) = stem.rsplit_once('-')?;
            (!cut.is_empty() && id.starts_with(cut)).then_some(names)?
        }
        None => return None,
    };
    let mut parts = names.splitn(3, '_');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

pub(super) fn enrich(identity: &mut Identity, root: &Path) {
    if let Some(cid) = identity.id.clone().filter(|c| is_container_id(c)) {
        if let Ok(entries) = fs::read_dir(root.join("var/log/containers")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some((pod, ns, container)) = link_names(&name, &cid) {
                    fill(&mut identity.pod_name, Some(pod));
                    fill(&mut identity.pod_namespace, Some(ns));
                    fill(&mut identity.container_name, Some(container));
                    break;
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
                        fill(&mut identity.pod_namespace, Some(ns));
                        fill(&mut identity.pod_name, Some(pod));
                        break;
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

    #[test]
    fn pods_by_link_then_by_uid_and_a_runtimes_names_are_kept() {
        let root = tempfile::tempdir().unwrap();
        let containers = root.path().join("var/log/containers");
        fs::create_dir_all(&containers).unwrap();
        fs::write(containers.join(format!("web-7d9_shop_app-{CID}.log")), "").unwrap();
        fs::create_dir_all(root.path().join(format!("var/log/pods/shop_web-7d9_{UID}/app"))).unwrap();
        let path = format!("/kubepods/burstable/pod{UID}/{CID}");
        let mut id = crate::model::identity::from_path(&path);
        enrich(&mut id, root.path());
        assert_eq!(
            [id.pod_namespace.as_deref(), id.pod_name.as_deref(), id.container_name.as_deref()],
            [Some("shop"), Some("web-7d9"), Some("app")]
        );

        // What the runtime said first stays.
        let mut named = crate::model::identity::from_path(&path);
        named.container_name = Some("from-the-runtime".into());
        enrich(&mut named, root.path());
        assert_eq!(named.container_name.as_deref(), Some("from-the-runtime"));

        // Only the pods directory: namespace and name by uid, no container.
        fs::remove_dir_all(&containers).unwrap();
        let mut by_uid = crate::model::identity::from_path(&path);
        enrich(&mut by_uid, root.path());
        assert_eq!(
            [by_uid.pod_namespace.as_deref(), by_uid.pod_name.as_deref(), by_uid.container_name.as_deref()],
            [Some("shop"), Some("web-7d9"), None]
        );

        let mut nothing = crate::model::identity::from_path(&path);
        enrich(&mut nothing, Path::new("/nonexistent-root"));
        assert_eq!((nothing.pod_name, nothing.notes.len()), (None, 0));
    }

    #[test]
    fn a_link_name_whole_or_cut_for_ext4() {
        assert_eq!(link_names(&format!("web-7d9_shop_app-{CID}.log"), CID), Some(("web-7d9", "shop", "app")));
        assert_eq!(link_names(&format!("web-7d9_shop_app-{CID}.log"), &"0".repeat(64)), None);
        // A long pod name: the kubelet cuts the whole name at 251 bytes.
        let pod = "p".repeat(200);
        let whole = format!("{pod}_shop_app-{CID}");
        let cut = format!("{}.log", &whole[..MAX_STEM]);
        assert_eq!(link_names(&cut, CID), Some((pod.as_str(), "shop", "app")));
        // A cut name whose remaining id part is another container's.
        let other = format!("{}.log", &format!("{pod}_shop_app-{}", "a".repeat(64))[..MAX_STEM]);
        assert_eq!(link_names(&other, CID), None);
    }
}
