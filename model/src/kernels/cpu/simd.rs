//! Element-wise and row kernels on f32 slices, written so that the compiler vectorises them
//! (no branches, no libm calls in the loops), and compiled three times: for AVX-512 and for
//! AVX2+FMA, chosen at run time when the CPU has them, and portably.

/// Defines `fn name(args)` that runs the AVX-512 build of `body` when the CPU supports it,
/// else the AVX2+FMA build, else the portable one. The body must be safe code; only the
/// feature dispatch is unsafe. The body sees two consts:
/// - `FUSED: bool`, true in both x86 builds: [`madd`] with it is one fused multiply-add
///   there and a plain multiply and add elsewhere (where `mul_add` would be a slow software
///   call, as on wasm32);
/// - `WIDE: bool`, true in the AVX-512 build: 32 registers of 16 floats, so a register tile
///   may be twice as wide as AVX2's 16 registers of 8 allow.
///
/// What equals what: the compiler never reorders float operations, so every vector width adds
/// in the order the source writes, and the AVX-512 and AVX2+FMA builds (both `FUSED`) give the
/// same values bit for bit. The portable build (wasm32, and x86 CPUs without AVX2 and FMA)
/// rounds each multiply and each add where those fuse them (`madd`), so its last bits can
/// differ from theirs. Neither is "the" reference: the goldens (transformers, f32, 1e-4 on
/// every tensor, ids exact) are what both are held to — natively by `cargo test`, in the
/// browser's CPU build by the `Florence2Local` end-to-end suite (`tests/e2e/local.mjs`).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(unused)]
            fn portable<const FUSED: bool, const WIDE: bool>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    portable::<true, true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    portable::<true, false>($($arg),*)
                }
                if $crate::kernels::cpu::simd::has_avx512() {
                    // SAFETY: the CPU has AVX-512 F and VL, AVX2 and FMA (checked just above),
                    // the only requirement of calling a `target_feature` function.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable::<false, false>($($arg),*)
        }
    };
}
pub(super) use multiversion;

/// Whether [`multiversion!`] may run its AVX-512 build: the CPU has AVX-512 F and VL (and
/// with them AVX2 and FMA), and `FLORENCE2_NO_AVX512` is unset, which benchmarks set to
/// measure the AVX2 build on the same machine. Read once.
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::env::var_os("FLORENCE2_NO_AVX512").is_none()
    })
}

/// `e^x` to within 2 ulp (Cephes' `expf`: range reduction to `2^n · e^r`, `|r| ≤ ln 2 / 2`,
/// degree-6 polynomial); 0 below the normal range (so `-inf` → 0, as masked scores need).
/// Its multiply-adds are fused when `FUSED` ([`madd`]): an attention row's exponentials were
/// ~5% of the BART encoder's time on one core, as unfused multiplies and adds.
#[inline(always)]
pub fn exp<const FUSED: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const MIN: f32 = -87.336_55;
    const MAX: f32 = 88.376_26;
    let underflow = x < MIN;
    let x = x.clamp(MIN, MAX);
    let n = madd::<FUSED>(x, LOG2E, 0.5).floor();
    let r = madd::<FUSED>(-n, C2, madd::<FUSED>(-n, C1, x));
    let mut p = 1.987_569_1e-4;
    p = madd::<FUSED>(p, r, 1.398_199_9e-3);
    p = madd::<FUSED>(p, r, 8.333_452e-3);
    p = madd::<FUSED>(p, r, 4.166_579_6e-2);
    p = madd::<FUSED>(p, r, 1.666_666_5e-1);
    p = madd::<FUSED>(p, r, 5e-1); // 5.000_000_1e-1 in the source polynomial: the same f32
    let y = madd::<FUSED>(p, r * r, r) + 1.0;
    // 2^n from the integer bits of n + 1.5·2^23 (exact for |n| < 2^22; no float→int cast,
    // which would not vectorise).
    let bits = (n + 12_582_912.0)
        .to_bits()
        .wrapping_sub(0x4B40_0000)
        .wrapping_add(127)
        << 23;
    let e = y * f32::from_bits(bits);
    if underflow { 0.0 } else { e }
}

/// The error function to within a few ulp: Eigen's rational approximation on [-4, 4]
/// (erf is ±1 in f32 outside); multiply-adds fused when `FUSED`, as in [`exp`].
#[inline(always)]
pub fn erf<const FUSED: bool>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10;
    p = madd::<FUSED>(p, x2, 2.770_681_4e-8);
    p = madd::<FUSED>(p, x2, -2.101_024e-6);
    p = madd::<FUSED>(p, x2, -5.692_506_4e-5);
    p = madd::<FUSED>(p, x2, -7.349_906_3e-4);
    p = madd::<FUSED>(p, x2, -2.954_6e-3);
    p = madd::<FUSED>(p, x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5;
    q = madd::<FUSED>(q, x2, -2.133_740_6e-4);
    q = madd::<FUSED>(q, x2, -1.682_827e-3);
    q = madd::<FUSED>(q, x2, -7.373_329e-3);
    q = madd::<FUSED>(q, x2, -1.426_474e-2);
    x * p / q
}

multiversion! {
    /// `x ← GELU(x) = x/2 · (1 + erf(x/√2))` (the exact GELU of PyTorch's `nn.GELU()`).
    pub fn gelu(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf::<FUSED>(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// Asks the CPU to bring `data` into its caches, one request per 64-byte line, without
/// waiting for it. The streaming kernels (a decoder step reads each weight once) call it for
/// the rows they will read next: with the hardware prefetcher alone, the greedy screening
/// pass read ~8.6 GB/s from memory on one core, which reads ~14 GB/s in a plain loop (with
/// this, and four rows at a time, ~10.7). A hint only: it changes no result, and does
/// nothing where the target has no such instruction.
#[inline(always)]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = std::mem::size_of_val(data);
        let start = data.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults and changes no memory; the address is inside
            // `data` (`offset < bytes`).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Floating-point reductions do not vectorise by themselves (the compiler keeps their
/// order); these keep 8 independent lanes, which it turns into one SIMD register.
const LANES: usize = 8;

#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a·b` in 8 lanes.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest value, in 16 lanes (a maximum does not depend on the order it is taken in,
/// so every width gives the same value; 16 fill an AVX-512 register).
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

/// `x ← exp(x - max) / Σ` in place (at least one finite value).
#[inline(always)]
fn softmax<const FUSED: bool>(x: &mut [f32]) {
    let m = max(x);
    for v in x.iter_mut() {
        *v = exp::<FUSED>(*v - m);
    }
    let inv = 1.0 / sum(x);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

multiversion! {
    /// Softmax of each `row_len` row of `x` in place (a row needs one finite value: a causal
    /// mask always leaves the diagonal).
    pub fn softmax_rows(x: &mut [f32], row_len: usize) {
        for row in x.chunks_exact_mut(row_len) {
            softmax::<FUSED>(row);
        }
    }
}

/// `a·b + c`: one fused multiply-add (rounded once) when `FUSED`, else rounded twice.
#[inline(always)]
pub fn madd<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// `c[m×n] = a[m×k] · b[k×n]`, row-major with row strides `lda`, `n` and `n`, in tiles of 4
/// rows × 16 columns held in registers (`m % 4 == 0`, `n % 16 == 0`); when `WIDE`, 4 × 32
/// where the columns allow: a tile's accumulators must outnumber the FMA latency (4 cycles,
/// 2 a cycle) to keep the units busy, and 4 × 16 are 8 AVX2 registers but 4 AVX-512 ones.
/// Each value sums over `k` in order whatever the tile, so the tiles give the same values.
///
/// # Panics
/// On sizes that do not fit the slices (the callers pad their buffers; a bug otherwise).
#[inline(always)]
fn matmul_4x16<const FUSED: bool, const WIDE: bool>(
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert!(
        m.is_multiple_of(4)
            && n.is_multiple_of(16)
            && k <= lda
            && b.len() >= k * n
            && c.len() >= m * n
    );
    for i in (0..m).step_by(4) {
        let rows: [&[f32]; 4] = std::array::from_fn(|r| &a[(i + r) * lda..][..k]);
        let mut j = 0;
        if WIDE {
            while j + 32 <= n {
                tile_4xw::<FUSED, 32>(rows, b, n, j, &mut c[i * n..]);
                j += 32;
            }
        }
        while j < n {
            tile_4xw::<FUSED, 16>(rows, b, n, j, &mut c[i * n..]);
            j += 16;
        }
    }
}

/// One tile of [`matmul_4x16`]: `c[r][j..j + W]` (row stride `n`) for the 4 rows of `a`
/// over their length.
#[inline(always)]
fn tile_4xw<const FUSED: bool, const W: usize>(
    a: [&[f32]; 4],
    b: &[f32],
    n: usize,
    j: usize,
    c: &mut [f32],
) {
    let [a0, a1, a2, a3] = a;
    // Four named accumulators (not an array indexed by row): the compiler keeps them in
    // registers instead of on the stack.
    let (mut c0, mut c1, mut c2, mut c3) = ([0.0f32; W], [0.0f32; W], [0.0f32; W], [0.0f32; W]);
    for (p, b_row) in b.chunks_exact(n).take(a0.len()).enumerate() {
        // A slice of exactly W (the caller keeps j + W ≤ n): the conversion cannot fail.
        let bv: &[f32; W] = b_row[j..j + W].try_into().expect("W columns");
        let (x0, x1, x2, x3) = (a0[p], a1[p], a2[p], a3[p]);
        for t in 0..W {
            c0[t] = madd::<FUSED>(x0, bv[t], c0[t]);
            c1[t] = madd::<FUSED>(x1, bv[t], c1[t]);
            c2[t] = madd::<FUSED>(x2, bv[t], c2[t]);
            c3[t] = madd::<FUSED>(x3, bv[t], c3[t]);
        }
    }
    for (r, row) in [c0, c1, c2, c3].iter().enumerate() {
        c[r * n + j..][..W].copy_from_slice(row);
    }
}

/// Packed inputs of one attention head, padded for [`matmul_4x16`]: `q` `[tq4 × d]` (already
/// scaled), `kt` `[d × tk16]` (keys transposed, zero columns after `tk`), `v` `[tk × dv16]`.
pub struct PackedHead<'a> {
    pub q: &'a [f32],
    pub kt: &'a [f32],
    pub v: &'a [f32],
    pub tq: usize,
    pub tk: usize,
    pub d: usize,
    pub dv: usize,
}

/// Rounds up to a multiple of `m`.
pub fn pad(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

multiversion! {
    /// `out[tq × dv] = softmax(q·kᵀ, causal?) · v` for one packed head; `scores` and `tmp`
    /// are scratch of `pad(tq,4)·pad(tk,16)` and `pad(tq,4)·pad(dv,16)` floats.
    pub fn attend_head(h: &PackedHead<'_>, causal: bool, scores: &mut [f32], tmp: &mut [f32], out: &mut [f32]) {
        let (tq4, tk16, dv16) = (pad(h.tq, 4), pad(h.tk, 16), pad(h.dv, 16));
        matmul_4x16::<FUSED, WIDE>(h.q, h.d, h.kt, scores, tq4, h.d, tk16);
        for (i, row) in scores.chunks_exact_mut(tk16).take(h.tq).enumerate() {
            // Query i sees keys up to i + (tk - tq) when causal.
            let visible = if causal { i + 1 + h.tk - h.tq } else { h.tk };
            softmax::<FUSED>(&mut row[..visible]);
            row[visible..].fill(0.0);
        }
        scores[h.tq * tk16..tq4 * tk16].fill(0.0);
        matmul_4x16::<FUSED, WIDE>(scores, tk16, h.v, tmp, tq4, h.tk, dv16);
        for (o, t) in out.chunks_exact_mut(h.dv).zip(tmp.chunks_exact(dv16)) {
            o.copy_from_slice(&t[..h.dv]);
        }
    }
}

/// Key and value rows [`attend_query`] prefetches ahead of the one it reads.
const QUERY_PREFETCH_ROWS: usize = 8;

multiversion! {
    /// `out = softmax(q·kⱼ for every row j of the keys) · v` for one query row `q` (already
    /// scaled); key row `j` at `keys[j·k_stride..][..q.len()]`, value row `j` at
    /// `values[j·v_stride..][..out.len()]`, as many rows as `scores` is long. Read in place:
    /// a decoder step's one query would spend longer packing the keys than using them.
    pub fn attend_query(q: &[f32], keys: &[f32], k_stride: usize, values: &[f32], v_stride: usize, scores: &mut [f32], out: &mut [f32]) {
        let (d, dv) = (q.len(), out.len());
        for (j, s) in scores.iter_mut().enumerate() {
            if let Some(ahead) = keys.get((j + QUERY_PREFETCH_ROWS) * k_stride..) {
                prefetch(&ahead[..d.min(ahead.len())]);
            }
            *s = dot(q, &keys[j * k_stride..][..d]);
        }
        softmax::<FUSED>(scores);
        out.fill(0.0);
        for (j, &p) in scores.iter().enumerate() {
            if let Some(ahead) = values.get((j + QUERY_PREFETCH_ROWS) * v_stride..) {
                prefetch(&ahead[..dv.min(ahead.len())]);
            }
            for (o, &v) in out.iter_mut().zip(&values[j * v_stride..][..dv]) {
                *o += p * v;
            }
        }
    }
}

multiversion! {
    /// LayerNorm of each `dim` row of `x` into `out`: `(x - mean) / √(var + eps) · w + b`,
    /// biased variance, as PyTorch.
    pub fn layer_norm_rows(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
        let dim = w.len();
        for (row, o) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let mean = sum(row) / dim as f32;
            for (o, &v) in o.iter_mut().zip(row) {
                *o = (v - mean) * (v - mean);
            }
            let inv = 1.0 / (sum(o) / dim as f32 + eps).sqrt();
            for (((o, &v), &w), &b) in o.iter_mut().zip(row).zip(w).zip(b) {
                *o = (v - mean) * inv * w + b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_accurate() {
        // Both forms: multiply-adds fused (the x86 builds) and not (the portable one).
        fn worst<const FUSED: bool>() -> (f32, f32) {
            let mut worst_exp = 0.0f32;
            let mut worst_erf = 0.0f32;
            for i in -80_000..=80_000 {
                let x = i as f32 * 1e-3;
                worst_exp = worst_exp.max(((exp::<FUSED>(x) - x.exp()) / x.exp()).abs());
                let want = libm_erf(x as f64) as f32;
                worst_erf = worst_erf.max((erf::<FUSED>(x) - want).abs());
            }
            assert_eq!(exp::<FUSED>(f32::NEG_INFINITY), 0.0);
            (worst_exp, worst_erf)
        }
        for (fused, (worst_exp, worst_erf)) in [(false, worst::<false>()), (true, worst::<true>())]
        {
            assert!(worst_exp < 3e-7, "fused {fused}: exp rel err {worst_exp}");
            assert!(worst_erf < 5e-7, "fused {fused}: erf abs err {worst_erf}");
        }
    }

    /// erf in f64 by its series / continued fraction (reference for the test only).
    fn libm_erf(x: f64) -> f64 {
        // Abramowitz–Stegun 7.1.5 series, converges fast for |x| < 3; erf(±x) = ±1 beyond 6.
        if x.abs() > 6.0 {
            return x.signum();
        }
        if x.abs() > 3.0 {
            // erfc asymptotic continued fraction (Lentz), accurate to 1e-12 here.
            let ax = x.abs();
            let mut f = ax;
            for k in (1..60).rev() {
                f = ax + (k as f64 / 2.0) / f;
            }
            let erfc = (-ax * ax).exp() / (f * std::f64::consts::PI.sqrt());
            return x.signum() * (1.0 - erfc);
        }
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gelu_softmax_layer_norm_match_plain_formulas() {
        let mut x: Vec<f32> = (-50..50).map(|i| i as f32 * 0.13).collect();
        let orig = x.clone();
        gelu(&mut x);
        for (g, v) in x.iter().zip(&orig) {
            let want = 0.5 * *v as f64 * (1.0 + libm_erf(*v as f64 / 2f64.sqrt()));
            assert!((*g as f64 - want).abs() < 1e-6);
        }
        let mut s = orig.clone();
        softmax_rows(&mut s, 10);
        for row in s.chunks(10) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let mut out = vec![0.0; 100];
        layer_norm_rows(&orig, &[2.0; 10], &[1.0; 10], 1e-5, &mut out);
        let row = &out[..10];
        let mean: f32 = row.iter().sum::<f32>() / 10.0;
        assert!((mean - 1.0).abs() < 1e-5);
    }
}
