//! florence2-cli: the `florence2` command (src/bin/florence2.rs) and what it is made of
//! besides the model (florence2-burn): the golden checks against transformers ([`parity`],
//! [`e2e`]) and the `label` application ([`label`]). Everything here may touch the file
//! system and the network; the model crate does neither.

pub mod e2e;
pub mod label;
pub mod parity;
