//! Where every finished exchange goes: its price is worked out and the record is handed to the store.

use std::sync::Arc;

use tandem_budget::Prices;
use tandem_store::{RequestRecord, Store};

/// The one exit of every exchange record, shared by the pipeline and its metered streams.
#[derive(Debug)]
pub(crate) struct Recorder {
    store: Arc<Store>,
    prices: Arc<Prices>,
}

impl Recorder {
    pub(crate) fn new(store: Arc<Store>, prices: Arc<Prices>) -> Self {
        Recorder { store, prices }
    }

    /// Price the record and write it (queued off the request path).
    pub(crate) fn finish(&self, mut record: RequestRecord) {
        if !record.provider.is_empty() {
            let backend = format!("{}/{}", record.provider, record.upstream_model);
            record.cost = self.prices.cost(&backend, &record.usage);
        }
        self.store.record(record);
    }
}
