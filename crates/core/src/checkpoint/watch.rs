//! The kernel's word on what changed (inotify), so that a look after an action reads only the
//! paths that may have changed instead of walking every file. It is a hint, never the truth:
//! every path it names is looked at again with `lstat`, and whenever the kernel may have lost
//! an event (its queue overflowed, a watch could not be set), the next look walks everything.
//!
//! Watches are inode-based: a change made through a bind mount in a command's mount namespace,
//! by any process, is seen. Each watched directory reports its entries being created, deleted,
//! moved, written, closed after writing and re-moded; a directory moved away is forgotten (its
//! new place, if inside the roots, is walked and watched afresh).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchMask};

pub struct Watch {
    inotify: Inotify,
    dirs: HashMap<i32, PathBuf>,
    /// An event may have been lost since the last drain.
    lost: bool,
    buffer: Vec<u8>,
}

impl Watch {
    /// `None` where the kernel gives no inotify instance (then every look walks everything).
    pub fn new() -> Option<Watch> {
        Some(Watch {
            inotify: Inotify::init().ok()?,
            dirs: HashMap::new(),
            lost: false,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// Watches `dir` (again: the kernel keeps one watch per inode, and it now has this name).
    pub fn add(&mut self, dir: &Path) {
        let mask = WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::DELETE_SELF
            | WatchMask::MODIFY
            | WatchMask::ATTRIB
            | WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::MOVE_SELF
            | WatchMask::ONLYDIR
            | WatchMask::DONT_FOLLOW
            | WatchMask::EXCL_UNLINK;
        match self.inotify.watches().add(dir, mask) {
            Ok(wd) => {
                self.dirs
                    .insert(wd.get_watch_descriptor_id(), dir.to_path_buf());
            }
            // Gone already (the next look sees that), or the watch limit: walk everything.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => self.lost = true,
        }
    }

    /// The paths that may have changed since the last drain; `None` when the kernel may have
    /// lost some (then everything must be walked).
    pub fn drain(&mut self) -> Option<BTreeSet<PathBuf>> {
        let mut dirty = BTreeSet::new();
        loop {
            let events = match self.inotify.read_events(&mut self.buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.lost = true;
                    break;
                }
            };
            for event in events {
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    self.lost = true;
                    continue;
                }
                let id = event.wd.get_watch_descriptor_id();
                let Some(dir) = self.dirs.get(&id).cloned() else {
                    continue;
                };
                if event
                    .mask
                    .intersects(EventMask::IGNORED | EventMask::MOVE_SELF)
                {
                    // Removed or moved: under this name it holds nothing any more.
                    self.dirs.remove(&id);
                    dirty.insert(dir);
                    continue;
                }
                match event.name {
                    Some(name) => dirty.insert(dir.join(name)),
                    None => dirty.insert(dir),
                };
            }
        }
        if std::mem::take(&mut self.lost) {
            return None;
        }
        Some(dirty)
    }
}
