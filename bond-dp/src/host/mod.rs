//! The host side of a bond: where frames the bond receives go, and where the frames it sends
//! come from.

pub mod app;
pub mod tap;

pub use app::{AppPort, Frame};
pub use tap::TapPort;

/// What a copying host port (the TAP) offers the worker: the engine's contract, which this
/// module's ports fulfil.
pub use crate::engine::HostPort;
