//! Helpers shared by the integration tests that run real threads.

use std::time::{Duration, Instant};

/// Poll `condition` every 5 ms for up to `limit` (real threads: there is no clock to advance);
/// whether it came to hold.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    condition()
}
