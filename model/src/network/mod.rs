//! The network, in burn's generic ops: the small layers ([`nn`]), DaViT ([`vision`]), the
//! projector, BART ([`bart`]), the `[vocab, d_model]` token matrix ([`vocab`]) and the whole
//! model ([`model`]). Its hot operations go through [`crate::kernels`].

pub mod bart;
pub mod model;
pub mod nn;
pub mod projector;
pub mod vision;
pub mod vocab;
