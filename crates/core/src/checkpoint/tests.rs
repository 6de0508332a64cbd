use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cox_protocol::{CheckpointKind, PathChange};

use super::{Limits, Store, Target};

const LIMITS: Limits = Limits {
    max_file_bytes: 1 << 20,
    max_bytes: 1 << 30,
};

/// Every path with its mode, bytes or link target.
type Snapshot = Vec<(String, u32, Option<Vec<u8>>, Option<PathBuf>)>;

struct Tree {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let tree = Tree {
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        };
        tree.write("src/a.js", "module.exports = 1;\n");
        tree.write("src/b.js", "b\n");
        tree.write("README.md", "# readme\n");
        tree
    }

    fn root(&self) -> PathBuf {
        self.work.path().to_path_buf()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }

    fn open(&self) -> Store {
        self.open_with(LIMITS)
    }

    fn open_with(&self, limits: Limits) -> Store {
        Store::open(
            self.home.path(),
            "s1",
            &[self.root()],
            &[self.path(".cox")],
            Vec::new(),
            limits,
        )
        .unwrap()
    }

    /// Every path under the root with its kind, mode and bytes: what "the same tree" means.
    fn snapshot(&self) -> Snapshot {
        let mut out = Vec::new();
        walk(&self.root(), &self.root(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
    for entry in fs_err::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = fs_err::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            out.push((rel, 0, None, Some(fs_err::read_link(&path).unwrap())));
        } else if meta.is_dir() {
            out.push((rel, mode, None, None));
            walk(root, &path, out);
        } else {
            out.push((rel, mode, Some(fs_err::read(&path).unwrap()), None));
        }
    }
}

fn changes(store: &mut Store, action: &str) -> Vec<(String, PathChange)> {
    let checkpoint = store
        .record(CheckpointKind::Action, None, action)
        .unwrap()
        .expect("something changed");
    let cwd = store.walker_root();
    checkpoint
        .files(&cwd)
        .into_iter()
        .map(|f| (f.path, f.change))
        .collect()
}

impl Store {
    fn walker_root(&self) -> PathBuf {
        self.index.keys().next().cloned().unwrap()
    }
}

#[test]
fn detects_every_kind_of_change_by_any_means() {
    let tree = Tree::new();
    let mut store = tree.open();
    store.ensure_base().unwrap();
    assert!(
        store
            .record(CheckpointKind::Action, None, "nothing")
            .unwrap()
            .is_none()
    );
    tree.write("src/a.js", "module.exports = 2;\n");
    tree.write("src/new/c.js", "c\n");
    fs_err::remove_file(tree.path("README.md")).unwrap();
    fs_err::rename(tree.path("src/b.js"), tree.path("src/moved.js")).unwrap();
    fs_err::set_permissions(
        tree.path("src/moved.js"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut seen = changes(&mut store, "mixed");
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("README.md".into(), PathChange::Deleted),
            ("src/a.js".into(), PathChange::Modified),
            (
                "src/moved.js".into(),
                PathChange::Renamed {
                    from: "src/b.js".into()
                }
            ),
            ("src/new".into(), PathChange::Created),
            ("src/new/c.js".into(), PathChange::Created),
        ]
    );
    fs_err::set_permissions(
        tree.path("src/a.js"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(
        changes(&mut store, "chmod"),
        vec![(
            "src/a.js".into(),
            PathChange::Mode {
                from: "644".into(),
                to: "600".into()
            }
        )]
    );
    // Rewritten with the same bytes: no change.
    tree.write("src/a.js", "module.exports = 2;\n");
    assert!(
        store
            .record(CheckpointKind::Action, None, "same bytes")
            .unwrap()
            .is_none()
    );
}

#[test]
fn undo_restores_bytes_modes_and_removes_what_was_made() {
    let tree = Tree::new();
    fs_err::write(tree.path("bin.dat"), [0u8, 159, 146, 150, 255]).unwrap();
    let mut store = tree.open();
    store.ensure_base().unwrap();
    let before = tree.snapshot();
    tree.write("src/a.js", "changed\n");
    fs_err::remove_file(tree.path("bin.dat")).unwrap();
    fs_err::remove_file(tree.path("src/b.js")).unwrap();
    tree.write("deep/er/new.txt", "new\n");
    fs_err::set_permissions(
        tree.path("README.md"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    fs_err::os::unix::fs::symlink("src/a.js", tree.path("link")).unwrap();
    store
        .record(CheckpointKind::Action, None, "mess")
        .unwrap()
        .unwrap();
    let (outside, undone) = store
        .undo(&Target::Last, CheckpointKind::Undo, &tree.root())
        .unwrap();
    assert!(outside.is_none());
    assert_eq!(undone.undoes, vec![1]);
    assert_eq!(tree.snapshot(), before, "the tree is back byte for byte");
    // The undo can be undone: the mess is back.
    let after_mess_undone = tree.snapshot();
    store
        .undo(&Target::To(undone.id), CheckpointKind::Undo, &tree.root())
        .unwrap();
    assert_eq!(
        fs_err::read_to_string(tree.path("src/a.js")).unwrap(),
        "changed\n"
    );
    assert!(!tree.path("bin.dat").exists());
    assert_ne!(tree.snapshot(), after_mess_undone);
    // And undone again, from a reopened store.
    drop(store);
    let mut store = tree.open();
    store
        .undo(&Target::Last, CheckpointKind::Undo, &tree.root())
        .unwrap();
    assert_eq!(tree.snapshot(), before);
    assert!(matches!(
        store.undo(&Target::Last, CheckpointKind::Undo, &tree.root()),
        Err(crate::Error::Undo(super::Refusal::Nothing))
    ));
}

#[test]
fn undo_refuses_when_the_person_changed_a_file_since() {
    let tree = Tree::new();
    let mut store = tree.open();
    store.ensure_base().unwrap();
    tree.write("src/a.js", "by the agent\n");
    store
        .record(CheckpointKind::Action, None, "edit")
        .unwrap()
        .unwrap();
    tree.write("src/a.js", "by the person\n");
    let error = store
        .undo(&Target::Last, CheckpointKind::Undo, &tree.root())
        .unwrap_err()
        .to_string();
    assert!(error.contains("src/a.js"), "{error}");
    assert!(error.contains("changed since"), "{error}");
    assert_eq!(
        fs_err::read_to_string(tree.path("src/a.js")).unwrap(),
        "by the person\n",
        "nothing was touched"
    );
    // The person's edit is its own checkpoint, never undone with the agent's.
    let kinds: Vec<CheckpointKind> = store.checkpoints().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![CheckpointKind::Action, CheckpointKind::Outside]);
}

#[test]
fn undo_to_spans_actions_and_leaves_outside_changes_alone() {
    let tree = Tree::new();
    let mut store = tree.open();
    store.ensure_base().unwrap();
    let before = fs_err::read_to_string(tree.path("src/a.js")).unwrap();
    tree.write("src/a.js", "one\n");
    let first = store
        .record(CheckpointKind::Action, None, "one")
        .unwrap()
        .unwrap();
    tree.write("notes.txt", "the person's notes\n");
    store
        .record(CheckpointKind::Outside, None, "outside")
        .unwrap()
        .unwrap();
    tree.write("src/a.js", "two\n");
    tree.write("src/c.js", "c\n");
    store
        .record(CheckpointKind::Action, None, "two")
        .unwrap()
        .unwrap();
    store
        .undo(&Target::To(first.id), CheckpointKind::Undo, &tree.root())
        .unwrap();
    assert_eq!(
        fs_err::read_to_string(tree.path("src/a.js")).unwrap(),
        before
    );
    assert!(!tree.path("src/c.js").exists());
    assert_eq!(
        fs_err::read_to_string(tree.path("notes.txt")).unwrap(),
        "the person's notes\n"
    );
}

#[test]
fn content_too_large_to_keep_is_named_not_lost() {
    let tree = Tree::new();
    tree.write("big.bin", &"x".repeat(2048));
    let mut store = tree.open_with(Limits {
        max_file_bytes: 1024,
        max_bytes: 1 << 30,
    });
    store.ensure_base().unwrap();
    tree.write("big.bin", "small now");
    store
        .record(CheckpointKind::Action, None, "shrink")
        .unwrap()
        .unwrap();
    let error = store
        .undo(&Target::Last, CheckpointKind::Undo, &tree.root())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("big.bin") && error.contains("not kept"),
        "{error}"
    );
    assert_eq!(
        fs_err::read_to_string(tree.path("big.bin")).unwrap(),
        "small now"
    );
}

#[test]
fn git_and_ignored_directories_are_never_walked_and_ignores_are_frozen() {
    let tree = Tree::new();
    tree.write(".git/HEAD", "ref: refs/heads/main\n");
    tree.write(".gitignore", "node_modules/\nbuild/\n");
    tree.write("node_modules/x/index.js", "x\n");
    let mut store = tree.open();
    store.ensure_base().unwrap();
    assert!(
        store
            .index
            .keys()
            .all(|p| !p.starts_with(tree.path(".git")))
    );
    assert!(
        store
            .index
            .keys()
            .all(|p| !p.starts_with(tree.path("node_modules")))
    );
    tree.write(".git/HEAD", "ref: refs/heads/other\n");
    tree.write("node_modules/x/index.js", "y\n");
    assert!(
        store
            .record(CheckpointKind::Action, None, "ignored only")
            .unwrap()
            .is_none()
    );
    // A model that ignores `tests/` now does not hide what it writes there.
    tree.write(".gitignore", "node_modules/\nbuild/\ntests/\n");
    tree.write("tests/db.test.js", "pg.connect()\n");
    let seen = changes(&mut store, "hide");
    assert!(
        seen.contains(&("tests/db.test.js".into(), PathChange::Created)),
        "{seen:?}"
    );
}

/// One change made to a tree.
type Step = Box<dyn Fn(&Tree)>;

/// What the kernel's hints lead to is what a full walk finds, whatever the changes: every
/// known path is there with its kind and mode, and nothing else.
#[test]
fn the_watched_looks_agree_with_a_full_walk() {
    let tree = Tree::new();
    let mut store = tree.open();
    store.ensure_base().unwrap();
    assert!(store.armed, "inotify is available here");
    let steps: Vec<Step> = vec![
        Box::new(|t| t.write("a/b/c/d.txt", "deep\n")),
        Box::new(|t| fs_err::rename(t.path("a/b"), t.path("moved")).unwrap()),
        Box::new(|t| t.write("moved/c/e.txt", "after the move\n")),
        Box::new(|t| fs_err::remove_dir_all(t.path("moved")).unwrap()),
        Box::new(|t| {
            // The same name, a new directory (no watch of its own yet), filled at once.
            fs_err::create_dir(t.path("moved")).unwrap();
            t.write("moved/x.txt", "x\n");
            t.write("moved/y/z.txt", "z\n");
        }),
        Box::new(|t| {
            fs_err::set_permissions(t.path("moved/y"), std::fs::Permissions::from_mode(0o700))
                .unwrap()
        }),
        Box::new(|t| fs_err::os::unix::fs::symlink("moved/x.txt", t.path("link")).unwrap()),
        Box::new(|t| {
            fs_err::remove_file(t.path("link")).unwrap();
            fs_err::create_dir(t.path("link")).unwrap();
            t.write("link/inside.txt", "i\n");
        }),
        Box::new(|t| {
            use std::io::Write;
            let mut f = fs_err::OpenOptions::new()
                .append(true)
                .open(t.path("src/a.js"))
                .unwrap();
            f.write_all(b"// appended in place\n").unwrap();
        }),
        Box::new(|t| fs_err::hard_link(t.path("src/b.js"), t.path("moved/hard.js")).unwrap()),
        Box::new(|t| {
            // Written through one name: the other changed too.
            use std::io::Write;
            let mut f = fs_err::OpenOptions::new()
                .append(true)
                .open(t.path("src/b.js"))
                .unwrap();
            f.write_all(b"pg.connect()\n").unwrap();
        }),
    ];
    for (n, step) in steps.iter().enumerate() {
        step(&tree);
        store
            .record(CheckpointKind::Action, None, &format!("step {n}"))
            .unwrap();
        let walked = store.walker.scan();
        let known: Vec<(&PathBuf, &super::Kind, u32)> = store
            .index
            .iter()
            .map(|(p, e)| (p, &e.seen.kind, e.seen.mode))
            .collect();
        let truth: Vec<(&PathBuf, &super::Kind, u32)> =
            walked.iter().map(|(p, s)| (p, &s.kind, s.mode)).collect();
        assert_eq!(known, truth, "after step {n}");
        for (path, entry) in &store.index {
            if let Some(blob) = entry.blob
                && entry.seen.kind == super::Kind::File
            {
                assert!(
                    store.pack.same_as_file(blob, path),
                    "after step {n}: {} differs from what was kept",
                    path.display()
                );
            }
        }
    }
    assert!(store.armed, "no step needed a full walk");
}
