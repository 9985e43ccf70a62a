//! Docker: `<data-root>/containers/<id>/config.v2.json` (moby
//! `container/container.go`, `configFileName`): `Name` is `/` + the name,
//! `Config.Image` the image as the user gave it. Under a kubelet
//! (cri-dockerd) `Config.Labels` carries the kubelet's labels, and `Name`
//! is cri-dockerd's `k8s_<container>_<pod>_…`, so the labels come first.

use std::path::Path;

use super::{fill, read_json, K8S_CONTAINER_NAME, K8S_POD_NAME, K8S_POD_NAMESPACE, K8S_POD_UID};
use crate::model::identity::{is_container_id, Identity};

/// Whether a missing file is worth a note: not when Docker is only a guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Missing {
    Note,
    Quiet,
}

pub(super) fn enrich(identity: &mut Identity, data_root: &Path, missing: Missing) {
    let Some(id) = identity.id.clone().filter(|c| is_container_id(c)) else { return };
    let path = data_root.join("containers").join(&id).join("config.v2.json");
    let config: serde_json::Value = match read_json(&path) {
        Ok(c) => c,
        Err(why) => {
            if missing == Missing::Note || why != "not found" {
                identity.note(format!("docker: {}: {why}", path.display()));
            }
            return;
        }
    };
    identity.runtime.get_or_insert_with(|| "docker".into());
    let labels = &config["Config"]["Labels"];
    let label = |key: &str| labels[key].as_str();
    fill(&mut identity.container_name, label(K8S_CONTAINER_NAME));
    fill(&mut identity.pod_name, label(K8S_POD_NAME));
    fill(&mut identity.pod_namespace, label(K8S_POD_NAMESPACE));
    fill(&mut identity.pod_uid, label(K8S_POD_UID));
    fill(&mut identity.container_name, config["Name"].as_str().map(|n| n.trim_start_matches('/')));
    fill(&mut identity.image, config["Config"]["Image"].as_str());
}
