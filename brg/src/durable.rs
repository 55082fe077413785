//! Durable file writes: the one atomic replace every file brgd keeps goes through, and the
//! append its model journal uses.
//!
//! Both survive a crash or a power cut at any point: [`write_atomic`] leaves the old content
//! or the new one, never a mix; [`append`] leaves at most a torn tail after the last synced
//! record, which the reader detects and ignores (see `agent::store`).

use std::io::Write as _;
use std::path::Path;

/// Replaces `path` with `bytes`: write a temporary file in the same directory, fsync it,
/// rename it over `path`, fsync the directory (so the rename itself is durable).
///
/// The caller serialises first and calls this only with what it means to store: a
/// serialisation that failed must not become an empty file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Appends `bytes` to an open file and makes them durable (`fdatasync`). The file itself
/// must already be durable in its directory (created by [`write_atomic`]).
pub fn append(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_appends_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("brg-durable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("f");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two\n").expect("rewrite");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        append(&mut file, b"three\n").expect("append");
        assert_eq!(std::fs::read(&path).expect("read"), b"two\nthree\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["f"], "no temporary file left");
        assert!(
            write_atomic(&dir.join("missing/f"), b"x").is_err(),
            "no directory: an error, not a panic"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
