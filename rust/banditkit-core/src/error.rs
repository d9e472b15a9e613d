//! One error type for every rejected input; the bindings map it to `ValueError`.
use std::fmt;

/// A rejected input. The message is user-facing and matches the drop-in contract's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanditError(pub String);

impl BanditError {
    pub fn new(msg: impl Into<String>) -> Self {
        BanditError(msg.into())
    }

    /// An update rejected because the new state of arm `name` would not be finite.
    pub fn overflow(name: &str) -> Self {
        BanditError(format!(
            "update would make the state of arm '{name}' non-finite (overflow)"
        ))
    }
}

impl fmt::Display for BanditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BanditError {}

pub type Result<T> = std::result::Result<T, BanditError>;

/// Early return with a formatted [`BanditError`].
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::BanditError(format!($($arg)*)))
    };
}
