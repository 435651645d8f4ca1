//! Test-only hooks, active only with the test clock on (`BillingConfig::test_clock`), so that
//! tests and the chaos run (`scripts/chaos.sh`) can inject failures no real dependency produces
//! on demand.

use crate::state::Ctx;
use std::time::Duration;

/// After a money-moving call answered: fails every workflow task that gets here (each retry of
/// the task comes back to the same history position) until
/// `BillingConfig::test_fail_tasks_after_charge` has passed since the call was scheduled, on
/// the share `test_fail_tasks_after_charge_percent` of the calls. Both ends are workflow times
/// (a retried task's is its own start), so any worker process, restarted or not, agrees on when
/// the failing stops. It adds no command: replay is unaffected.
pub(crate) async fn after_charge(ctx: &Ctx) {
    let (test_mode, span, percent, subscription, call, sent_at) = ctx.state(|s| {
        (
            s.input.config.test_clock,
            s.input.config.test_fail_tasks_after_charge,
            s.input.config.test_fail_tasks_after_charge_percent,
            s.input.subscription_id.to_string(),
            s.money_calls,
            s.money_sent_at,
        )
    });
    if !test_mode || span.is_zero() || ctx.is_replaying() || !chosen(&subscription, call, percent) {
        return;
    }
    let elapsed = match (sent_at, since_epoch(ctx)) {
        (Some(sent), Some(now)) => now.saturating_sub(sent),
        _ => return,
    };
    if elapsed < span {
        ctx.force_task_fail(
            "test hook: the workflow task fails after a charge (test_fail_tasks_after_charge)",
        );
        std::future::pending::<()>().await;
    }
}

/// Workflow time since the Unix epoch, to the nanosecond (what the hook measures with).
pub(crate) fn since_epoch(ctx: &Ctx) -> Option<Duration> {
    ctx.workflow_time()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
}

/// Whether the hook applies to money-moving call `call` of `subscription`: a stable hash
/// (FNV-1a), so the same chaos seed picks the same calls.
fn chosen(subscription: &str, call: u32, percent: u32) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in subscription.bytes().chain(call.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % 100 < u64::from(percent)
}
