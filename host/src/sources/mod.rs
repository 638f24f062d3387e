//! Where data comes from.
//!
//! Each source turns one kind of raw input into the records of [`crate::model`]:
//!
//! * [`probe`] — datagrams of the Python probe (`host/python`): the init record,
//!   import profiles and one record per invocation; [`probe_socket`] receives them;
//! * [`importtime`] — CPython's own `-X importtime` text, for the probe's `text`
//!   mode and for processes that run without the probe;
//! * [`procfs`] — resource use of the runtime process (tree) from `/proc`;
//! * [`telemetry`] — the Lambda Telemetry API's events, and a tolerant listener.

pub mod importtime;
pub mod probe;
pub mod probe_socket;
pub mod procfs;
pub mod telemetry;
