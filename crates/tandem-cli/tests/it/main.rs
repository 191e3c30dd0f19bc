//! End-to-end tests of the `tandem` binary's offline commands.

#[cfg(test)]
mod route;
