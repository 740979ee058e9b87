//! The workspace's native binaries that the steps and services run, and the one build that
//! makes them all.
//!
//! `cargo test --workspace` compiles every crate with the features unified over the whole
//! workspace and its dev-dependencies. A binary built by itself (`cargo build -p X --bin Y`)
//! unifies only X's features, so it compiled X and much of its graph a second time (the
//! `florence2` CLI and `florence2-proxy` took 7 min each on a cold 2-core machine) and
//! overwrote the binary the tests had used. [`build`] asks for the tests, the libraries and
//! every binary in one `cargo build --workspace --lib --bins --tests`, which resolves features
//! exactly as `cargo test --workspace` does (`cargo +nightly … --unit-graph -Z unstable-options`
//! shows it: every unit of the test build is in it, with the same features and profile, except
//! the doctests, which rustdoc compiles when they run), so the test run that follows compiles
//! nothing. `--lib` is for the doctests: they link the libraries built outside test mode.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::{Result, cargo, run_step, target_dir};

/// A binary target of the workspace.
#[derive(Debug, Clone, Copy)]
pub struct Bin {
    pub package: &'static str,
    pub name: &'static str,
}

/// The `florence2` CLI: the shared post-processor of the Florence2Local e2e, and our side of
/// `cargo xtask bench model`. Moving the CLI to another package changes this line only.
pub const CLI: Bin = Bin {
    package: "florence2-cli",
    name: "florence2",
};
pub const PROXY: Bin = Bin {
    package: "florence2-proxy",
    name: "florence2-proxy",
};
pub const EMULATOR: Bin = Bin {
    package: "nvcf-emulator",
    name: "nvcf-emulator",
};
/// Writes the test fixtures (pictures, answers) into a folder.
pub const FIXTURES: Bin = Bin {
    package: "florence2-fixtures",
    name: "florence2-fixtures",
};
/// A scripted stand-in for our proxy that also serves the fixtures.
pub const PROXY_DOUBLE: Bin = Bin {
    package: "florence2-fixtures",
    name: "proxy-double",
};

impl Bin {
    /// Its debug build, made by [`build`].
    pub fn debug(self) -> PathBuf {
        target_dir().join("debug").join(self.name)
    }

    /// A command that runs its debug build (built first when this process has not yet).
    pub fn command(self) -> Result<Command> {
        build()?;
        Ok(Command::new(self.debug()))
    }
}

/// The command that builds every test and binary of the workspace with one feature set.
pub fn build_command() -> Command {
    let mut cmd = cargo();
    cmd.args(["build", "--workspace", "--lib", "--bins", "--tests"]);
    cmd
}

static BUILT: AtomicBool = AtomicBool::new(false);

/// Builds (once per process) every native test and binary of the workspace, debug, with the
/// feature set of `cargo test --workspace`.
pub fn build() -> Result {
    if BUILT.load(Ordering::Relaxed) {
        return Ok(());
    }
    run_step(&mut build_command())?;
    BUILT.store(true, Ordering::Relaxed);
    Ok(())
}
