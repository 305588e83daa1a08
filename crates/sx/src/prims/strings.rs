//! placeholder until filled
use crate::interp::Interp;
pub(crate) fn install(_: &mut Interp) {}
