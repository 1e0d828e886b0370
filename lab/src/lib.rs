//! `lab`: the experiment runner over the virtual testbed (the `testbed`
//! crate: namespaces, veth pairs, the tc mirror switch, the placeholder on
//! every veth end). `lab` builds labs with it and drives the tools (`gen`,
//! `dut`, `tstamp`, `sink`) through their command lines and JSON records, as
//! a user would: `lab up/status/down` ([`cli`]), `lab demo` ([`demo`]),
//! experiment files ([`experiment`]) and their runs ([`runner`], [`tools`]),
//! every lab on the machine and the removal of stale ones ([`registry`]),
//! results ([`store`]), statistics across repetitions ([`stats`]), plots
//! ([`plot`]) and reports ([`report`]).

#![warn(missing_docs)]

pub mod cli;
pub mod demo;
pub mod experiment;
pub mod gens;
pub mod ledger;
pub mod plot;
pub mod provenance;
pub mod registry;
pub mod remote;
pub mod remote_measure;
pub mod report;
pub mod runner;
pub mod sshlab;
pub mod stats;
pub mod store;
pub mod testbed_file;
pub mod tools;
