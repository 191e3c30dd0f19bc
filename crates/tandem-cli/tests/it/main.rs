//! End-to-end tests of the `tandem` binary's offline commands.

#[cfg(test)]
mod dlp;
#[cfg(test)]
mod governance;
#[cfg(test)]
mod route;
