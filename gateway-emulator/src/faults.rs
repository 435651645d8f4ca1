//! Fault injection rules set through `POST /_emulator/faults`.

use parking_lot::{Mutex, RwLock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use utoipa::ToSchema;

/// How long a `timeout` holds a request when the rule gives no `hold_ms` (the real API's 5-minute
/// limit); the EMU1 `timeout` scenario holds this long too.
pub const DEFAULT_HOLD_MS: u64 = 300_000;

/// What a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every request.
    Global,
    /// Requests charging this token.
    Token(String),
    /// Requests for this card: a full number, or its last four digits.
    Card(String),
    /// Requests carrying this `InvoiceId`.
    InvoiceId(String),
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Add this much latency, then process normally.
    LatencyMs(u64),
    /// Answer this HTTP status (500–599) without processing.
    HttpStatus(u16),
    /// Answer 429 without processing.
    RateLimit,
    /// Hold the request for this long (then close the connection), nothing processed.
    Timeout(u64),
    /// Decline charges with this reason code.
    Decline(u32),
    /// Process and commit the charge, then close the connection without an answer.
    DropResponseAfterCommit,
    /// A bank that answers late: hold the connection `hold_ms`, close it without an answer,
    /// and commit the charge `commit_after_ms` after the request arrived. Until then `find`
    /// knows nothing, and a retry with the same `X-Request-ID` waits for the commit.
    LateCommit {
        /// How long the client waits before the connection is closed.
        hold_ms: u64,
        /// When the charge is committed, counted from the request.
        commit_after_ms: u64,
    },
    /// Commit the charge, but let `find` / `get` report it with the non-final status
    /// `Authorized` for this many milliseconds (a bank still settling it).
    PendingInFindMs(u64),
}

impl FaultKind {
    /// Only charge/auth requests are affected (they commit money).
    pub fn charges_only(&self) -> bool {
        matches!(
            self,
            Self::Decline(_)
                | Self::DropResponseAfterCommit
                | Self::LateCommit { .. }
                | Self::PendingInFindMs(_)
        )
    }
}

/// One rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaultRule {
    /// Id returned when the rule was added.
    pub id: u64,
    /// Where it applies.
    pub scope: Scope,
    /// What it does.
    pub kind: FaultKind,
    /// Remaining applications; `None` = forever.
    pub remaining: Option<u64>,
    /// Only on this terminal.
    pub public_id: Option<String>,
    /// Only on these paths (e.g. `/payments/tokens/charge`).
    pub paths: Option<Vec<String>>,
    /// Applies to a matching request with this probability (0–1; `None` = always): random
    /// faults at a rate, for chaos runs. A request the dice spare does not consume the rule.
    #[serde(default)]
    pub probability: Option<f64>,
    /// How many requests this rule has applied to so far.
    #[serde(default)]
    pub applied: u64,
}

/// What the request carries that rules can match.
#[derive(Debug, Default, Clone)]
pub struct FaultCtx<'a> {
    /// Terminal.
    pub public_id: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Whether this request charges or authorises money.
    pub is_charge: bool,
    /// Token charged.
    pub token: Option<&'a str>,
    /// Full card number when known.
    pub pan: Option<&'a str>,
    /// First six digits when known.
    pub first_six: Option<&'a str>,
    /// Last four digits when known.
    pub last_four: Option<&'a str>,
    /// `InvoiceId`.
    pub invoice_id: Option<&'a str>,
}

impl Scope {
    fn matches(&self, ctx: &FaultCtx<'_>) -> bool {
        match self {
            Self::Global => true,
            Self::Token(t) => ctx.token == Some(t.as_str()),
            Self::InvoiceId(i) => ctx.invoice_id == Some(i.as_str()),
            Self::Card(c) => {
                let c = c.replace([' ', '-'], "");
                if c.len() == 4 {
                    ctx.last_four == Some(c.as_str())
                } else if let Some(pan) = ctx.pan {
                    pan == c
                } else {
                    c.len() >= 10
                        && ctx.first_six == c.get(..6)
                        && ctx.last_four == c.get(c.len() - 4..)
                }
            }
        }
    }
}

/// The combined effect of the rules that matched one request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Total added latency.
    pub latency_ms: u64,
    /// Abort before processing with this HTTP status (429 or 5xx).
    pub http_status: Option<u16>,
    /// Hold the request this long, nothing processed.
    pub timeout_ms: Option<u64>,
    /// Decline with this code.
    pub decline: Option<u32>,
    /// Commit, then drop the answer.
    pub drop_after_commit: bool,
    /// Answer nothing after `.0` ms, commit after `.1` ms.
    pub late_commit: Option<(u64, u64)>,
    /// `find` reports the committed charge as `Authorized` for this long.
    pub pending_in_find_ms: Option<u64>,
}

/// The rule list; requests read a flag first so an empty list costs one atomic load.
pub struct Faults {
    active: AtomicBool,
    next_id: AtomicU64,
    rules: RwLock<Vec<FaultRule>>,
    /// The dice of `probability` rules: seeded (`Settings::fault_seed`) for reproducible chaos
    /// runs, from the OS otherwise.
    dice: Mutex<StdRng>,
    /// Applications of rules removed since (cleared or used up), so the total survives them.
    applied_before: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Self::seeded(None)
    }
}

impl Faults {
    /// An empty rule list whose dice start from `seed` (`None`: from the OS).
    pub fn seeded(seed: Option<u64>) -> Self {
        Self {
            active: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            rules: RwLock::new(Vec::new()),
            dice: Mutex::new(match seed {
                Some(s) => StdRng::seed_from_u64(s),
                None => StdRng::from_entropy(),
            }),
            applied_before: AtomicU64::new(0),
        }
    }

    /// Requests any rule has applied to since the start (rules removed since included).
    pub fn applied_total(&self) -> u64 {
        self.applied_before.load(Ordering::Relaxed)
            + self.rules.read().iter().map(|r| r.applied).sum::<u64>()
    }

    fn retire<'a>(&self, gone: impl Iterator<Item = &'a FaultRule>) {
        let n: u64 = gone.map(|r| r.applied).sum();
        self.applied_before.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds a rule and returns its id.
    pub fn add(&self, mut rule: FaultRule) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        rule.id = id;
        let mut rules = self.rules.write();
        rules.push(rule);
        self.active.store(true, Ordering::Release);
        id
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut rules = self.rules.write();
        self.retire(rules.iter());
        rules.clear();
        self.active.store(false, Ordering::Release);
    }

    /// Removes one rule; false if unknown.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.rules.write();
        let before = rules.len();
        self.retire(rules.iter().filter(|r| r.id == id));
        rules.retain(|r| r.id != id);
        self.active.store(!rules.is_empty(), Ordering::Release);
        before != rules.len()
    }

    /// The current rules.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.read().clone()
    }

    /// Consumes the matching rules (decrementing their counts) and returns their combined effect.
    pub fn take(&self, ctx: &FaultCtx<'_>) -> Effects {
        let mut fx = Effects::default();
        if !self.active.load(Ordering::Acquire) {
            return fx;
        }
        let mut rules = self.rules.write();
        for r in rules.iter_mut() {
            if r.remaining == Some(0)
                || (r.kind.charges_only() && !ctx.is_charge)
                || r.public_id.as_deref().is_some_and(|p| p != ctx.public_id)
                || r.paths
                    .as_ref()
                    .is_some_and(|ps| !ps.iter().any(|p| p == ctx.path))
                || !r.scope.matches(ctx)
                || r.probability
                    .is_some_and(|p| self.dice.lock().gen::<f64>() >= p)
            {
                continue;
            }
            // An abort already chosen makes later abort rules irrelevant: do not consume them.
            let aborting = fx.http_status.is_some() || fx.timeout_ms.is_some();
            match &r.kind {
                FaultKind::LatencyMs(ms) => fx.latency_ms += ms,
                FaultKind::HttpStatus(s) if !aborting => fx.http_status = Some(*s),
                FaultKind::RateLimit if !aborting => fx.http_status = Some(429),
                FaultKind::Timeout(ms) if !aborting => fx.timeout_ms = Some(*ms),
                FaultKind::Decline(c) if fx.decline.is_none() && !aborting => fx.decline = Some(*c),
                FaultKind::DropResponseAfterCommit if !fx.drop_after_commit && !aborting => {
                    fx.drop_after_commit = true
                }
                FaultKind::LateCommit {
                    hold_ms,
                    commit_after_ms,
                } if fx.late_commit.is_none() && !aborting => {
                    fx.late_commit = Some((*hold_ms, *commit_after_ms))
                }
                FaultKind::PendingInFindMs(ms) if fx.pending_in_find_ms.is_none() => {
                    fx.pending_in_find_ms = Some(*ms)
                }
                _ => continue,
            }
            r.applied += 1;
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
        }
        self.retire(rules.iter().filter(|r| r.remaining == Some(0)));
        rules.retain(|r| r.remaining != Some(0));
        self.active.store(!rules.is_empty(), Ordering::Release);
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(scope: Scope, kind: FaultKind, remaining: Option<u64>) -> FaultRule {
        FaultRule {
            id: 0,
            scope,
            kind,
            remaining,
            public_id: None,
            paths: None,
            probability: None,
            applied: 0,
        }
    }

    #[test]
    fn counts_and_scopes() {
        let f = Faults::default();
        f.add(rule(
            Scope::Card("4242".into()),
            FaultKind::Decline(5051),
            Some(2),
        ));
        let ctx = FaultCtx {
            is_charge: true,
            last_four: Some("4242"),
            ..Default::default()
        };
        let other = FaultCtx {
            is_charge: true,
            last_four: Some("1111"),
            ..Default::default()
        };
        assert_eq!(f.take(&other).decline, None);
        assert_eq!(f.take(&ctx).decline, Some(5051));
        assert_eq!(f.take(&ctx).decline, Some(5051));
        assert_eq!(f.take(&ctx).decline, None);
        assert!(f.list().is_empty());
    }

    #[test]
    fn charge_only_rules_skip_reads() {
        let f = Faults::default();
        f.add(rule(
            Scope::Global,
            FaultKind::DropResponseAfterCommit,
            Some(1),
        ));
        assert!(!f.take(&FaultCtx::default()).drop_after_commit);
        assert!(
            f.take(&FaultCtx {
                is_charge: true,
                ..Default::default()
            })
            .drop_after_commit
        );
    }
}
