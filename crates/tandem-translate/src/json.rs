//! Strict JSON decoding that reports the path of the offending field.

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Decode `body` as `T`, naming the JSON path of the first error (`messages[2].content`).
pub(crate) fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        Error::Json {
            path,
            message: err.inner().to_string(),
        }
    })
}

/// Decode an upstream body, mapping failures to [`Error::Upstream`].
/// This runs once per streamed chunk, so it skips path tracking; the path is worked out only on failure.
pub(crate) fn upstream_from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .or_else(|_| from_slice(body).map_err(|err| Error::Upstream(err.to_string())))
}
