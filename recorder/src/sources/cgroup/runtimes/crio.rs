//! CRI-O: the container's OCI spec, which CRI-O saves under the graphroot
//! and the runroot (`<root>/<driver>-containers/<id>/userdata/config.json`,
//! cri-o `server/container_create.go`), carries its names as annotations
//! (`internal/factory/container/container.go`, `SpecAddAnnotations`; keys in
//! `internal/annotations/annotations.go` and the kubelet's labels copied as
//! annotations of their own). Failing that, containers/storage's list entry
//! (`storage.rs`): `metadata-name`, `image-name`, and the sandbox's
//! `k8s_<pod>_<namespace>_<uid>_<attempt>` name (`internal/lib/sandbox/
//! builder.go`; Kubernetes names have no `_`, so it splits cleanly).
//!
//! CRI-O is not packaged for Debian 12, so no real CRI-O ran for this:
//! the tests read files written from CRI-O 1.36's source
//! (tests/fixtures/runtimes/cri-o-1.36-written/).

use super::{fill, read_json, roots::Storage, storage::Lists, OciSpec};
use super::{K8S_CONTAINER_NAME, K8S_POD_NAME, K8S_POD_NAMESPACE, K8S_POD_UID};
use crate::model::identity::Identity;

/// `io.container.manager` (cri-o `internal/annotations`; podman writes
/// `libpod`): the one key that says which runtime wrote a spec, since podman
/// writes some `io.kubernetes.cri-o.*` keys too.
const MANAGER: &str = "io.container.manager";
const CONTAINER_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
const IMAGE: &str = "io.kubernetes.cri-o.Image";
const IMAGE_NAME: &str = "io.kubernetes.cri-o.ImageName";
/// A sandbox's own keys: the pod's name and namespace, and its metadata.
const KUBE_NAME: &str = "io.kubernetes.cri-o.KubeName";
const NAMESPACE: &str = "io.kubernetes.cri-o.Namespace";
const METADATA: &str = "io.kubernetes.cri-o.Metadata";

pub(super) fn enrich(identity: &mut Identity, storage: &Storage, lists: &mut Lists) {
    let Some(id) = identity.id.clone() else { return };
    let mut problems = Vec::new();
    let mut spec = None;
    for root in [&storage.graph, &storage.run] {
        let path = storage.containers(root).join(&id).join("userdata/config.json");
        match read_json::<OciSpec>(&path) {
            Ok(s) => {
                spec = Some(s);
                break;
            }
            Err(why) => problems.push(format!("{}: {why}", path.display())),
        }
    }
    if let Some(spec) = &spec {
        match spec.annotation(MANAGER) {
            Some("cri-o") | None => from_spec(identity, spec),
            Some(other) => {
                identity.note(format!("cri-o: the spec of {id} was written by {other}, not CRI-O"))
            }
        }
    }
    let complete =
        identity.container_name.is_some() && identity.image.is_some() && identity.pod_name.is_some();
    if complete {
        return;
    }
    match lists.find(storage, &id) {
        Ok(entry) => {
            let m = &entry.metadata;
            if !m.pod {
                fill(&mut identity.container_name, m.metadata_name.as_deref());
            }
            fill(&mut identity.image, m.image_name.as_deref());
            if let Some((pod, namespace, uid)) = m.pod_name.as_deref().and_then(sandbox_name) {
                fill(&mut identity.pod_name, Some(pod));
                fill(&mut identity.pod_namespace, Some(namespace));
                fill(&mut identity.pod_uid, Some(uid));
            }
        }
        Err(note) => {
            if spec.is_none() {
                problems.push(note);
                identity.note(format!("cri-o: {}", problems.join("; ")));
            }
        }
    }
}

fn from_spec(identity: &mut Identity, spec: &OciSpec) {
    if spec.annotation(CONTAINER_TYPE) == Some("sandbox") {
        // The pod's infra container: the pod's names, no container name.
        fill(&mut identity.pod_name, spec.annotation(KUBE_NAME));
        fill(&mut identity.pod_namespace, spec.annotation(NAMESPACE));
        let metadata: Option<serde_json::Value> =
            spec.annotation(METADATA).and_then(|m| serde_json::from_str(m).ok());
        fill(&mut identity.pod_uid, metadata.as_ref().and_then(|m| m["uid"].as_str()));
    } else {
        fill(&mut identity.container_name, spec.annotation(K8S_CONTAINER_NAME));
    }
    fill(&mut identity.pod_name, spec.annotation(K8S_POD_NAME));
    fill(&mut identity.pod_namespace, spec.annotation(K8S_POD_NAMESPACE));
    fill(&mut identity.pod_uid, spec.annotation(K8S_POD_UID));
    fill(&mut identity.image, spec.annotation(IMAGE).or(spec.annotation(IMAGE_NAME)));
}

/// `k8s_<pod>_<namespace>_<uid>_<attempt>` (cri-o
/// `internal/lib/sandbox/builder.go`, `GenerateNameAndID`) → pod,
/// namespace, uid.
fn sandbox_name(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.strip_prefix("k8s_")?.split('_');
    let (pod, namespace, uid, attempt) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && attempt.bytes().all(|b| b.is_ascii_digit())).then_some((pod, namespace, uid))
}
