//! Which pictures a run covers: the files named, and every picture in the folders named,
//! walked recursively. Pictures are recognised by extension (case-insensitive): `jpg`, `jpeg`,
//! `png`, `webp`, `gif`, `bmp` — what the image preparation decodes. Hidden entries (a name
//! starting with `.`) and symbolic links to folders are not walked (no loops, no `.git`);
//! a file named explicitly is taken whatever its extension (it fails, listed, if it is not a
//! picture). The order is stable: by path, so reruns and shards see the same list.

use std::path::{Path, PathBuf};

use crate::label::error::LabelError;

pub const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// One picture to label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Picture {
    /// The path as found (the argument, joined with the path inside it, `/`-separated): the
    /// key in the results file and the COCO `file_name`.
    pub path: String,
    /// The path relative to the folder argument it was found in (for a file argument, the
    /// argument itself): what `--shard` hashes, the same wherever the folder is mounted.
    pub relative: String,
    pub file: PathBuf,
}

/// The pictures of `args`, sorted by path, each once. Unreadable subfolders are reported in
/// the second list (and skipped); an argument that does not exist is an error.
pub fn collect(args: &[PathBuf]) -> Result<(Vec<Picture>, Vec<String>), LabelError> {
    let mut pictures = Vec::new();
    let mut warnings = Vec::new();
    for arg in args {
        let meta = std::fs::metadata(arg)
            .map_err(|e| LabelError::Usage(format!("{}: {e}", arg.display())))?;
        let shown = slashes(arg);
        if meta.is_dir() {
            walk(arg, &shown, "", &mut pictures, &mut warnings);
        } else {
            pictures.push(Picture {
                path: shown.clone(),
                relative: shown,
                file: arg.clone(),
            });
        }
    }
    pictures.sort();
    pictures.dedup_by(|a, b| a.path == b.path);
    Ok((pictures, warnings))
}

fn walk(
    dir: &Path,
    shown: &str,
    relative: &str,
    out: &mut Vec<Picture>,
    warnings: &mut Vec<String>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            warnings.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warnings.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if relative.is_empty() {
            name.clone()
        } else {
            format!("{relative}/{name}")
        };
        let path = entry.path();
        // `file_type` does not follow links: a linked folder is not walked (no loops), a linked
        // file is read through its link.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&path, shown, &rel, out, warnings);
        } else if is_picture(&name) && (kind.is_file() || path.is_file()) {
            out.push(Picture {
                path: format!("{}/{rel}", shown.trim_end_matches('/')),
                relative: rel,
                file: path,
            });
        }
    }
}

pub fn is_picture(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

fn slashes(p: &Path) -> String {
    let s = p.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_matched_without_case() {
        assert!(is_picture("a.JPG") && is_picture("b.webp") && is_picture("c.d.png"));
        assert!(!is_picture("notes.txt") && !is_picture("jpg") && !is_picture("x.tiff"));
    }

    #[test]
    fn folders_are_walked_sorted_and_hidden_entries_skipped() {
        let root = std::env::temp_dir().join(format!("florence2-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for f in [
            "b/2.png",
            "b/1.JPG",
            "a.jpeg",
            ".hidden/x.png",
            "c/.y.png",
            "notes.txt",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let (found, warnings) = collect(&[root.clone(), root.join("notes.txt")]).unwrap();
        let rel: Vec<&str> = found.iter().map(|p| p.relative.as_str()).collect();
        let shown = root.to_string_lossy();
        assert!(warnings.is_empty());
        // The text file is taken because it was named; the walk finds only pictures.
        assert_eq!(found.len(), 4);
        assert_eq!(&rel[..3], ["a.jpeg", "b/1.JPG", "b/2.png"]);
        assert_eq!(found[0].path, format!("{shown}/a.jpeg"));
        assert!(found[3].path.ends_with("notes.txt"));
        assert_eq!(
            collect(&[root.join("missing")]).unwrap_err().code(),
            "BAD_OPTION"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
