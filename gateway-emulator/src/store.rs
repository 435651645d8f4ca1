//! In-memory state behind sharded locks, idempotency records, and the state-file snapshot.
//!
//! No lock is held across an `.await`; every commit is one synchronous critical section.

use crate::model::{TokenRecord, Transaction};
use crate::webhooks::WebhookConfig;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

const SHARDS: usize = 32;

/// How long an `X-Request-ID` answer is replayed.
pub const IDEMPOTENCY_TTL_MS: i64 = 60 * 60 * 1000;

/// A hash map split into independently locked shards.
pub struct Sharded<K, V> {
    shards: Box<[RwLock<HashMap<K, V>>]>,
}

impl<K: Hash + Eq, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    /// The shard owning `key`.
    pub fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, V>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// All shards (for scans).
    pub fn shards(&self) -> &[RwLock<HashMap<K, V>>] {
        &self.shards
    }

    /// Removes everything.
    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.write().clear();
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Key of an idempotency record: terminal + path + `X-Request-ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdemKey {
    /// Terminal.
    pub public_id: String,
    /// Request path.
    pub path: String,
    /// Header value.
    pub key: String,
}

/// A stored first answer.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Body bytes, replayed verbatim.
    pub body: Bytes,
    /// SHA-256 of the first request's body.
    pub request_hash: [u8; 32],
    /// When it was stored (ms since epoch).
    pub created_ms: i64,
}

enum IdemEntry {
    InFlight(watch::Receiver<bool>),
    Done(Arc<StoredResponse>),
}

/// Result of looking up an `X-Request-ID`.
pub enum IdemBegin {
    /// An answer is stored: replay it (after checking the body hash).
    Done(Arc<StoredResponse>),
    /// The first request is still running: wait, then look again.
    Wait(watch::Receiver<bool>),
    /// This request is the first: run it and complete the guard.
    Owner(IdemGuard),
}

/// Held by the request that owns an idempotency key; dropping it without `complete` frees the key.
pub struct IdemGuard {
    store: Arc<Store>,
    key: Option<IdemKey>,
    tx: watch::Sender<bool>,
}

impl IdemGuard {
    /// Stores the answer and wakes the waiting duplicates.
    pub fn complete(mut self, resp: Arc<StoredResponse>) {
        if let Some(key) = self.key.take() {
            self.store
                .idem
                .shard(&key)
                .write()
                .insert(key, IdemEntry::Done(resp));
            self.store.mark_dirty();
        }
        let _ = self.tx.send(true);
    }
}

impl Drop for IdemGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut shard = self.store.idem.shard(&key).write();
            if matches!(shard.get(&key), Some(IdemEntry::InFlight(_))) {
                shard.remove(&key);
            }
        }
        // Dropping `tx` wakes the waiters with an error; they look the key up again.
    }
}

/// SHA-256 of a request body.
pub fn body_hash(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// All emulator state.
pub struct Store {
    next_id: AtomicI64,
    /// Transactions by id.
    pub txns: Sharded<i64, Transaction>,
    /// Transaction ids by `InvoiceId` (all terminals), in creation order.
    pub by_invoice: Sharded<String, Vec<i64>>,
    /// Tokens.
    pub tokens: Sharded<String, TokenRecord>,
    /// SHA-256 of every cryptogram packet already used.
    pub used_cryptograms: Sharded<[u8; 32], ()>,
    idem: Sharded<IdemKey, IdemEntry>,
    /// Webhook configuration (terminal, kind) → target.
    pub webhooks: RwLock<Vec<WebhookConfig>>,
    /// Serialises snapshot writers.
    save_lock: Mutex<()>,
    dirty: AtomicBool,
    /// How long an idempotency record is replayed, ms ([`IDEMPOTENCY_TTL_MS`] unless set).
    idem_ttl_ms: AtomicI64,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            next_id: AtomicI64::new(1_000_001),
            txns: Sharded::default(),
            by_invoice: Sharded::default(),
            tokens: Sharded::default(),
            used_cryptograms: Sharded::default(),
            idem: Sharded::default(),
            webhooks: RwLock::new(Vec::new()),
            save_lock: Mutex::new(()),
            dirty: AtomicBool::new(false),
            idem_ttl_ms: AtomicI64::new(IDEMPOTENCY_TTL_MS),
        }
    }
}

/// The persisted form of the state.
#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    version: u32,
    next_id: i64,
    transactions: Vec<Transaction>,
    tokens: Vec<TokenRecord>,
    used_cryptograms: Vec<String>,
    idempotency: Vec<IdemRecord>,
    webhooks: Vec<WebhookConfig>,
}

#[derive(Serialize, Deserialize)]
struct IdemRecord {
    key: IdemKey,
    status: u16,
    body: String,
    request_hash: String,
    created_ms: i64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// A new transaction id.
    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks the state as changed since the last snapshot.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Inserts a new transaction and indexes its invoice.
    pub fn insert_txn(&self, t: Transaction) {
        if let Some(inv) = &t.invoice_id {
            self.by_invoice
                .shard(inv.as_str())
                .write()
                .entry(inv.clone())
                .or_default()
                .push(t.id);
        }
        self.txns.shard(&t.id).write().insert(t.id, t);
        self.mark_dirty();
    }

    /// A copy of a transaction.
    pub fn get_txn(&self, id: i64) -> Option<Transaction> {
        self.txns.shard(&id).read().get(&id).cloned()
    }

    /// Runs `f` on a transaction under its shard's write lock.
    pub fn update_txn<R>(&self, id: i64, f: impl FnOnce(&mut Transaction) -> R) -> Option<R> {
        let r = self.txns.shard(&id).write().get_mut(&id).map(f);
        if r.is_some() {
            self.mark_dirty();
        }
        r
    }

    /// Transactions with this `InvoiceId`, oldest first.
    pub fn txns_for_invoice(&self, invoice: &str) -> Vec<Transaction> {
        let ids = self
            .by_invoice
            .shard(invoice)
            .read()
            .get(invoice)
            .cloned()
            .unwrap_or_default();
        ids.into_iter().filter_map(|id| self.get_txn(id)).collect()
    }

    /// Every transaction matching `pred`, oldest first.
    pub fn all_txns(&self, pred: impl Fn(&Transaction) -> bool) -> Vec<Transaction> {
        let mut v: Vec<Transaction> = Vec::new();
        for s in self.txns.shards() {
            v.extend(s.read().values().filter(|t| pred(t)).cloned());
        }
        v.sort_by_key(|t| t.id);
        v
    }

    /// Records a cryptogram as used; false if it was used before.
    pub fn use_cryptogram(&self, packet: &str) -> bool {
        let h = body_hash(packet.as_bytes());
        let fresh = self
            .used_cryptograms
            .shard(&h)
            .write()
            .insert(h, ())
            .is_none();
        self.mark_dirty();
        fresh
    }

    /// Starts or joins the request for an idempotency key.
    pub fn idem_begin(self: &Arc<Self>, key: IdemKey) -> IdemBegin {
        let now = now_ms();
        let mut shard = self.idem.shard(&key).write();
        match shard.entry(key) {
            Entry::Occupied(mut e) => match e.get() {
                IdemEntry::Done(s) if now - s.created_ms < self.idem_ttl() => {
                    IdemBegin::Done(s.clone())
                }
                IdemEntry::InFlight(rx) => IdemBegin::Wait(rx.clone()),
                IdemEntry::Done(_) => {
                    let (tx, rx) = watch::channel(false);
                    let key = e.key().clone();
                    e.insert(IdemEntry::InFlight(rx));
                    IdemBegin::Owner(IdemGuard {
                        store: self.clone(),
                        key: Some(key),
                        tx,
                    })
                }
            },
            Entry::Vacant(v) => {
                let (tx, rx) = watch::channel(false);
                let key = v.key().clone();
                v.insert(IdemEntry::InFlight(rx));
                IdemBegin::Owner(IdemGuard {
                    store: self.clone(),
                    key: Some(key),
                    tx,
                })
            }
        }
    }

    /// Sets how long `X-Request-ID` answers are replayed.
    pub fn set_idempotency_ttl(&self, ttl: std::time::Duration) {
        self.idem_ttl_ms.store(
            ttl.as_millis().min(i64::MAX as u128) as i64,
            Ordering::Relaxed,
        );
    }

    fn idem_ttl(&self) -> i64 {
        self.idem_ttl_ms.load(Ordering::Relaxed)
    }

    /// Drops idempotency records older than the TTL and declines expired 3-DS transactions.
    pub fn sweep(&self) -> Vec<i64> {
        let now = now_ms();
        let ttl = self.idem_ttl();
        for s in self.idem.shards() {
            s.write().retain(|_, e| match e {
                IdemEntry::Done(r) => now - r.created_ms < ttl,
                IdemEntry::InFlight(_) => true,
            });
        }
        let mut expired = Vec::new();
        for s in self.txns.shards() {
            let mut g = s.write();
            for t in g.values_mut() {
                if t.expire_if_abandoned(now) {
                    expired.push(t.id);
                }
            }
        }
        if !expired.is_empty() {
            self.mark_dirty();
        }
        expired
    }

    /// Forgets everything (control API reset).
    pub fn reset(&self) {
        self.txns.clear();
        self.by_invoice.clear();
        self.tokens.clear();
        self.used_cryptograms.clear();
        self.idem.clear();
        self.webhooks.write().clear();
        self.mark_dirty();
    }

    /// Loads a snapshot file (absent file = empty state).
    pub fn load(path: &Path) -> Result<Self, crate::Error> {
        let store = Self::default();
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => {
                return Err(crate::Error::LoadState {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })
            }
        };
        let snap: Snapshot =
            serde_json::from_slice(&data).map_err(|e| crate::Error::LoadState {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        store
            .next_id
            .store(snap.next_id.max(1_000_001), Ordering::Relaxed);
        for t in snap.transactions {
            store.insert_txn(t);
        }
        for t in snap.tokens {
            store
                .tokens
                .shard(t.token.as_str())
                .write()
                .insert(t.token.clone(), t);
        }
        for h in snap.used_cryptograms.iter().filter_map(|h| unhex32(h)) {
            store.used_cryptograms.shard(&h).write().insert(h, ());
        }
        for r in snap.idempotency {
            let Some(request_hash) = unhex32(&r.request_hash) else {
                continue;
            };
            let stored = StoredResponse {
                status: r.status,
                body: Bytes::from(r.body),
                request_hash,
                created_ms: r.created_ms,
            };
            store
                .idem
                .shard(&r.key)
                .write()
                .insert(r.key, IdemEntry::Done(Arc::new(stored)));
        }
        *store.webhooks.write() = snap.webhooks;
        store.dirty.store(false, Ordering::Relaxed);
        Ok(store)
    }

    fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot {
            version: 1,
            next_id: self.next_id.load(Ordering::Relaxed),
            ..Default::default()
        };
        snap.transactions = self.all_txns(|_| true);
        for s in self.tokens.shards() {
            snap.tokens.extend(s.read().values().cloned());
        }
        for s in self.used_cryptograms.shards() {
            snap.used_cryptograms
                .extend(s.read().keys().map(|k| hex(k)));
        }
        for s in self.idem.shards() {
            for (k, e) in s.read().iter() {
                if let IdemEntry::Done(r) = e {
                    snap.idempotency.push(IdemRecord {
                        key: k.clone(),
                        status: r.status,
                        body: String::from_utf8_lossy(&r.body).into_owned(),
                        request_hash: hex(&r.request_hash),
                        created_ms: r.created_ms,
                    });
                }
            }
        }
        snap.webhooks = self.webhooks.read().clone();
        snap
    }

    /// Writes the snapshot atomically (temp file + rename) if anything changed, or when `force`.
    pub fn save(&self, path: &Path, force: bool) -> Result<(), crate::Error> {
        let _g = self.save_lock.lock();
        if !self.dirty.swap(false, Ordering::AcqRel) && !force {
            return Ok(());
        }
        let err = |source| crate::Error::SaveState {
            path: path.to_owned(),
            source,
        };
        let data =
            serde_json::to_vec(&self.snapshot()).map_err(|e| err(std::io::Error::other(e)))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let res = std::fs::write(&tmp, &data).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            self.mark_dirty();
            return Err(err(e));
        }
        Ok(())
    }
}
