//! Every runtime's shapes, both cgroup drivers each, on fake node trees
//! made of tests/fixtures/runtimes/: files captured from real Docker 20.10,
//! podman 4.3 and containerd 1.6 runs, and for CRI-O (not installable on
//! Debian 12) files written from CRI-O 1.36's source. The expected names
//! are what each runtime itself reported (`ctr containers info`, podman's
//! own database), not what this reader found.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::*;
use crate::sources::cgroup::bolt::testing::{bucket, bytes, tree, Node};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/runtimes")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_slice(&fs::read(fixtures().join(path)).unwrap()).unwrap()
}

/// A node's `/` with some runtimes' files on it.
struct FakeNode {
    dir: tempfile::TempDir,
}

impl FakeNode {
    fn new() -> FakeNode {
        FakeNode { dir: tempfile::tempdir().unwrap() }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn at(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    fn docker(self) -> Self {
        copy_tree(&fixtures().join("docker-20.10.24/containers"), &self.at("/var/lib/docker/containers"));
        self
    }

    fn podman(self) -> Self {
        copy_tree(
            &fixtures().join("podman-4.3.1/overlay-containers"),
            &self.at("/var/lib/containers/storage/overlay-containers"),
        );
        self
    }

    fn crio(self) -> Self {
        copy_tree(
            &fixtures().join("cri-o-1.36-written/storage/overlay-containers"),
            &self.at("/var/lib/containers/storage/overlay-containers"),
        );
        self
    }

    fn meta_db(self) -> Self {
        copy_tree(
            &fixtures().join("containerd-1.6.20/io.containerd.metadata.v1.bolt"),
            &self.at("/var/lib/containerd/io.containerd.metadata.v1.bolt"),
        );
        self
    }

    fn meta_db_bytes(self, bytes: &[u8]) -> Self {
        let dir = self.at("/var/lib/containerd/io.containerd.metadata.v1.bolt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("meta.db"), bytes).unwrap();
        self
    }

    fn bundles(self) -> Self {
        copy_tree(
            &fixtures().join("containerd-1.6.20/io.containerd.runtime.v2.task"),
            &self.at("/run/containerd/io.containerd.runtime.v2.task"),
        );
        self
    }

    /// The kubelet's files, as the capture listed them.
    fn kubelet(self) -> Self {
        let listing = fs::read_to_string(fixtures().join("kubelet/var-log-pods-and-containers.txt")).unwrap();
        for line in listing.lines().filter(|l| l.starts_with("lrwx")) {
            let mut words = line.split_whitespace().skip(1);
            let (link, target) = (words.next().unwrap(), words.nth(1).unwrap());
            let target_path = self.at(target);
            fs::create_dir_all(target_path.parent().unwrap()).unwrap();
            fs::write(&target_path, "").unwrap();
            fs::create_dir_all(self.at(link).parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&target_path, self.at(link)).unwrap();
        }
        self
    }

    fn identify(&self, path: &str) -> Identity {
        Runtimes::new(self.root()).identify(path)
    }
}

/// runtime / id / name / image, for one assertion per case.
fn names(id: &Identity) -> [Option<&str>; 4] {
    [id.runtime.as_deref(), id.id.as_deref(), id.container_name.as_deref(), id.image.as_deref()]
}

fn pod(id: &Identity) -> [Option<&str>; 3] {
    [id.pod_namespace.as_deref(), id.pod_name.as_deref(), id.pod_uid.as_deref()]
}

// --- Docker ---------------------------------------------------------------------

const DOCKER_PID1: &str = "857d34f954177935b1ad8dfa3f0944334265e4069ec95a191dc00e2de9ded8f1";

#[test]
fn docker_under_both_cgroup_drivers() {
    let node = FakeNode::new().docker();
    let expected =
        [Some("docker"), Some(DOCKER_PID1), Some("oomrt-docker-pid1-02910c"), Some("oomrt-bookworm:02910c")];
    for path in [format!("/docker/{DOCKER_PID1}"), format!("/system.slice/docker-{DOCKER_PID1}.scope")] {
        let id = node.identify(&path);
        assert_eq!(names(&id), expected, "{path}");
        assert!(id.notes.is_empty(), "{path}: {:?}", id.notes);
    }
    // The container's directory gone: the path's names, and a note.
    let bare = FakeNode::new().identify(&format!("/docker/{DOCKER_PID1}"));
    assert_eq!(names(&bare), [Some("docker"), Some(DOCKER_PID1), None, None]);
    assert_eq!(bare.notes.len(), 1, "{:?}", bare.notes);
    assert!(
        bare.notes[0].starts_with("docker: ") && bare.notes[0].ends_with("config.v2.json: not found"),
        "{:?}",
        bare.notes
    );
}

#[test]
fn cri_dockerd_under_a_pod_and_an_id_no_runtime_knows() {
    let node = FakeNode::new();
    let id = "c0ffee".repeat(10) + "c0ff";
    let dir = node.at(&format!("/var/lib/docker/containers/{id}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.v2.json"),
        r#"{"Name": "/k8s_app_web-1_shop_0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0_0",
            "Config": {"Image": "nginx:1.25", "Labels": {"io.kubernetes.container.name": "app",
            "io.kubernetes.pod.name": "web-1", "io.kubernetes.pod.namespace": "shop"}}}"#,
    )
    .unwrap();
    let uid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    let found = node.identify(&format!("/kubepods/burstable/pod{uid}/{id}"));
    assert_eq!(names(&found), [Some("docker"), Some(id.as_str()), Some("app"), Some("nginx:1.25")]);
    assert_eq!(pod(&found), [Some("shop"), Some("web-1"), Some(uid)]);
    assert!(found.notes.is_empty(), "{:?}", found.notes);

    let unknown = node.identify(&format!("/kubepods/burstable/pod{uid}/{}", "a".repeat(64)));
    assert_eq!(unknown.runtime, None);
    assert_eq!(unknown.notes.len(), 1, "{:?}", unknown.notes);
}

// --- podman -----------------------------------------------------------------------

const PODMAN_PID1: &str = "eac0578c47b0cf85f23a72d51648da5db15a9a11954660103297dc90c6d9ff14";
const PODMAN_CHILD: &str = "d95ecdbb9a54845e3c7c3121c7f4ea6edcc77f3e752b3ef8b5e3dda0d40affd3";

#[test]
fn podman_under_both_cgroup_drivers_named_as_podman_names_them() {
    let node = FakeNode::new().podman();
    // podman's own database: what `podman inspect` reports.
    let db = json("podman-4.3.1/libpod/bolt_state.db.json");
    for cid in [PODMAN_PID1, PODMAN_CHILD] {
        let config = &db["ctr"][cid]["config"];
        let expected =
            [Some("podman"), Some(cid), config["name"].as_str(), config["rootfsImageName"].as_str()];
        for path in [
            // cgroupfs, as captured; systemd (no systemd here to make it).
            format!("/libpod_parent/libpod-{cid}"),
            format!("/machine.slice/libpod-{cid}.scope"),
            format!("/machine.slice/libpod-{cid}.scope/container"),
        ] {
            let id = node.identify(&path);
            assert_eq!(names(&id), expected, "{path}");
            assert!(id.notes.is_empty(), "{path}: {:?}", id.notes);
        }
    }
    // Its monitor, conmon, is not the container.
    for conmon in
        [format!("/machine.slice/libpod-conmon-{PODMAN_PID1}.scope"), "/libpod_parent/conmon".into()]
    {
        let id = node.identify(&conmon);
        assert_eq!((id.runtime, id.notes.len()), (None, 0), "{conmon}");
    }
}

#[test]
fn podman_with_its_list_missing_damaged_or_without_the_container() {
    let path = format!("/libpod_parent/libpod-{PODMAN_PID1}");
    let none = FakeNode::new().identify(&path);
    assert_eq!(names(&none), [Some("podman"), Some(PODMAN_PID1), None, None]);
    assert_eq!(none.notes.len(), 1);
    assert!(none.notes[0].contains("no containers.json"), "{:?}", none.notes);

    let node = FakeNode::new().podman();
    let list = node.at("/var/lib/containers/storage/overlay-containers/containers.json");
    let whole = fs::read(&list).unwrap();
    fs::write(&list, &whole[..whole.len() / 2]).unwrap();
    let damaged = node.identify(&path);
    assert_eq!(damaged.container_name, None);
    assert!(damaged.notes[0].contains("containers.json: not the JSON expected"), "{:?}", damaged.notes);

    fs::write(&list, "[]").unwrap();
    let absent = node.identify(&path);
    assert!(
        absent.notes[0].starts_with(&format!("podman: no entry for {PODMAN_PID1}")),
        "{:?}",
        absent.notes
    );

    // A container created volatile (`--rm`): the other list has it.
    fs::write(list.with_file_name("volatile-containers.json"), &whole).unwrap();
    let volatile = node.identify(&path);
    assert_eq!(volatile.container_name.as_deref(), Some("oomrt-podman-pid1-02910c"));
    assert!(volatile.notes.is_empty(), "{:?}", volatile.notes);
}

#[test]
fn a_list_is_parsed_once_per_version_of_the_file() {
    let node = FakeNode::new().podman();
    let mut runtimes = Runtimes::new(node.root());
    let path = format!("/libpod_parent/libpod-{PODMAN_PID1}");
    assert!(runtimes.identify(&path).container_name.is_some());
    // Same device, inode, size and mtime: the parsed list is used again,
    // as a storm of kills would.
    let list = node.at("/var/lib/containers/storage/overlay-containers/containers.json");
    let key = storage_key(&list);
    assert_eq!(runtimes.lists_cached(&list), Some(key));
    assert!(runtimes.identify(&path).container_name.is_some());
    // containers/storage renames a new version into place: read again.
    let new = list.with_extension("tmp");
    fs::write(&new, "[]").unwrap();
    fs::rename(&new, &list).unwrap();
    assert_eq!(runtimes.identify(&path).container_name, None);
}

fn storage_key(path: &Path) -> (u64, u64, u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap();
    (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec())
}

impl Runtimes {
    fn lists_cached(&self, path: &Path) -> Option<(u64, u64, u64, i64, i64)> {
        self.lists.version_of(path)
    }
}

// --- containerd, `ctr run` --------------------------------------------------------

/// What `ctr containers info` said of a kill: id, image, annotations.
fn ctr_info(kill: &str) -> serde_json::Value {
    json(format!("containerd-1.6.20/ctr-containers-info/{kill}.json"))
}

#[test]
fn containerd_ctr_by_namespace_and_id_from_the_bundle_and_the_database() {
    for kill in ["containerd-pid1", "containerd-child"] {
        let info = ctr_info(kill);
        let cid = info["ID"].as_str().unwrap();
        let path = format!("/default/{cid}");
        // ctr's only name is the id; the image is only in the database.
        let expected = [Some("containerd"), Some(cid), Some(cid), info["Image"].as_str()];

        // The task still there (the child kill, or `ctr run -d`).
        let both = FakeNode::new().bundles().meta_db().identify(&path);
        assert_eq!(names(&both), expected, "{kill}");
        assert_eq!(both.runtime_namespace.as_deref(), Some("default"));
        assert!(both.notes.is_empty(), "{kill}: {:?}", both.notes);

        // The task deleted after PID 1's kill: the database alone.
        let db_only = FakeNode::new().meta_db().identify(&path);
        assert_eq!(names(&db_only), expected, "{kill}");
        assert!(db_only.notes.is_empty(), "{kill}: {:?}", db_only.notes);

        // The bundle alone (the database unreadable): containerd's, but no
        // image, and a note saying why.
        let bundle_only = FakeNode::new().bundles().identify(&path);
        assert_eq!(names(&bundle_only), [Some("containerd"), Some(cid), Some(cid), None], "{kill}");
        assert_eq!(bundle_only.notes.len(), 1, "{:?}", bundle_only.notes);
        assert!(
            bundle_only.notes[0].starts_with("containerd: ")
                && bundle_only.notes[0].ends_with("meta.db: not found")
        );

        // Neither: a two-level path is then nobody's, and says nothing.
        let neither = FakeNode::new().identify(&path);
        assert_eq!((neither.runtime.as_deref(), neither.notes.len()), (None, 0));
    }
    // A namespace and id the database does not have is not containerd's.
    let other = FakeNode::new().meta_db().identify("/default/somebody-else");
    assert_eq!((other.runtime, other.notes.len()), (None, 0));
}

/// containerd's `spec` value: a protobuf Any of the OCI spec's JSON.
pub(super) fn any(spec: &serde_json::Value) -> Vec<u8> {
    let url = b"types.containerd.io/opencontainers/runtime-spec/1/Spec";
    let json = spec.to_string().into_bytes();
    let mut v = vec![0x0a, url.len() as u8];
    v.extend_from_slice(url);
    v.push(0x12);
    let mut n = json.len();
    while n >= 0x80 {
        v.push((n as u8) | 0x80);
        n >>= 7;
    }
    v.push(n as u8);
    v.extend(json);
    v
}

/// One container of [`meta_db`]: namespace, id, image, labels, spec.
pub(super) type Container<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, serde_json::Value);

/// A meta.db holding these containers.
pub(super) fn meta_db(containers: Vec<Container>) -> Vec<u8> {
    let mut namespaces: Vec<(&str, Vec<(&str, Node)>)> = Vec::new();
    for (ns, id, image, labels, spec) in containers {
        let record = bucket(vec![
            ("image", bytes(image)),
            ("labels", bucket(labels.into_iter().map(|(k, v)| (k, bytes(v))).collect())),
            ("spec", bytes(any(&spec))),
        ]);
        match namespaces.iter_mut().find(|(n, _)| *n == ns) {
            Some((_, list)) => list.push((id, record)),
            None => namespaces.push((ns, vec![(id, record)])),
        }
    }
    let v1 =
        namespaces.into_iter().map(|(ns, list)| (ns, bucket(vec![("containers", bucket(list))]))).collect();
    tree(vec![("v1", bucket(v1))])
}

#[test]
fn containerd_ctr_under_systemd_a_slice_prefix_name_cgroups_path() {
    // `ctr run --runc-systemd-cgroup --cgroup system.slice:<ns>:<id>`, and
    // nerdctl's `system.slice:nerdctl:<id>` with its name as a label.
    let nerdctl_id = "4b1d".repeat(16);
    let db = meta_db(vec![
        (
            "default",
            "web",
            "docker.io/library/nginx:1.25",
            vec![],
            serde_json::json!({"linux": {"cgroupsPath": "system.slice:default:web"}}),
        ),
        (
            "default",
            &nerdctl_id,
            "docker.io/library/redis:7",
            vec![("nerdctl/name", "cache")],
            serde_json::json!({"linux": {"cgroupsPath": format!("system.slice:nerdctl:{nerdctl_id}")}}),
        ),
        ("other", "job-1", "busybox:1", vec![], serde_json::json!({"linux": {"cgroupsPath": ":jobs:job-1"}})),
    ]);
    let node = FakeNode::new().meta_db_bytes(&db);
    let web = node.identify("/system.slice/default-web.scope");
    assert_eq!(
        names(&web),
        [Some("containerd"), Some("web"), Some("web"), Some("docker.io/library/nginx:1.25")]
    );
    assert_eq!(
        (web.runtime_namespace.as_deref(), web.unit.as_deref()),
        (Some("default"), Some("default-web.scope"))
    );
    let nerdctl = node.identify(&format!("/system.slice/nerdctl-{nerdctl_id}.scope"));
    assert_eq!(
        names(&nerdctl),
        [Some("containerd"), Some(nerdctl_id.as_str()), Some("cache"), Some("docker.io/library/redis:7")]
    );
    // An empty slice is system.slice (runc).
    let job = node.identify("/system.slice/jobs-job-1.scope");
    assert_eq!(names(&job)[..2], [Some("containerd"), Some("job-1")]);
    assert_eq!(job.runtime_namespace.as_deref(), Some("other"));

    // A scope whose name splits into a known id, but whose cgroup is not the
    // container's: a session, not container `web`.
    for other in ["/user.slice/user-1000.slice/session-web.scope", "/system.slice/default-web.service"] {
        let id = node.identify(other);
        assert_eq!((id.runtime.as_deref(), id.notes.len()), (None, 0), "{other}");
    }

    // The bundle, while the task lives, says the same (captured bundle,
    // its spec moved to the systemd form).
    let node = FakeNode::new().meta_db();
    let bundle = node.at("/run/containerd/io.containerd.runtime.v2.task/default/oomrt-ctr-pid1-02910c");
    fs::create_dir_all(&bundle).unwrap();
    fs::write(
        bundle.join("config.json"),
        r#"{"linux": {"cgroupsPath": "system.slice:default:oomrt-ctr-pid1-02910c"}}"#,
    )
    .unwrap();
    let id = node.identify("/system.slice/default-oomrt-ctr-pid1-02910c.scope");
    let info = ctr_info("containerd-pid1");
    assert_eq!(
        names(&id),
        [
            Some("containerd"),
            Some("oomrt-ctr-pid1-02910c"),
            Some("oomrt-ctr-pid1-02910c"),
            info["Image"].as_str()
        ]
    );
    assert!(id.notes.is_empty(), "{:?}", id.notes);
}

#[test]
fn a_damaged_or_truncated_database_is_a_note_never_an_error() {
    let whole =
        fs::read(fixtures().join("containerd-1.6.20/io.containerd.metadata.v1.bolt/meta.db")).unwrap();
    let kube = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podb9360bab_2506_492e_9ae5_768ec27b6aff.slice/cri-containerd-a831d53569b7bb1c4bf7b22a26707c6ee3a7cdb054eb9e203728e1e0c233c9ae.scope";
    let mut both_metas = whole.clone();
    both_metas[16 + 56] ^= 1;
    both_metas[4096 + 16 + 56] ^= 1;
    for (what, bytes) in [
        ("truncated to its metas", whole[..8192].to_vec()),
        ("cut in half", whole[..whole.len() / 2].to_vec()),
        ("both meta checksums wrong", both_metas),
        ("empty", Vec::new()),
    ] {
        let node = FakeNode::new().meta_db_bytes(&bytes).kubelet();
        let id = node.identify(kube);
        // The path says containerd, the kubelet names the pod; no image.
        assert_eq!(
            names(&id)[..3],
            [
                Some("containerd"),
                Some("a831d53569b7bb1c4bf7b22a26707c6ee3a7cdb054eb9e203728e1e0c233c9ae"),
                Some("hog-pid1")
            ],
            "{what}"
        );
        assert_eq!(id.image, None, "{what}");
        assert_eq!(id.notes.len(), 1, "{what}: {:?}", id.notes);
        assert!(
            id.notes[0].starts_with("containerd: ") && id.notes[0].contains("meta.db: "),
            "{what}: {:?}",
            id.notes
        );
    }
}

// --- containerd under a kubelet ----------------------------------------------------

#[test]
fn kubernetes_under_containerd_both_drivers_bundle_or_database() {
    for kill in ["k8s-cgroupfs-pid1", "k8s-cgroupfs-child", "k8s-systemd-pid1", "k8s-systemd-child"] {
        let info = ctr_info(kill);
        let cid = info["ID"].as_str().unwrap();
        let a = &info["Spec"]["annotations"];
        let cgroup = info["Spec"]["linux"]["cgroupsPath"].as_str().unwrap();
        let expected = [
            Some("containerd"),
            Some(cid),
            a["io.kubernetes.cri.container-name"].as_str(),
            info["Image"].as_str(),
        ];
        let expected_pod = [
            a["io.kubernetes.cri.sandbox-namespace"].as_str(),
            a["io.kubernetes.cri.sandbox-name"].as_str(),
            a["io.kubernetes.cri.sandbox-uid"].as_str(),
        ];
        // The bundle (the task alive), the database (the task deleted, as CRI
        // does at once after PID 1's death), and both with the kubelet's files.
        for (what, node) in [
            ("bundle", FakeNode::new().bundles()),
            ("database", FakeNode::new().meta_db()),
            ("everything", FakeNode::new().bundles().meta_db().kubelet()),
        ] {
            let id = node.identify(cgroup);
            assert_eq!(names(&id), expected, "{kill}, {what}");
            assert_eq!(pod(&id), expected_pod, "{kill}, {what}");
            assert_eq!(id.runtime_namespace.as_deref(), Some("k8s.io"), "{kill}, {what}");
            assert!(id.notes.is_empty(), "{kill}, {what}: {:?}", id.notes);
        }
        // Only the kubelet's files: pod and container, no image; under the
        // systemd driver the path still says containerd.
        let kubelet = FakeNode::new().kubelet().identify(cgroup);
        assert_eq!(
            [kubelet.container_name.as_deref(), kubelet.image.as_deref()],
            [expected[2], None],
            "{kill}"
        );
        assert_eq!(pod(&kubelet), expected_pod, "{kill}");
        if kill.starts_with("k8s-systemd") {
            assert_eq!(kubelet.runtime.as_deref(), Some("containerd"));
            assert!(kubelet.notes[0].ends_with("meta.db: not found"), "{:?}", kubelet.notes);
        } else {
            assert_eq!(kubelet.runtime, None);
        }
    }
}

#[test]
fn kubernetes_under_containerd_as_a_real_cri_plugin_records_it() {
    // What CRI itself writes (no bundle left): the systemd form of
    // cgroupsPath, and on older containerd only the kubelet's labels.
    let cid = "7e57".repeat(16);
    let sandbox = "5a4d".repeat(16);
    let uid = "2f1c7b3e-5a4d-4e8f-9b6a-1c2d3e4f5a6b";
    let slice = format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_"));
    let db = meta_db(vec![
        (
            "k8s.io",
            &cid,
            "registry.example.com/shop/web:1.4.2",
            vec![
                ("io.kubernetes.container.name", "app"),
                ("io.kubernetes.pod.name", "web-7d9"),
                ("io.kubernetes.pod.namespace", "shop"),
                ("io.kubernetes.pod.uid", uid),
                ("io.cri-containerd.kind", "container"),
            ],
            serde_json::json!({"linux": {"cgroupsPath": format!("{slice}:cri-containerd:{cid}")}}),
        ),
        (
            "k8s.io",
            &sandbox,
            "registry.k8s.io/pause:3.9",
            vec![("io.kubernetes.pod.uid", uid), ("io.cri-containerd.kind", "sandbox")],
            serde_json::json!({"annotations": {"io.kubernetes.cri.container-type": "sandbox",
                "io.kubernetes.cri.sandbox-name": "web-7d9", "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.sandbox-uid": uid},
                "linux": {"cgroupsPath": format!("{slice}:cri-containerd:{sandbox}")}}),
        ),
    ]);
    let node = FakeNode::new().meta_db_bytes(&db);
    let pod_dir = format!("/kubepods.slice/kubepods-burstable.slice/{slice}");
    let app = node.identify(&format!("{pod_dir}/cri-containerd-{cid}.scope"));
    assert_eq!(
        names(&app),
        [Some("containerd"), Some(cid.as_str()), Some("app"), Some("registry.example.com/shop/web:1.4.2")]
    );
    assert_eq!(pod(&app), [Some("shop"), Some("web-7d9"), Some(uid)]);
    assert_eq!(app.qos.as_deref(), Some("burstable"));
    // The pod's sandbox (pause): the pod's names, no container name.
    let pause = node.identify(&format!("{pod_dir}/cri-containerd-{sandbox}.scope"));
    assert_eq!(
        names(&pause),
        [Some("containerd"), Some(sandbox.as_str()), None, Some("registry.k8s.io/pause:3.9")]
    );
    assert_eq!(pod(&pause), [Some("shop"), Some("web-7d9"), Some(uid)]);
    // A container CRI has no record of.
    let gone = node.identify(&format!("{pod_dir}/cri-containerd-{}.scope", "f".repeat(64)));
    assert_eq!(gone.runtime.as_deref(), Some("containerd"));
    assert!(gone.notes[0].contains("no record of"), "{:?}", gone.notes);
}

// --- CRI-O (files written from its source: CRI-O does not run here) ------------

const CRIO_APP: &str = "c41f8e2d6b0a4c8e2f6a0b4d8e2c6a0f4b8d2e6a0c4f8b2d6e0a4c8f2b6d0e4a";
const CRIO_SANDBOX: &str = "5b0e2c7a9d1f3e4b6a8c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e8f0a";
const CRIO_UID: &str = "2f1c7b3e-5a4d-4e8f-9b6a-1c2d3e4f5a6b";

/// The container, infra and conmon cgroups of tests/fixtures/runtimes/
/// cri-o-1.36-written/cgroups.txt, by driver.
fn crio_cgroups() -> Vec<(String, String)> {
    fs::read_to_string(fixtures().join("cri-o-1.36-written/cgroups.txt"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('c') || l.starts_with("infra"))
        .map(|l| {
            let (what, path) = l.rsplit_once(' ').unwrap();
            (what.trim().to_owned(), path.to_owned())
        })
        .collect()
}

#[test]
fn crio_under_both_cgroup_drivers_from_its_spec_or_its_list() {
    let cgroups = crio_cgroups();
    assert_eq!(cgroups.len(), 6, "container, infra, conmon for each driver: {cgroups:?}");
    let expected = [Some("cri-o"), Some(CRIO_APP), Some("app"), Some("registry.example.com/shop/web:1.4.2")];
    let expected_pod = [Some("shop"), Some("web-7d9f8b6c5d-x2k4q"), Some(CRIO_UID)];
    let spec = FakeNode::new().crio();
    // The list alone: the userdata directories gone.
    let list = FakeNode::new().crio();
    for dir in [CRIO_APP, CRIO_SANDBOX] {
        fs::remove_dir_all(list.at(&format!("/var/lib/containers/storage/overlay-containers/{dir}")))
            .unwrap();
    }
    for (what, path) in &cgroups {
        for (source, node) in [("spec", &spec), ("list", &list)] {
            let id = node.identify(path);
            match what.as_str() {
                "container" => {
                    assert_eq!(names(&id), expected, "{path}, {source}");
                    assert_eq!(pod(&id), expected_pod, "{path}, {source}");
                }
                "infra (sandbox)" => {
                    assert_eq!(
                        names(&id),
                        [Some("cri-o"), Some(CRIO_SANDBOX), None, Some("registry.k8s.io/pause:3.10")],
                        "{path}, {source}"
                    );
                    assert_eq!(pod(&id), expected_pod, "{path}, {source}");
                }
                _ => assert_eq!((id.runtime, id.id), (None, None), "conmon is CRI-O's monitor: {path}"),
            }
            assert!(id.notes.is_empty(), "{path}, {source}: {:?}", id.notes);
        }
    }
    // Nothing of CRI-O's on the node: the path's names, a note.
    let bare = FakeNode::new().identify(&cgroups[0].1);
    assert_eq!(names(&bare), [Some("cri-o"), Some(CRIO_APP), None, None]);
    assert_eq!(bare.notes.len(), 1, "{:?}", bare.notes);
    assert!(bare.notes[0].starts_with("cri-o: "), "{:?}", bare.notes);
}

#[test]
fn a_spec_written_by_podman_is_not_taken_for_cri_o() {
    // podman writes io.kubernetes.cri-o.* keys too; io.container.manager says whose it is.
    let node = FakeNode::new().podman();
    let dir = node.at(&format!("/var/lib/containers/storage/overlay-containers/{PODMAN_PID1}/userdata"));
    copy_tree(&fixtures().join(format!("podman-4.3.1/overlay-containers/{PODMAN_PID1}/userdata")), &dir);
    let id = node.identify(&format!("/kubepods/burstable/pod{CRIO_UID}/crio-{PODMAN_PID1}"));
    assert!(id.notes.iter().any(|n| n.contains("written by libpod")), "{:?}", id.notes);
}

// --- Not containers ---------------------------------------------------------------

#[test]
fn units_and_sessions_stay_what_they_are_with_every_runtime_on_the_node() {
    let node = FakeNode::new().docker().podman().meta_db().bundles().kubelet();
    for path in [
        "/user.slice/user-1000.slice/session-4.scope",
        "/system.slice/containerd.service",
        "/system.slice/cron.service",
        "/init.scope",
        "/",
        "/lxc/web01",
        "/batch/worker",
    ] {
        let id = node.identify(path);
        assert!(id.runtime.is_none() || id.runtime.as_deref() == Some("lxc"), "{path}: {id:?}");
        assert!(id.notes.is_empty(), "{path}: {:?}", id.notes);
    }
}

#[test]
fn systemd_cgroups_paths_expand_as_runc_expands_them() {
    assert_eq!(cgroup_dir("/default/web").as_deref(), Some("/default/web"));
    assert_eq!(cgroup_dir("system.slice:docker:abc").as_deref(), Some("/system.slice/docker-abc.scope"));
    assert_eq!(cgroup_dir(":cri-containerd:abc").as_deref(), Some("/system.slice/cri-containerd-abc.scope"));
    assert_eq!(
        cgroup_dir("kubepods-burstable-pod1.slice:crio:abc").as_deref(),
        Some("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/crio-abc.scope")
    );
    assert_eq!(cgroup_dir("-.slice:x:y").as_deref(), Some("/x-y.scope"));
    assert_eq!(cgroup_dir("a--b.slice:x:y"), None);
    assert_eq!(cgroup_dir("notaslice:x:y"), None);
}
