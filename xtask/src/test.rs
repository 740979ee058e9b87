//! `cargo xtask test`: everything, in the order that fails fastest, with a summary line that
//! also says how long each step took; and `cargo xtask bench`.

use std::time::Instant;

use crate::util::{Result, cargo, run_step, timed, times};
use crate::{package, services, setup, site, steps};

pub fn run(args: &[String]) -> Result {
    if let Some(unknown) = args.first() {
        return Err(format!(
            "cargo xtask test takes no arguments (got {unknown:?})"
        ));
    }
    let started = Instant::now();
    let reference = steps::reference_data()?;
    timed("fmt", steps::fmt)?;
    let chromium = timed("setup", steps::setup)?;
    timed("clippy", steps::clippy)?;
    timed("native build", steps::native_build)?;
    timed("native tests", steps::native_tests)?;
    let native_secs = started.elapsed().as_secs_f64();

    let fixtures = timed("fixtures", services::fixtures)?;
    let double = services::proxy_double(&fixtures)?;
    let (_emulator, proxy) = services::emulator_and_proxy(None)?;
    let local = services::local_proxy()?;
    let browser = timed("browser tests", || {
        steps::browser_tests(&double, Some(&proxy), local.as_ref(), None)
    })?;
    let package = timed("package", package::build)?;
    timed("typings", steps::typings)?;
    timed("package API", || steps::package_api(&double))?;
    let local_e2e = timed("Florence2Local e2e", steps::local_e2e)?;
    let demo = timed("demo build", site::build)?;
    let demo_e2e = timed("demo e2e", || steps::demo_e2e(None))?;

    println!(
        "\nSUMMARY: fmt + clippy clean | {reference} | native tests passed ({native_secs:.0} s) | browser tests: {browser} in headless {chromium} | {package} | typings ok | package API in Chromium ok | {local_e2e} | {demo} | demo e2e: {demo_e2e} | steps: {} | total {:.1} min",
        times(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// `cargo xtask bench`: criterion natively, then the timed browser tests.
pub fn bench() -> Result {
    setup::wasm_toolchain()?;
    setup::chromium()?;
    run_step(cargo().args(["bench", "-p", "florence2"]))?;
    let double = services::proxy_double(&services::fixtures()?)?;
    steps::browser_tests(&double, None, None, Some("fast"))?;
    steps::browser_tests(&double, None, None, Some("quickly"))?;
    let package = package::build()?;
    println!("{package}");
    Ok(())
}
