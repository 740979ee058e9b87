//! Running commands and finding places.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

pub type Result<T = ()> = std::result::Result<T, String>;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(
            || root().join("target"),
            |p| if p.is_absolute() { p } else { root().join(p) },
        )
}

pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds `args` (packages, features) in release for the browser:
/// `target/wasm32-unknown-unknown/release/<crate>.wasm`.
pub fn build_release_wasm(args: &[&str]) -> Result {
    run_step(
        cargo()
            .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
            .args(args),
    )
}

/// Runs a command to completion, echoing it and its duration; fails with its description on a
/// non-zero exit.
pub fn run_step(cmd: &mut Command) -> Result {
    let shown = describe(cmd);
    eprintln!("+ {shown}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{shown}: cannot start: {e}"))?;
    if status.success() {
        eprintln!("  ({:.1} s)", started.elapsed().as_secs_f64());
        Ok(())
    } else {
        Err(format!("{shown}: {status}"))
    }
}

/// The named steps this process has timed so far, in order: (name, seconds).
static TIMES: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

/// Runs `step`, recording how long it took under `name` (also when it fails), for
/// [`times`]: the summary shows where a run's time went.
pub fn timed<T>(name: &'static str, step: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let out = step();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("== {name}: {seconds:.1} s");
    TIMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name, seconds));
    out
}

/// The timed steps so far, e.g. `fmt 0.4 s, clippy 5.2 min`.
pub fn times() -> String {
    let times = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    times
        .iter()
        .map(|(name, s)| {
            if *s >= 90.0 {
                format!("{name} {:.1} min", s / 60.0)
            } else {
                format!("{name} {s:.1} s")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = describe(cmd);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{shown}: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!("{shown}: {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A background server started for the tests; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, whose first stdout line is `listening on http://IP:PORT`.
pub fn start_server(cmd: &mut Command) -> Result<Server> {
    use std::io::BufRead;
    let shown = describe(cmd);
    eprintln!("+ {shown} &");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{shown}: cannot start: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("{shown}: {e}"))?;
    let url = line.trim().strip_prefix("listening on ").map(str::to_owned);
    match url {
        Some(url) => Ok(Server { child, url }),
        None => {
            let _ = child.kill();
            Err(format!(
                "{shown}: expected 'listening on URL', got {line:?}"
            ))
        }
    }
}

pub fn gzip_len(bytes: &[u8]) -> usize {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = gz.write_all(bytes);
    gz.finish().map(|v| v.len()).unwrap_or(0)
}
