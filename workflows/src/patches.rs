//! Workflow code versions (Temporal patches) and the baselines that retire them per run.
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
//!   per patch later, and none at all in continued runs. A run recorded under an older baseline
//!   replays with its own marker (`baseline-1`).
//!
//! Histories recorded before a baseline have a lower `patch_baseline` (0 before any, the serde
//! default) and no marker of it, so they replay through the individual patches the baseline
//! does not cover, each checked where it matters (`workflows/tests/histories/v3-per-patch-*`:
//! level 0; `v4-baseline-1-*`: level 1).
//!
//! Adding a patch later: give it an id here, check it with [`patched`], and when a release
//! should stop paying its marker, add a level to [`LEVELS`] and raise [`BASELINE`] with a new
//! [`BASELINE_PATCH`] id (keeping the old ids in [`adopt_baseline`]).

use crate::state::Ctx;

/// Steps are local activities (before: ordinary activities).
pub const LOCAL_STEPS: &str = "local-steps";
/// `publish` skips repeats, and a renewal charge does not publish `charging` (its outcome is
/// published in the same workflow task; a charge whose outcome stays unknown shows as
/// `reconciling`).
pub const QUIET_UPSERTS: &str = "quiet-upserts";
/// Runs continue as new after `renewals_per_run` paid renewals instead of after each.
pub const RENEWALS_PER_RUN: &str = "renewals-per-run";
/// Money safety (issue 13): money-moving calls are ordinary activities (their result is in the
/// history before the next step, so a failing workflow task never re-runs a charge); an unknown
/// outcome is reconciled until the gateway knows (never "not found = not charged"), gateway
/// outages never use up a dunning attempt; what the workflow cannot resolve parks it in
/// `needs_attention` instead of failing it; a cancel-now during a charge that got paid keeps the
/// paid period.
pub const MONEY_SAFETY: &str = "money-safety";

/// The patches each baseline level covers (level `n` = `LEVELS[..n]`).
const LEVELS: [&[&str]; 2] = [
    &[LOCAL_STEPS, QUIET_UPSERTS, RENEWALS_PER_RUN],
    &[MONEY_SAFETY],
];

/// The baseline new runs adopt.
pub const BASELINE: u32 = LEVELS.len() as u32;

/// Patch id checked once at the start of a run that does not carry the baseline yet.
pub const BASELINE_PATCH: &str = "baseline-2";

/// The ids of the older baselines, newest first, with their level.
const OLDER_BASELINES: [(&str, u32); 1] = [("baseline-1", 1)];

fn covered(level: u32, id: &str) -> bool {
    LEVELS
        .iter()
        .take(level as usize)
        .any(|patches| patches.contains(&id))
}

/// Whether the code behind patch `id` runs in this run.
pub(crate) fn patched(ctx: &Ctx, id: &str) -> bool {
    if covered(ctx.state(|s| s.input.patch_baseline), id) {
        return true;
    }
    ctx.patched(id)
}

/// First thing in every run: adopt the baseline for runs that do not carry it yet, unless this
/// run's history was recorded before it (replay finds its marker, or none).
pub(crate) fn adopt_baseline(ctx: &Ctx) {
    let carried = ctx.state(|s| s.input.patch_baseline);
    if carried >= BASELINE {
        return;
    }
    if ctx.patched(BASELINE_PATCH) {
        ctx.state_mut(|s| s.input.patch_baseline = BASELINE);
        return;
    }
    for (id, level) in OLDER_BASELINES {
        if carried >= level {
            return;
        }
        if ctx.patched(id) {
            ctx.state_mut(|s| s.input.patch_baseline = level);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_covers_its_own_patches_and_those_below() {
        assert!(!covered(0, LOCAL_STEPS));
        assert!(covered(1, LOCAL_STEPS) && covered(1, RENEWALS_PER_RUN));
        assert!(
            !covered(1, MONEY_SAFETY),
            "a level-1 run checks money-safety itself"
        );
        assert!(covered(2, MONEY_SAFETY) && covered(2, QUIET_UPSERTS));
        assert_eq!(BASELINE, 2);
    }
}
