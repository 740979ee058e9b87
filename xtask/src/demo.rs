//! `cargo xtask demo`: builds the package and serves it through the real proxy (NVIDIA as the
//! upstream, key from `NVIDIA_API_KEY`), on http://127.0.0.1:8080 unless `--listen` says otherwise.

use crate::build;
use crate::util::{Result, cargo, root, run_step, target_dir};

pub fn run(args: &[String]) -> Result {
    let listen = match args {
        [] => "127.0.0.1:8080".to_owned(),
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => return Err("usage: cargo xtask demo [--listen ADDR]".into()),
    };
    let report = build::package()?;
    eprintln!("{report}");
    let site = assemble_site()?;
    if std::env::var_os("NVIDIA_API_KEY").is_none() {
        eprintln!("note: NVIDIA_API_KEY is not set: the page can still send a key of your own (X-Api-Key)");
    }
    run_step(cargo().args(["run", "--release", "-p", "florence2-proxy", "--", "--listen", &listen, "--static"]).arg(&site))
}

/// The package page at `/` and the package at `/pkg/`.
fn assemble_site() -> Result<std::path::PathBuf> {
    let site = target_dir().join("demo-site");
    let pkg = site.join("pkg");
    let _ = std::fs::remove_dir_all(&site);
    std::fs::create_dir_all(&pkg).map_err(|e| format!("{}: {e}", pkg.display()))?;
    copy(&root().join("tests/e2e/package.html"), &site.join("index.html"))?;
    copy_dir(&root().join("pkg"), &pkg)?;
    Ok(site)
}

fn copy(from: &std::path::Path, to: &std::path::Path) -> Result {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result {
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
            copy_dir(&entry.path(), &target)?;
        } else {
            copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}
