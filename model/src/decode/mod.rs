//! From a picture and a task to a result: image decoding and preprocessing ([`image`]), the
//! tokenizer, greedy and beam search ([`generation`]), and the pipeline around the model
//! ([`pipeline`]: prompt, generate, decode, post-process).

pub mod generation;
pub mod image;
pub mod pipeline;
pub mod tokenizer;
