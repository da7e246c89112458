//! Pure rules of the domain: no I/O, no database, no clock reads.

pub mod aid;
pub mod municipality;
pub mod person;
pub mod shelter;
pub mod supply;
