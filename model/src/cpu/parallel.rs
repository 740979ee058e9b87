//! Threads for the CPU kernels. Native builds have one rayon pool, shared by these kernels,
//! `gemm` and burn-flex's own ops, sized once by [`set_threads`] (default: every core). The
//! browser's CPU fallback has no threads: the same calls run in order on the calling thread.
//! This is the only place that knows which.

/// Products smaller than this many multiply-adds stay on one thread: handing out the work
/// costs more than it saves (a decoder step's 768×768 product is 0.6 M).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
const PARALLEL_MIN_MACS: usize = 1 << 18;

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use rayon::prelude::*;

    pub fn set_threads(n: usize) -> Result<(), String> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| e.to_string())
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
            let mut state = init();
            for (i, c) in data.chunks_mut(chunk).enumerate() {
                f(&mut state, i, c);
            }
            return;
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

#[cfg(target_arch = "wasm32")]
mod imp {
    pub fn set_threads(n: usize) -> Result<(), String> {
        if n == 1 {
            Ok(())
        } else {
            Err("this build runs on one thread".into())
        }
    }

    pub fn threads() -> usize {
        1
    }

    pub fn for_each_chunk<T, S>(
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

/// How `gemm` should run a product of `macs` multiply-adds.
pub fn gemm_parallelism(macs: usize) -> gemm::Parallelism {
    imp::gemm_parallelism(macs)
}
