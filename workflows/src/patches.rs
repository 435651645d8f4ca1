//! Workflow code versions (Temporal patches) and the baseline that retires them per run.
//!
//! Each change of the commands a workflow emits sits behind a patch (`ctx.patched(id)`), so that
//! histories recorded before it replay on their old path. A patch costs every run that reaches
//! it a marker event and an SDK-added `TemporalChangeVersion` search-attribute upsert (one more
//! visibility write), in a renewal's workflow task for the patches first checked there.
//!
//! A **baseline** says "every patch up to here applies to this whole run": a run started by code
//! that knows them cannot contain a history from before them. `SubscriptionInput::patch_baseline`
//! carries it:
//! - a continued run gets [`BASELINE`] from the code that continues it (continue-as-new);
//! - any other run (a new subscription, or a run continued by older code) checks
//!   [`BASELINE_PATCH`] once, first thing: one marker in its first workflow task instead of one
//!   per patch later, and none at all in continued runs.
//!
//! Histories recorded before the baseline have `patch_baseline` 0 (serde default) and no
//! baseline marker, so they replay through the individual patches as before
//! (`workflows/tests/histories/v3-per-patch-*`).
//!
//! Adding a patch later: check it with [`patched`] like the others, and only when no run below
//! the new level can be running any more, raise [`BASELINE`] (with a new [`BASELINE_PATCH`] id).

use crate::state::Ctx;

/// The patches the baseline covers: `local-steps` (steps are local activities), `quiet-upserts`
/// (one search-attribute upsert per change), `renewals-per-run` (continue-as-new after
/// `renewals_per_run` renewals).
pub const BASELINE: u32 = 1;

/// Patch id checked once at the start of a run that does not carry the baseline yet.
pub const BASELINE_PATCH: &str = "baseline-1";

/// Whether the code behind patch `id` (one of those [`BASELINE`] covers) runs in this run.
pub(crate) fn patched(ctx: &Ctx, id: &str) -> bool {
    if ctx.state(|s| s.input.patch_baseline) >= BASELINE {
        return true;
    }
    ctx.patched(id)
}

/// First thing in every run: adopt the baseline for runs that do not carry it yet, unless this
/// run's history was recorded before it (replay finds no baseline marker there).
pub(crate) fn adopt_baseline(ctx: &Ctx) {
    if ctx.state(|s| s.input.patch_baseline) >= BASELINE {
        return;
    }
    if ctx.patched(BASELINE_PATCH) {
        ctx.state_mut(|s| s.input.patch_baseline = BASELINE);
    }
}
