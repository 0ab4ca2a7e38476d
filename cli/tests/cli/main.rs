//! The `keebai` binary against a real server (in process, simulated linker) over loopback HTTP.

mod commands;
mod connect;
mod helpers;
