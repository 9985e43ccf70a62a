//! containerd: which container a cgroup is, its name and its image.
//!
//! Two places know (docs/runtimes.md, "containerd"):
//! - the task bundle `<state>/io.containerd.runtime.v2.task/<ns>/<id>/
//!   config.json` (containerd `runtime/v2/bundle.go`, `NewBundle`): the OCI
//!   spec, with CRI's `io.kubernetes.cri.*` annotations for Kubernetes
//!   containers. It goes with the task: for CRI within a second of PID 1's
//!   death (`pkg/cri/server/events.go`, `handleContainerExit`);
//! - the metadata database `<root>/io.containerd.metadata.v1.bolt/meta.db`
//!   (`metadata/buckets.go`, `metadata/containers.go`):
//!   `v1/<ns>/containers/<id>/{image, labels/, spec}`, kept until the
//!   container is removed, and for `ctr`'s containers the only place the
//!   image is named. It is read without its lock (`bolt.rs`).
//!
//! A candidate from the cgroup path is containerd's only if its spec's
//! `linux.cgroupsPath` is that cgroup; the bundle is read first (small, and
//! current), the database for what the bundle lacks or when it is gone.

use std::{
    collections::{BTreeMap, HashMap},
    fs::{self, File},
    os::unix::fs::MetadataExt,
    path::Path,
};

use super::{fill, read_json, roots, same_cgroup, OciSpec};
use super::{K8S_CONTAINER_NAME, K8S_POD_NAME, K8S_POD_NAMESPACE, K8S_POD_UID};
use crate::{
    model::identity::{is_containerd_identifier, Candidate, Identity},
    sources::cgroup::bolt::{BoltError, ReadAt, Tx, Value},
};

const TASKS: &str = "io.containerd.runtime.v2.task";
const META_DB: &str = "io.containerd.metadata.v1.bolt/meta.db";

/// CRI's annotations (containerd `pkg/cri/annotations/annotations.go`).
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
const CRI_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
const CRI_SANDBOX_IMAGE_NAME: &str = "io.kubernetes.cri.podsandbox.image-name";
const CRI_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const CRI_SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
/// nerdctl's name for a container (containerd/nerdctl `pkg/labels/labels.go`).
const NERDCTL_NAME: &str = "nerdctl/name";

/// Reads of the database while commits keep moving its txid, before a note.
const ATTEMPTS: usize = 5;
/// Bounds on what one read lists (namespaces, a container's labels) and on
/// the answers kept.
const MAX_NAMESPACES: usize = 256;
const MAX_LABELS: usize = 1024;
const MAX_CACHED: usize = 4096;

/// What the database holds for one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Record {
    image: Option<String>,
    labels: BTreeMap<String, String>,
    spec: Option<OciSpec>,
}

/// What was read of the database as of one transaction: answers stay true
/// while that txid is the current one, so a storm of kills reads only the
/// two meta pages again.
#[derive(Default)]
pub(super) struct MetaDb {
    /// (device, inode, txid) the answers below are of.
    at: Option<(u64, u64, u64)>,
    namespaces: Option<Vec<String>>,
    records: HashMap<(String, String), Option<Record>>,
}

/// Why the database gave no answer, for a note.
#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error("{0}")]
    Missing(String),
    #[error("damaged: {0}")]
    Damaged(BoltError),
    #[error("changed during each of {ATTEMPTS} reads")]
    KeptChanging,
}

impl MetaDb {
    /// The records of `wanted` (in its namespace, or in any) that exist,
    /// each with its namespace and id.
    fn records(
        &mut self,
        path: &Path,
        wanted: &[Candidate],
    ) -> Result<Vec<(String, String, Record)>, DbError> {
        let file = File::open(path).map_err(|e| DbError::Missing(super::reason(&e)))?;
        let stat = file.metadata().map_err(|e| DbError::Missing(super::reason(&e)))?;
        self.records_in(&file, (stat.dev(), stat.ino()), wanted)
    }

    /// [`MetaDb::records`] of an open file, `file` its (device, inode).
    fn records_in<R: ReadAt + ?Sized>(
        &mut self,
        src: &R,
        file: (u64, u64),
        wanted: &[Candidate],
    ) -> Result<Vec<(String, String, Record)>, DbError> {
        for _ in 0..ATTEMPTS {
            let tx = Tx::begin(src).map_err(|e| match e {
                BoltError::Io { source, .. } => DbError::Missing(super::reason(&source)),
                e => DbError::Damaged(e),
            })?;
            let at = (file.0, file.1, tx.txid());
            if self.at != Some(at) {
                *self = MetaDb { at: Some(at), ..MetaDb::default() };
            }
            let had_namespaces = self.namespaces.is_some();
            let mut fresh = HashMap::new();
            let answer = self.answer(&tx, wanted, &mut fresh);
            let read = !fresh.is_empty() || (!had_namespaces && self.namespaces.is_some());
            if answer.is_ok() && !read {
                // Every answer was known at this txid: nothing to check.
                return answer.map_err(DbError::Damaged);
            }
            match tx.still_current() {
                Ok(true) => {
                    if self.records.len() + fresh.len() > MAX_CACHED {
                        self.records.clear();
                    }
                    self.records.extend(fresh);
                    return answer.map_err(DbError::Damaged);
                }
                // A commit meanwhile: what was read may mix two versions.
                Ok(false) => *self = MetaDb::default(),
                Err(e) => return Err(DbError::Damaged(e)),
            }
        }
        Err(DbError::KeptChanging)
    }

    /// Answers from what is known at this txid, reading the rest into `fresh`.
    fn answer<R: ReadAt + ?Sized>(
        &mut self,
        tx: &Tx<R>,
        wanted: &[Candidate],
        fresh: &mut HashMap<(String, String), Option<Record>>,
    ) -> Result<Vec<(String, String, Record)>, BoltError> {
        let mut found = Vec::new();
        for c in wanted {
            let namespaces = match (&c.namespace, &self.namespaces) {
                (Some(ns), _) => vec![ns.clone()],
                (None, Some(all)) => all.clone(),
                (None, None) => {
                    let all = namespaces(tx)?;
                    self.namespaces = Some(all.clone());
                    all
                }
            };
            for ns in namespaces {
                let key = (ns, c.id.clone());
                let record = match self.records.get(&key).or_else(|| fresh.get(&key)) {
                    Some(r) => r.clone(),
                    None => {
                        let r = record(tx, &key.0, &key.1)?;
                        fresh.insert(key.clone(), r.clone());
                        r
                    }
                };
                if let Some(r) = record {
                    found.push((key.0, key.1, r));
                }
            }
        }
        Ok(found)
    }
}

/// The namespaces: the buckets under `v1` (`v1/version` is a value).
fn namespaces<R: ReadAt + ?Sized>(tx: &Tx<R>) -> Result<Vec<String>, BoltError> {
    let Some(v1) = tx.bucket_at(&[b"v1"])? else { return Ok(Vec::new()) };
    Ok(tx
        .entries(&v1, MAX_NAMESPACES)?
        .into_iter()
        .filter(|(_, v)| matches!(v, Value::Bucket(_)))
        .filter_map(|(k, _)| String::from_utf8(k).ok())
        .collect())
}

fn record<R: ReadAt + ?Sized>(tx: &Tx<R>, ns: &str, id: &str) -> Result<Option<Record>, BoltError> {
    let Some(c) = tx.bucket_at(&[b"v1", ns.as_bytes(), b"containers", id.as_bytes()])? else {
        return Ok(None);
    };
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let image = tx.bytes(&c, b"image")?.map(text).filter(|i| !i.is_empty());
    let mut labels = BTreeMap::new();
    if let Some(bucket) = tx.bucket(&c, b"labels")? {
        for (k, v) in tx.entries(&bucket, MAX_LABELS)? {
            if let Value::Bytes(v) = v {
                labels.insert(text(k), text(v));
            }
        }
    }
    // A spec that does not decode leaves the image and labels.
    let spec = tx.bytes(&c, b"spec")?.and_then(|any| serde_json::from_slice(any_value(&any)?).ok());
    Ok(Some(Record { image, labels, spec }))
}

/// A protobuf varint (protobuf `encoding.md`, "Base 128 Varints").
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// The value of a `google.protobuf.Any` (`{1: type_url, 2: value}`, both
/// length-delimited), as containerd stores a spec.
fn any_value(b: &[u8]) -> Option<&[u8]> {
    let (mut at, mut value) = (0, None);
    while at < b.len() {
        let tag = varint(b, &mut at)?;
        if tag & 7 != 2 {
            return None;
        }
        let len = usize::try_from(varint(b, &mut at)?).ok()?;
        let field = b.get(at..at.checked_add(len)?)?;
        at += len;
        if tag >> 3 == 2 {
            value = Some(field);
        }
    }
    value
}

/// The bundle of a candidate whose cgroupsPath is the victim's cgroup.
fn bundle(state: &Path, candidates: &[Candidate], cgroup_path: &str) -> Option<(String, String, OciSpec)> {
    let tasks = state.join(TASKS);
    let mut all: Option<Vec<String>> = None;
    for c in candidates {
        let namespaces = match &c.namespace {
            Some(ns) => vec![ns.clone()],
            None => all
                .get_or_insert_with(|| {
                    fs::read_dir(&tasks)
                        .map(|d| {
                            d.flatten()
                                .filter_map(|e| e.file_name().into_string().ok())
                                .filter(|n| is_containerd_identifier(n))
                                .take(MAX_NAMESPACES)
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .clone(),
        };
        for ns in namespaces {
            let Ok(spec) = read_json::<OciSpec>(&tasks.join(&ns).join(&c.id).join("config.json")) else {
                continue;
            };
            if spec.cgroups_path().is_some_and(|p| same_cgroup(p, cgroup_path)) {
                return Some((ns, c.id.clone(), spec));
            }
        }
    }
    None
}

/// Fills `identity` from the containerd container among `candidates` whose
/// spec names `cgroup_path`; returns whether there was one.
pub(super) fn enrich(
    identity: &mut Identity,
    cgroup_path: &str,
    candidates: &[Candidate],
    roots: &roots::Containerd,
    db: &mut MetaDb,
) -> bool {
    if candidates.is_empty() {
        return false;
    }
    // The path's shape said containerd (cri-containerd-<id>.scope).
    let said = identity.runtime.as_deref() == Some("containerd");
    let from_bundle = bundle(&roots.state, candidates, cgroup_path);
    let complete = from_bundle.as_ref().is_some_and(|(_, _, spec)| {
        spec.annotation(CRI_CONTAINER_NAME).is_some() && spec.annotation(CRI_IMAGE_NAME).is_some()
    });
    let path = roots.root.join(META_DB);
    let mut record = None;
    let mut found = from_bundle.as_ref().map(|(ns, id, _)| (ns.clone(), id.clone()));
    if !complete {
        let wanted: Vec<Candidate> = match &found {
            Some((ns, id)) => vec![Candidate { namespace: Some(ns.clone()), id: id.clone() }],
            None => candidates.to_vec(),
        };
        match db.records(&path, &wanted) {
            Ok(records) => {
                // Without a bundle, a record is the container only if its
                // spec names this cgroup; a path naming both namespace and
                // id (`/<ns>/<id>`) is enough when the spec says nothing.
                let matching = records.into_iter().find(|(ns, id, r)| {
                    found.is_some()
                        || match r.spec.as_ref().and_then(OciSpec::cgroups_path) {
                            Some(p) => same_cgroup(p, cgroup_path),
                            None => {
                                candidates.iter().any(|c| c.namespace.as_ref() == Some(ns) && c.id == *id)
                            }
                        }
                });
                match matching {
                    Some((ns, id, r)) => {
                        found = Some((ns, id));
                        record = Some(r);
                    }
                    None if said || found.is_some() => {
                        let ids: Vec<&str> = wanted.iter().map(|c| c.id.as_str()).collect();
                        identity.note(format!(
                            "containerd: {}: no record of {}",
                            path.display(),
                            ids.join(", ")
                        ));
                    }
                    None => {}
                }
            }
            Err(e) => {
                if said || found.is_some() {
                    identity.note(format!("containerd: {}: {e}", path.display()));
                }
            }
        }
    }
    let Some((ns, id)) = found else { return false };
    fill_identity(identity, &ns, &id, from_bundle.as_ref().map(|(_, _, s)| s), record.as_ref());
    true
}

fn fill_identity(
    identity: &mut Identity,
    ns: &str,
    id: &str,
    bundle: Option<&OciSpec>,
    record: Option<&Record>,
) {
    let annotation = |key: &str| {
        bundle
            .and_then(|s| s.annotation(key))
            .or_else(|| record.and_then(|r| r.spec.as_ref()).and_then(|s| s.annotation(key)))
    };
    let label =
        |key: &str| record.and_then(|r| r.labels.get(key)).map(String::as_str).filter(|v| !v.is_empty());
    identity.runtime = Some("containerd".into());
    identity.runtime_namespace = Some(ns.to_owned());
    fill(&mut identity.id, Some(id));
    // CRI's containers are named by the pod spec; a CRI container without
    // one (a sandbox) has no name of its own.
    let cri = annotation(CRI_CONTAINER_TYPE).is_some() || label(K8S_POD_UID).is_some();
    fill(&mut identity.container_name, annotation(CRI_CONTAINER_NAME).or(label(K8S_CONTAINER_NAME)));
    fill(&mut identity.container_name, label(NERDCTL_NAME));
    if !cri {
        // `ctr` has no name but the id (`ctr containers ls`).
        fill(&mut identity.container_name, Some(id));
    }
    fill(&mut identity.image, annotation(CRI_IMAGE_NAME));
    fill(&mut identity.image, record.and_then(|r| r.image.as_deref()));
    fill(&mut identity.image, annotation(CRI_SANDBOX_IMAGE_NAME));
    fill(&mut identity.pod_name, annotation(CRI_SANDBOX_NAME).or(label(K8S_POD_NAME)));
    fill(&mut identity.pod_namespace, annotation(CRI_SANDBOX_NAMESPACE).or(label(K8S_POD_NAMESPACE)));
    fill(&mut identity.pod_uid, annotation(CRI_SANDBOX_UID).or(label(K8S_POD_UID)));
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::sources::cgroup::bolt::testing::{meta_page, PS};

    /// A file whose version is `pick(reads so far)` of `versions`, to play a
    /// writer committing while it is read; counts the reads.
    struct Versions {
        versions: Vec<Vec<u8>>,
        reads: Cell<u32>,
        pick: fn(u32) -> usize,
    }

    impl ReadAt for Versions {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            let n = self.reads.get();
            self.reads.set(n + 1);
            self.versions[(self.pick)(n)].as_slice().read_exact_at(buf, offset)
        }

        fn size(&self) -> std::io::Result<u64> {
            self.versions[(self.pick)(self.reads.get())].as_slice().size()
        }
    }

    /// A database of container `default/web` with `image`, at `txid`.
    fn db(image: &str, txid: u64) -> Vec<u8> {
        let spec = serde_json::json!({"linux": {"cgroupsPath": "/default/web"}});
        let mut bytes = super::super::tests::meta_db(vec![("default", "web", image, vec![], spec)]);
        let high_water = (bytes.len() / PS) as u64;
        bytes[..PS].copy_from_slice(&meta_page(0, 2, high_water, txid));
        bytes
    }

    fn web() -> Vec<Candidate> {
        vec![Candidate { namespace: None, id: "web".into() }]
    }

    fn images(found: Result<Vec<(String, String, Record)>, DbError>) -> Vec<Option<String>> {
        found.unwrap().into_iter().map(|(_, _, r)| r.image).collect()
    }

    #[test]
    fn a_kill_storm_reads_only_the_meta_pages_while_the_txid_stands() {
        let file = Versions { versions: vec![db("nginx:1", 5)], reads: Cell::new(0), pick: |_| 0 };
        let mut cache = MetaDb::default();
        assert_eq!(images(cache.records_in(&file, (1, 1), &web())), [Some("nginx:1".to_owned())]);
        let first = file.reads.get();
        assert!(first > 4, "the tree was read: {first} reads");
        for _ in 0..100 {
            file.reads.set(0);
            assert_eq!(images(cache.records_in(&file, (1, 1), &web())), [Some("nginx:1".to_owned())]);
            assert_eq!(file.reads.get(), 2, "only the two meta pages");
        }
        // Another file at the same path (a new inode): read again.
        file.reads.set(0);
        cache.records_in(&file, (1, 2), &web()).unwrap();
        assert_eq!(file.reads.get(), first);
    }

    #[test]
    fn a_commit_while_reading_is_read_again_and_a_file_that_never_settles_is_a_note() {
        // The first read sees txid 5; from the 6th read on, txid 6 is there.
        let file = Versions {
            versions: vec![db("nginx:1", 5), db("nginx:2", 6)],
            reads: Cell::new(0),
            pick: |n| usize::from(n >= 6),
        };
        let mut cache = MetaDb::default();
        assert_eq!(images(cache.records_in(&file, (1, 1), &web())), [Some("nginx:2".to_owned())]);
        assert_eq!(cache.at, Some((1, 1, 6)));

        // A new version at every other read: never the same txid twice.
        let storm = Versions {
            versions: vec![db("nginx:1", 5), db("nginx:2", 6)],
            reads: Cell::new(0),
            pick: |n| (n / 2 % 2) as usize,
        };
        let mut cache = MetaDb::default();
        let e = cache.records_in(&storm, (1, 1), &web()).unwrap_err();
        assert!(matches!(e, DbError::KeptChanging), "{e}");
        assert_eq!(e.to_string(), "changed during each of 5 reads");
    }

    #[test]
    fn protobuf_any_values() {
        // {1: "t", 2: "{}"}
        assert_eq!(any_value(&[0x0a, 1, b't', 0x12, 2, b'{', b'}']), Some(&b"{}"[..]));
        assert_eq!(any_value(&[0x0a, 1, b't']), None, "no value");
        assert_eq!(any_value(&[0x12, 9, b'{']), None, "a length past the end");
        assert_eq!(any_value(&[0x08, 1]), None, "a varint field is not an Any's");
        assert_eq!(
            any_value(&[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            None
        );
        // A length of 300 (two varint bytes).
        let mut long = vec![0x12, 0xac, 0x02];
        long.extend(vec![b'x'; 300]);
        assert_eq!(any_value(&long).map(<[u8]>::len), Some(300));
    }
}
