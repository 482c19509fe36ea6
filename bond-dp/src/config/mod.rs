//! Bond configuration: options with the kernel's names, defaults and rules, parsed from the
//! strings operators already write, and the TOML file that holds one or more bonds.

mod engine;
mod error;
mod file;
pub mod import;
mod options;
mod values;

pub use engine::{CarrierWatch, CopyMode, EngineConfig, Jumbo, XdpMode, ENGINE_SETTINGS};
pub use error::{ConfigError, OptionError};
pub use file::{check_member_count, BondConfig, ConfigFile, HostSpec};
pub use options::{tokenize, BondOptions, Warning, OPTION_NAMES};
pub use values::{AdSelect, ArpAllTargets, ArpValidate, FailOverMac, LacpRate};
