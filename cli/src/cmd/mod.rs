//! One module per command, and the text tables they print.

pub mod demo;
pub mod inspect;
pub mod replay;
pub mod table;
