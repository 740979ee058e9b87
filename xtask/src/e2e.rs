//! `cargo xtask e2e [FILTER]`: builds the demo and runs only its end-to-end suite (the tests
//! whose name contains FILTER, when given).

use crate::util::Result;
use crate::{site, steps};

pub fn run(args: &[String]) -> Result {
    if args.len() > 1 {
        return Err("usage: cargo xtask e2e [FILTER]".into());
    }
    eprintln!("{}", site::build()?);
    let summary = steps::demo_e2e(args.first().map(String::as_str))?;
    println!("\nSUMMARY: demo e2e: {summary}");
    Ok(())
}
