//! The one way this crate takes a `std` mutex.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking over a poisoned one. Every mutex here guards short sections of map
/// operations with no `.await` inside (a `std` mutex is cheaper than an async one there), and a
/// panic inside such a section cannot leave a map half-updated in a harmful way: the worst is a
/// missing or stale entry, which the next operation treats like any other.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
