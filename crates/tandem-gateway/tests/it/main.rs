//! Integration tests of `tandem serve` against the scripted test upstream, over real loopback sockets.

#[cfg(test)]
mod apis;
#[cfg(test)]
mod audit;
#[cfg(test)]
mod counters;
#[cfg(test)]
mod dlp;
#[cfg(test)]
mod errors;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod governance;
#[cfg(test)]
mod metrics;
#[cfg(test)]
mod openapi;
#[cfg(test)]
mod routing;
#[cfg(test)]
mod streaming;
#[cfg(test)]
mod support;
#[cfg(test)]
mod ui;
