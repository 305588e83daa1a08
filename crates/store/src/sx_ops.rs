//! SX performs to store calls and back.
