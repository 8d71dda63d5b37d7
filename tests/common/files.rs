//! The files under a folder, for the tests that read the repository's own sources and
//! documents. Depends on nothing, so any test can include it (`#[path]`).

use std::path::{Path, PathBuf};

/// Adds to `out` every file under `dir` (recursively) whose name ends in `.ext`.
pub fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}
