//! Strict JSON decoding that reports the path of the offending field.

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Decode `body` as `T`, naming the JSON path of the first error (`messages[2].content`).
///
/// Tracking the path costs a fair share of decoding a request, so a body is decoded without it first; only a
/// body that fails is decoded again with it, to name the field.
pub(crate) fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).or_else(|_| with_path(body))
}

/// Decode `body`, tracking the path for the error.
fn with_path<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        Error::Json {
            path,
            message: err.inner().to_string(),
        }
    })
}

/// Decode an upstream body (once per streamed chunk), mapping failures to [`Error::Upstream`].
pub(crate) fn upstream_from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    from_slice(body).map_err(|err| Error::Upstream(err.to_string()))
}
