use std::os::unix::fs::symlink;

use super::*;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn directories_are_created_0700_and_a_shared_one_is_narrowed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a/b");
    assert_eq!(ensure_dir(&dir).unwrap(), Access::Private);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&root.path().join("a")), 0o700);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(ensure_dir(&dir).unwrap(), Access::Narrowed(0o755));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(ensure_dir(&dir).unwrap(), Access::Private);
}

#[test]
fn a_file_readable_by_others_is_narrowed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    fs::write(&path, b"x").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(ensure_file(&path).unwrap(), Access::Narrowed(0o644));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(read(&path, 10).unwrap(), (b"x".to_vec(), Access::Private));
}

#[test]
fn writes_are_0600_atomic_and_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/identity.key");
    write(&path, b"one", Target::CreateNew).unwrap();
    assert!(matches!(
        write(&path, b"two", Target::CreateNew),
        Err(PrivateFileError::Exists(_))
    ));
    assert_eq!(fs::read(&path).unwrap(), b"one");
    write(&path, b"two", Target::Replace).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"two");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(entries(path.parent().unwrap()), ["identity.key"]);
}

/// A link planted at the key file's name, pointing at a file the attacker
/// wants overwritten or read: reads refuse it, a replacing write replaces the
/// link itself, a create-only write refuses, and the victim is untouched.
#[test]
fn a_symlink_planted_at_the_target_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let victim_mode = mode(&victim);
    let path = dir.path().join("identity.key");
    symlink(&victim, &path).unwrap();

    assert!(matches!(
        read(&path, 100),
        Err(PrivateFileError::Symlink(_))
    ));
    assert!(matches!(
        ensure_file(&path),
        Err(PrivateFileError::Symlink(_))
    ));
    assert!(matches!(
        write(&path, b"secret", Target::CreateNew),
        Err(PrivateFileError::Exists(_))
    ));
    assert_eq!(fs::read(&victim).unwrap(), b"precious");

    write(&path, b"secret", Target::Replace).unwrap();
    assert!(fs::symlink_metadata(&path).unwrap().is_file());
    assert_eq!(fs::read(&path).unwrap(), b"secret");
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(mode(&victim), victim_mode);
}

/// The temporary name is random, but even a link or file that happened to
/// sit at it (dangling or not) is refused, never followed or truncated.
#[test]
fn a_file_or_symlink_at_the_temporary_name_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let planted = dir.path().join(".identity.key.0011223344556677.tmp");
    symlink(&victim, &planted).unwrap();
    assert!(matches!(
        create_new(&planted),
        Err(PrivateFileError::Exists(_))
    ));
    let dangling = dir.path().join("dangling");
    symlink(dir.path().join("nowhere"), &dangling).unwrap();
    assert!(matches!(
        create_new(&dangling),
        Err(PrivateFileError::Exists(_))
    ));
    assert!(!dir.path().join("nowhere").exists());
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_fifo_a_directory_or_an_oversized_file_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert!(matches!(
        read(&fifo, 10),
        Err(PrivateFileError::NotAFile(_))
    ));
    assert!(matches!(
        read(dir.path(), 10),
        Err(PrivateFileError::NotAFile(_))
    ));
    let file = dir.path().join("file");
    fs::write(&file, [0u8; 11]).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        read(&file, 10),
        Err(PrivateFileError::TooLarge(_, 10))
    ));
    assert!(matches!(
        ensure_dir(&file),
        Err(PrivateFileError::Io { .. } | PrivateFileError::NotADirectory(_))
    ));
}

#[test]
fn a_path_owned_by_another_user_is_refused() {
    if rustix::process::geteuid().as_raw() != 0 {
        return; // only root can give a file away
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    fs::write(&path, b"x").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    assert!(matches!(
        ensure_file(&path),
        Err(PrivateFileError::NotOwner { owner: 65534, .. })
    ));
}
