//! `cargo xtask build`: the release builds, the npm package into `pkg/` and the demo into
//! `web/dist`.

use crate::util::Result;
use crate::{package, site};

pub fn run() -> Result {
    eprintln!("{}", package::build()?);
    eprintln!("{}", site::build()?);
    Ok(())
}
