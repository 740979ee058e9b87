//! `--backend local` over real HTTP on loopback, with the tiny end-to-end model of the
//! reference data (`florence2-tiny-e2e`) as the model: golden answers, the queue (load,
//! overflow, cancellation), bad input, and the binary refusing a model that does not load.
//! One binary (one link) for all.

mod assets;
mod golden;
mod health;
mod input;
mod memory;
mod queue;
mod startup;
mod support;
