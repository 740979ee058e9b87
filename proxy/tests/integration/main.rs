//! Integration tests of the proxy against the NVCF emulator, over real HTTP on loopback.
//! One binary (one link) for all; every module shares the captured logs of `support`.

mod abuse;
mod abuse_process;
mod cli;
mod client_tokens;
mod end_to_end;
mod hostile;
mod limits;
mod load;
mod nim;
mod nvcf_uploads;
mod protocol;
mod secrets;
mod serving;
mod support;
