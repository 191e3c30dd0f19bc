//! Where every finished exchange goes: its price is worked out, its audit entry is journalled (before
//! the client gets the end of its answer) and the record is handed to the store.

use std::sync::Arc;

use tandem_audit::Ledger;
use tandem_budget::Prices;
use tandem_store::{RequestRecord, Store};

use crate::audit::{self, AnswerHasher, Trail};

/// The one exit of every exchange record, shared by the pipeline and its metered streams.
#[derive(Debug)]
pub(crate) struct Recorder {
    store: Arc<Store>,
    prices: Arc<Prices>,
    audit: Option<Arc<Ledger>>,
}

impl Recorder {
    pub(crate) fn new(store: Arc<Store>, prices: Arc<Prices>, audit: Option<Arc<Ledger>>) -> Self {
        Recorder {
            store,
            prices,
            audit,
        }
    }

    /// Price the record, append its audit entry and queue the record for the store. The audit
    /// append is synchronous (a journal write of microseconds, or a PostgreSQL commit): when it fails,
    /// the caller must not answer as if all went well.
    pub(crate) fn finish(
        &self,
        mut record: RequestRecord,
        mut trail: Trail,
    ) -> Result<(), tandem_audit::Error> {
        if !record.provider.is_empty() {
            let backend = format!("{}/{}", record.provider, record.upstream_model);
            record.cost = self.prices.cost(&backend, &record.usage);
        }
        crate::metrics::finished(&record);
        let appended = match &self.audit {
            Some(ledger) => {
                let entry = audit::entry(&record, &mut trail);
                let content = trail.content.take();
                let append = || ledger.append(&entry, content);
                match ledger.is_remote() {
                    true => waiting(append),
                    false => append(),
                }
            }
            .map(|_| ())
            .inspect_err(|err| {
                tracing::error!(error = %err, request_id = %record.id, "audit append failed");
            }),
            None => Ok(()),
        };
        self.store.record(record);
        appended
    }

    /// A hasher for the answer, when there is a ledger to record its hash.
    pub(crate) fn answer_hasher(&self) -> Option<AnswerHasher> {
        self.audit
            .as_ref()
            .map(|l| AnswerHasher::new(l.key().content_key()))
    }

    /// Keyed hash of request bytes, when there is a ledger.
    pub(crate) fn content_hash(&self, bytes: &[u8]) -> Option<String> {
        self.audit
            .as_ref()
            .map(|l| l.key().content_key().hash(bytes))
    }

    /// Whether the ledger keeps prompt and answer text.
    pub(crate) fn captures(&self) -> bool {
        self.audit.as_ref().is_some_and(|l| l.captures())
    }

    /// The ledger, if auditing is on.
    pub(crate) fn ledger(&self) -> Option<&Arc<Ledger>> {
        self.audit.as_ref()
    }
}

/// Runs `f`, which waits on the network, letting the runtime move its other tasks to another worker
/// meanwhile (only possible on the multi-threaded runtime that `tandem serve` uses).
fn waiting<T>(f: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    match multi_thread {
        true => tokio::task::block_in_place(f),
        false => f(),
    }
}
