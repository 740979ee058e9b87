//! Threads for the CPU kernels. Native builds have one rayon pool, shared by these kernels,
//! `gemm` and burn-flex's own ops, sized once by [`set_threads`] (default: every core). In the
//! browser the `threads` build (wasm atomics) has the same pool, started from JS on Web Workers
//! by wasm-bindgen-rayon; the other build has no threads: the same calls run in order on the
//! calling thread. This is the only place that knows which.

/// Products smaller than this many multiply-adds stay on one thread: handing out the work
/// costs more than it saves (a decoder step's 768×768 product is 0.6 M).
const PARALLEL_MIN_MACS: usize = 1 << 18;

#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};

    use rayon::prelude::*;

    /// Stack of the pool's threads, which run whole model passes (see [`on_pool`]): as
    /// deep as the main thread's the CLI used to run them on.
    const POOL_STACK_BYTES: usize = 16 << 20;

    /// Whether the global pool is the one built here (with [`POOL_STACK_BYTES`]), not
    /// one rayon built by itself on a first parallel call.
    static POOL_BUILT_HERE: AtomicBool = AtomicBool::new(false);

    fn build(n: Option<usize>) -> Result<(), String> {
        let mut builder = rayon::ThreadPoolBuilder::new().stack_size(POOL_STACK_BYTES);
        if let Some(n) = n {
            builder = builder.num_threads(n);
        }
        builder.build_global().map_err(|e| e.to_string())?;
        POOL_BUILT_HERE.store(true, Ordering::Release);
        Ok(())
    }

    pub fn set_threads(n: usize) -> Result<(), String> {
        build(Some(n))
    }

    pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        if rayon::current_thread_index().is_some() {
            return f();
        }
        if POOL_BUILT_HERE.load(Ordering::Acquire) || build(None).is_ok() {
            rayon::scope(|_| f())
        } else {
            // A pool of rayon's own making: its threads' stacks may be too small.
            f()
        }
    }

    pub fn adopt_pool() {
        POOL_BUILT_HERE.store(true, Ordering::Release);
    }

    pub fn threads() -> usize {
        rayon::current_num_threads()
    }

    pub fn for_each_chunk<T, S>(
        data: &mut [T],
        chunk: usize,
        init: impl Fn() -> S + Sync + Send,
        f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
    ) where
        T: Send,
    {
        if threads() == 1 {
            return super::in_order(data, chunk, init, f);
        }
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(init, |state, (i, c)| f(state, i, c));
    }

    pub fn gemm_parallelism(macs: usize) -> gemm::Parallelism {
        if threads() > 1 && macs >= super::PARALLEL_MIN_MACS {
            gemm::Parallelism::Rayon(threads())
        } else {
            gemm::Parallelism::None
        }
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
mod imp {
    pub fn set_threads(n: usize) -> Result<(), String> {
        if n == 1 {
            Ok(())
        } else {
            Err("this build runs on one thread".into())
        }
    }

    pub fn adopt_pool() {}

    pub fn threads() -> usize {
        1
    }

    pub fn on_pool<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    pub fn for_each_chunk<T, S>(
        data: &mut [T],
        chunk: usize,
        init: impl Fn() -> S,
        f: impl Fn(&mut S, usize, &mut [T]),
    ) {
        super::in_order(data, chunk, init, f)
    }

    pub fn gemm_parallelism(_macs: usize) -> gemm::Parallelism {
        gemm::Parallelism::None
    }
}

/// Sizes the pool (`n` ≥ 1 threads). Only before any parallel work: the pool is built once
/// per process, so a second call, or a call after a kernel ran, is an error.
pub fn set_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("the thread count must be at least 1".into());
    }
    imp::set_threads(n)
}

/// Runs `f` (a whole model pass) on one of the pool's threads, building the pool first if
/// nothing has. A kernel called from outside the pool hands its work to the pool and sleeps
/// until it is done: each of a decoder step's ~60 dispatches then woke two threads, and a
/// caption ran ~500 context switches a token. From a pool thread, the caller takes its
/// share of the work itself.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    imp::on_pool(f)
}

/// Takes the global pool someone else built (the browser's, started from JS by
/// wasm-bindgen-rayon, whose threads have 2 MiB stacks, twice the wasm main thread's) as fit
/// for [`on_pool`] to run whole passes on.
pub fn adopt_pool() {
    imp::adopt_pool()
}

/// The pool's size.
pub fn threads() -> usize {
    imp::threads()
}

/// Runs `f(state, index, chunk)` over `data` in chunks of `chunk` elements (the last may be
/// shorter), spread over the pool; `init` makes each thread's scratch `state`.
pub fn for_each_chunk<T: Send, S>(
    data: &mut [T],
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) {
    imp::for_each_chunk(data, chunk.max(1), init, f)
}

/// [`for_each_chunk`] for work of about `macs` multiply-adds in all: below
/// `PARALLEL_MIN_MACS` the chunks run in order on the calling thread, where waking the pool
/// would cost more than the work (a decoder step's self-attention over a few tokens).
pub fn for_each_chunk_sized<T: Send, S>(
    macs: usize,
    data: &mut [T],
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) {
    if macs < PARALLEL_MIN_MACS {
        return in_order(data, chunk.max(1), init, f);
    }
    imp::for_each_chunk(data, chunk.max(1), init, f)
}

/// The chunks one after the other on the calling thread, with one scratch `state`.
fn in_order<T, S>(
    data: &mut [T],
    chunk: usize,
    init: impl Fn() -> S,
    f: impl Fn(&mut S, usize, &mut [T]),
) {
    let mut state = init();
    for (i, c) in data.chunks_mut(chunk).enumerate() {
        f(&mut state, i, c);
    }
}

/// The length of the blocks `items` are cut into for [`for_each_chunk`] when each block is
/// one large task (an MLP's rows, a patch convolution's pixels): at most `max_per_block`,
/// and as many blocks as a multiple of the pool's size, all as long as each other (the last
/// may be shorter by less than one item per block). Cut by the largest block alone, 2304
/// rows on two threads went in 5 blocks, 3 to one thread and 2 to the other: that thread
/// did 1280 rows while the other waited after 1024.
pub fn balanced_block_len(items: usize, max_per_block: usize) -> usize {
    block_len_for(items, max_per_block, threads())
}

fn block_len_for(items: usize, max_per_block: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let per_thread = items.div_ceil(threads);
    let blocks = threads * per_thread.div_ceil(max_per_block.max(1)).max(1);
    items.div_ceil(blocks).max(1)
}

/// Elements a task of [`zeros`] and [`repeat`] writes (1 MiB of f32).
const FILL_CHUNK: usize = 1 << 18;

/// A vector of `len` values written by `fill(chunk)` over the pool (in order on the calling
/// thread below [`FILL_CHUNK`] elements), where `vec![0.0; len]` would be zeroed on the
/// calling thread alone: a layer's output buffers are reused heap memory, which glibc's
/// calloc clears with one memset while the other threads wait (~2% of DaViT's samples on
/// two threads, all on one thread). `fill` must write every element of its chunk.
fn filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(&mut [std::mem::MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    for_each_chunk_sized(
        len,
        &mut v.spare_capacity_mut()[..len],
        chunk,
        || (),
        |_, _, part| fill(part),
    );
    // SAFETY: the chunks cover the first `len` elements of the capacity (for_each_chunk visits
    // every chunk, or the panic that stops it unwinds past this line), and `fill` writes
    // every element of its chunk (both callers below do).
    unsafe { v.set_len(len) };
    v
}

/// `vec![0.0; len]`, zeroed in chunks over the pool.
pub fn zeros(len: usize) -> Vec<f32> {
    filled(len, FILL_CHUNK, |part| {
        part.fill(std::mem::MaybeUninit::new(0.0))
    })
}

/// `row` repeated `times` times (`row.repeat(times)`), written in chunks over the pool: the
/// starting value of a product's output that begins as its bias.
pub fn repeat(row: &[f32], times: usize) -> Vec<f32> {
    if row.is_empty() {
        return Vec::new();
    }
    let rows_per_chunk = FILL_CHUNK.div_ceil(row.len());
    filled(row.len() * times, rows_per_chunk * row.len(), |part| {
        for dst in part.chunks_exact_mut(row.len()) {
            for (d, &s) in dst.iter_mut().zip(row) {
                d.write(s);
            }
        }
    })
}

/// How `gemm` should run a product of `macs` multiply-adds.
pub fn gemm_parallelism(macs: usize) -> gemm::Parallelism {
    imp::gemm_parallelism(macs)
}

#[cfg(test)]
mod tests {
    use super::{FILL_CHUNK, block_len_for, repeat, zeros};

    #[test]
    fn zeros_and_repeat_write_every_element() {
        for len in [0, 1, 7, FILL_CHUNK - 1, FILL_CHUNK, 3 * FILL_CHUNK + 5] {
            let z = zeros(len);
            assert_eq!(z.len(), len);
            assert!(z.iter().all(|&v| v == 0.0));
        }
        assert!(repeat(&[], 5).is_empty());
        // Rows that do not divide a chunk evenly, over several chunks.
        let row: Vec<f32> = (0..768).map(|i| i as f32 * 0.5 - 7.0).collect();
        for times in [0, 1, 3, 590, 2000] {
            assert_eq!(repeat(&row, times), row.repeat(times), "{times} rows");
        }
    }

    #[test]
    fn blocks_are_even_and_a_multiple_of_the_threads() {
        // DaViT-base's third stage on two threads: 6 blocks of 384, not 4 × 512 + 256.
        assert_eq!(block_len_for(2304, 512, 2), 384);
        // BART's prompt: one block on one thread, one each on two.
        assert_eq!(block_len_for(590, 1024, 1), 590);
        assert_eq!(block_len_for(590, 1024, 2), 295);
        for items in [1, 2, 7, 100, 590, 2304, 36864] {
            for max in [1, 16, 56, 512, 1024, 100_000] {
                for threads in [1, 2, 3, 8] {
                    let len = block_len_for(items, max, threads);
                    assert!(len >= 1 && len <= max, "{items} {max} {threads}: {len}");
                    // Blocks dealt out evenly, the busiest thread does less than one item
                    // per block more than its even share.
                    let per_thread = items.div_ceil(len).div_ceil(threads);
                    assert!(
                        per_thread * len < items.div_ceil(threads) + per_thread,
                        "{items} {max} {threads}: blocks of {len}"
                    );
                }
            }
        }
    }
}
