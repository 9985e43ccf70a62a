//! podman (root): a container's name and image are in containers/storage's
//! list (`storage.rs`): `names[0]` is podman's name, and `metadata`'s
//! `image-name` the image as podman shows it (`localhost/app:1`). podman's
//! own database (`libpod/bolt_state.db`, or `db.sql` in podman 5) holds the
//! same and is not needed (docs/runtimes.md, "podman").

use super::{
    roots::Storage,
    storage::{Entry, Lists},
};
use crate::model::identity::Identity;

pub(super) fn enrich(identity: &mut Identity, storage: &Storage, lists: &mut Lists) {
    let Some(id) = identity.id.clone() else { return };
    match lists.find(storage, &id) {
        Ok(entry) => fill(identity, &entry),
        Err(note) => identity.note(format!("podman: {note}")),
    }
}

fn fill(identity: &mut Identity, entry: &Entry) {
    let name = entry.names.first().or(entry.metadata.name.as_ref());
    super::fill(&mut identity.container_name, name.map(String::as_str));
    super::fill(&mut identity.image, entry.metadata.image_name.as_deref());
}
