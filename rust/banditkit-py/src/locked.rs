//! Per-object state behind a mutex, taken without ever blocking while holding the GIL.
//!
//! Every class keeps its state in a [`Locked`] and holds the lock across a whole
//! read-modify-write (validation, kernel, write-back), so calls on one object from many threads
//! are atomic and readers wait for a running writer instead of failing. Blocking on the mutex
//! with the GIL held would deadlock against a holder that waits for the GIL (to convert a label,
//! say), so a contended lock is waited for with the GIL released. The lock is not re-entrant:
//! Python code run under it (a label's `__eq__` or `__hash__`) must not call back into the same
//! object.
use pyo3::prelude::*;
use std::sync::{Mutex, MutexGuard, TryLockError};

pub struct Locked<T>(Mutex<T>);

impl<T: Send> Locked<T> {
    pub fn new(value: T) -> Self {
        Locked(Mutex::new(value))
    }

    /// The state, locked. A poisoned lock is recovered: a kernel that panicked ran on a state
    /// that is only written after its inputs passed validation.
    pub fn lock(&self, py: Python<'_>) -> MutexGuard<'_, T> {
        loop {
            match self.0.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                // Wait for the holder with the GIL released, then try again under the GIL (a
                // guard cannot leave `detach`: it must not cross threads, and `detach` requires
                // `Send`).
                Err(TryLockError::WouldBlock) => py.detach(|| drop(self.0.lock())),
            }
        }
    }
}
