//! A member that stops transmitting, sans-IO: frames wait in its TX ring and no completion
//! comes back for [`TX_STALL`]. The carrier can stay up while a driver's TX path hangs; the
//! bond then treats the member as failed, as it would on carrier loss.
//!
//! Frames in flight when the device resets (its carrier flaps) may never complete: they are
//! written off, so that the member is judged on what it is given afterwards.

use std::time::Duration;

/// How long frames may wait without any completion before the member counts as stalled.
/// Completions come back in microseconds (zero-copy) or within the sending call (copy mode).
pub const TX_STALL: Duration = Duration::from_millis(200);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StallWatch {
    completed: u64,
    /// When completions last made progress, or nothing was waiting.
    progress: Duration,
    /// Frames in flight written off at the last carrier change.
    written_off: u64,
    transitions: u64,
}

impl StallWatch {
    /// One look at `now`: frames waiting and completions counted so far, and the member's
    /// carrier transitions. Returns whether the member has stalled.
    pub fn look(
        &mut self,
        now: Duration,
        in_flight: u64,
        completed: u64,
        transitions: u64,
    ) -> bool {
        self.written_off = self.written_off.min(in_flight);
        if transitions != self.transitions {
            self.transitions = transitions;
            self.written_off = in_flight;
            self.progress = now;
        }
        if completed != self.completed || in_flight <= self.written_off {
            self.completed = completed;
            self.progress = now;
            return false;
        }
        now.saturating_sub(self.progress) >= TX_STALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn waiting_frames_without_completions_stall_the_member() {
        let mut w = StallWatch::default();
        assert!(!w.look(ms(0), 0, 0, 0));
        assert!(!w.look(ms(100), 32, 10, 0), "completions moving");
        assert!(!w.look(ms(250), 32, 10, 0), "not for long enough yet");
        assert!(w.look(ms(300), 32, 10, 0));
        assert!(!w.look(ms(310), 0, 42, 0), "it recovered");
        // Nothing waiting is never a stall, however quiet.
        assert!(!w.look(ms(5000), 0, 42, 0));
    }

    #[test]
    fn frames_lost_in_a_device_reset_are_written_off() {
        let mut w = StallWatch::default();
        w.look(ms(0), 16, 0, 0);
        assert!(w.look(ms(300), 16, 0, 0));
        // The carrier flaps (the driver reset the device): the 16 frames never come back.
        assert!(!w.look(ms(400), 16, 0, 2));
        assert!(!w.look(ms(900), 16, 0, 2), "only the lost frames wait");
        // New frames that complete keep it healthy; new frames that hang stall it again.
        assert!(!w.look(ms(1000), 20, 4, 2));
        assert!(w.look(ms(1300), 20, 4, 2));
    }
}
