//! Which pictures a run covers: the files named, and every picture in the folders named,
//! walked recursively. Pictures are recognised by extension (case-insensitive): `jpg`, `jpeg`,
//! `png`, `webp`, `gif`, `bmp` — what the image preparation decodes. Hidden entries (a name
//! starting with `.`) and symbolic links to folders are not walked (no loops, no `.git`);
//! a file named explicitly is taken whatever its extension (it fails, listed, if it is not a
//! picture). The order is stable: by key, so reruns and shards see the same list.
//!
//! A picture's key (its line in the results file, its COCO `file_name`, what `--shard`
//! hashes) is its path relative to the folder argument it was found in, `/`-separated; for a
//! file argument, its file name. So `photos`, `./photos` and `/mnt/x/photos` give the same
//! keys, and a rerun however the folder is named (or wherever it is mounted) resumes rather
//! than labelling everything again. The same file reached twice (a folder and a file inside
//! it) is taken once; two different files with one key are refused before anything runs.

use std::path::{Path, PathBuf};

use crate::label::error::LabelError;

pub const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// One picture to label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Picture {
    /// The key: the path relative to the folder argument it was found in (`/`-separated), or
    /// a file argument's name.
    pub path: String,
    /// Where it is read from.
    pub file: PathBuf,
}

/// The pictures of `args`, sorted by key, each file once. Unreadable subfolders are reported
/// in the second list (and skipped); an argument that does not exist, or two files with one
/// key, is an error.
pub fn collect(args: &[PathBuf]) -> Result<(Vec<Picture>, Vec<String>), LabelError> {
    let mut pictures = Vec::new();
    let mut warnings = Vec::new();
    for arg in args {
        let meta = std::fs::metadata(arg)
            .map_err(|e| LabelError::Usage(format!("{}: {e}", arg.display())))?;
        if meta.is_dir() {
            walk(arg, "", &mut pictures, &mut warnings);
        } else {
            let name = arg.file_name().map(|n| n.to_string_lossy().into_owned());
            pictures.push(Picture {
                path: name.unwrap_or_else(|| slashes(arg)),
                file: arg.clone(),
            });
        }
    }
    pictures.sort();
    let mut seen = std::collections::HashSet::new();
    pictures.retain(|p| seen.insert(canonical(&p.file)));
    for pair in pictures.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(LabelError::Usage(format!(
                "{} and {} would both be recorded as {:?}: give their common folder instead, or \
                 label them into separate --out files",
                pair[0].file.display(),
                pair[1].file.display(),
                pair[0].path
            )));
        }
    }
    Ok((pictures, warnings))
}

/// The file itself, whatever path reached it (as given when it cannot be resolved: it then
/// fails when read, and is listed).
pub fn canonical(file: &Path) -> PathBuf {
    std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned())
}

fn walk(dir: &Path, relative: &str, out: &mut Vec<Picture>, warnings: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            warnings.push(format!("not walked: {}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warnings.push(format!("not walked: {}: {e}", dir.display()));
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
            walk(&path, &rel, out, warnings);
        } else if is_picture(&name) && (kind.is_file() || path.is_file()) {
            out.push(Picture {
                path: rel,
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
        let keys: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert!(warnings.is_empty());
        // The text file is taken because it was named; the walk finds only pictures.
        assert_eq!(keys, ["a.jpeg", "b/1.JPG", "b/2.png", "notes.txt"]);
        assert_eq!(found[0].file, root.join("a.jpeg"));
        assert_eq!(
            collect(&[root.join("missing")]).unwrap_err().code(),
            "BAD_OPTION"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn keys_do_not_depend_on_how_the_folder_is_named() {
        let root = std::env::temp_dir().join(format!("florence2-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for f in ["pics/a.png", "pics/sub/b.jpg", "other/a.png"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let keys = |args: &[PathBuf]| -> Vec<String> {
            collect(args)
                .unwrap()
                .0
                .into_iter()
                .map(|p| p.path)
                .collect()
        };
        let plain = keys(&[root.join("pics")]);
        assert_eq!(plain, ["a.png", "sub/b.jpg"]);
        // Another spelling of the same folder, and the folder with a file inside it named too.
        assert_eq!(keys(&[root.join("pics/./sub/..")]), plain);
        assert_eq!(
            keys(&[root.join("pics"), root.join("pics/sub/b.jpg")]).len(),
            2
        );
        assert_eq!(keys(&[root.join("pics"), root.join("pics")]), plain);
        // Two different files with one key are refused, naming both.
        let err = collect(&[root.join("pics"), root.join("other")]).unwrap_err();
        assert_eq!(err.code(), "BAD_OPTION");
        assert!(err.to_string().contains("a.png"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
