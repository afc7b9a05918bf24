//! What the command-line tests share: the built `zhifu` run as a child
//! process that never outlives its test.

use std::process::Child;

/// A child process killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
