//! Integration tests of `tandem serve` against the scripted test upstream, over real loopback sockets.

mod apis;
mod errors;
mod streaming;
mod support;
