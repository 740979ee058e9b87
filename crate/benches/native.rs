//! Native benchmarks of the two hot paths (the browser numbers come from
//! `cargo xtask bench`, with performance.now() in headless Chromium):
//! - parsing an endpoint ZIP with a 200-box `.response` and a 1 MB PNG overlay;
//! - preparing a 12-megapixel JPEG to at most 180,000 base64 characters (the `image` crate).

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use criterion::{Criterion, criterion_group};
    use florence2::ImageSize;
    use florence2::image_prep::{PrepareOptions, native};
    use florence2::response::{ResponseContext, ZipLimits, parse_zip};
    use florence2_fixtures as fx;

    pub fn parse(c: &mut Criterion) {
        let zip = fx::endpoint_zip(
            &fx::od_response(200, 4000, 3000),
            Some(&fx::noisy_png(1 << 20)),
        );
        let ctx = ResponseContext::same_size(ImageSize::new(4000, 3000));
        c.bench_function("parse_zip 200 boxes + 1 MB PNG", |b| {
            b.iter(|| parse_zip(&zip, ctx, ZipLimits::default()).expect("valid fixture"))
        });
    }

    pub fn prepare(c: &mut Criterion) {
        let jpeg = fx::jpeg(&fx::photo(4000, 3000, 1), 90);
        let mut group = c.benchmark_group("prepare");
        group.sample_size(10);
        group.bench_function("12 MP JPEG to 180,000 base64 chars", |b| {
            b.iter(|| native::prepare(&jpeg, &PrepareOptions::default()).expect("valid fixture"))
        });
        group.finish();
    }

    criterion_group!(benches, parse, prepare);
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

/// Benchmarks run natively only.
#[cfg(target_arch = "wasm32")]
fn main() {}
