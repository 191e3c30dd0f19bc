//! Integration tests of the quality gates: real commands through `PlainRunner`, the DLP gate on
//! diffs, and the dependency gate on manifests of the four ecosystems.

#[cfg(test)]
mod commands;
#[cfg(test)]
mod dependencies;
#[cfg(test)]
mod dlp;
#[cfg(test)]
mod support;
