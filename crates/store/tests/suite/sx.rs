//! The SX side.
