//! Member link monitoring: the miimon state machine (pure) and reading link facts from sysfs.

pub mod link;
pub mod mii;

pub use link::{read_link, LinkFacts};
pub use mii::{MiiMachine, Transition};
