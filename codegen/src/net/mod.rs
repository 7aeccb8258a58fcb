//! `#[tall_skinny_net]`: parse the attribute ([`attr`]) and the struct ([`ast`]), validate
//! the network ([`check`]), write the code ([`expand`]).

pub mod ast;
pub mod attr;
pub mod check;
pub mod expand;
pub mod sizes;
