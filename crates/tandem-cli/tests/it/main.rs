//! End-to-end tests of the `tandem` binary: its offline commands, and `tandem serve` exporting traces.

#[cfg(test)]
mod audit;
#[cfg(test)]
mod dlp;
#[cfg(test)]
mod edit;
#[cfg(test)]
mod governance;
#[cfg(test)]
mod lifecycle;
#[cfg(test)]
mod local;
#[cfg(test)]
mod otel;
#[cfg(test)]
mod pr;
#[cfg(test)]
mod replicas;
#[cfg(test)]
mod report;
#[cfg(test)]
mod route;
#[cfg(test)]
mod support;
#[cfg(test)]
mod task;
#[cfg(test)]
mod tui;
