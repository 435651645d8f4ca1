//! Integration tests: the emulator on port 0, spoken to over HTTP in the exact wire format.

mod api;
mod cards;
mod cli;
mod common;
mod docs;
mod faults;
mod idempotency;
mod persistence;
mod props;
mod three_ds;
mod webhooks;
