//! A member that stops transmitting, sans-IO: frames wait in its TX ring and no completion
//! comes back for [`TX_STALL`], or the kernel refuses to transmit with an error while nothing
//! completes. The carrier can stay up while a driver's TX path hangs; the bond then treats
//! the member as failed, as it would on carrier loss.
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
    errors: u64,
    /// When completions last made progress, or nothing was waiting.
    progress: Duration,
    /// Frames in flight written off at the last carrier change.
    written_off: u64,
    transitions: u64,
}

impl StallWatch {
    /// One look at `now`: frames waiting, completions and transmit errors counted so far,
    /// and the member's carrier transitions. Returns whether the member has stalled.
    pub fn look(&mut self, now: Duration, tx: TxCounts, transitions: u64) -> bool {
        let TxCounts {
            in_flight,
            completed,
            errors,
        } = tx;
        let new_errors = errors != std::mem::replace(&mut self.errors, errors);
        self.written_off = self.written_off.min(in_flight);
        if transitions != self.transitions {
            self.transitions = transitions;
            self.written_off = in_flight;
            self.progress = now;
        }
        if completed != self.completed {
            self.completed = completed;
            self.progress = now;
            return false;
        }
        if new_errors {
            return true;
        }
        if in_flight <= self.written_off {
            self.progress = now;
            return false;
        }
        now.saturating_sub(self.progress) >= TX_STALL
    }
}

/// A member's transmit counts, summed over its queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxCounts {
    pub in_flight: u64,
    pub completed: u64,
    pub errors: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn tx(in_flight: u64, completed: u64) -> TxCounts {
        TxCounts {
            in_flight,
            completed,
            errors: 0,
        }
    }

    #[test]
    fn waiting_frames_without_completions_stall_the_member() {
        let mut w = StallWatch::default();
        assert!(!w.look(ms(0), tx(0, 0), 0));
        assert!(!w.look(ms(100), tx(32, 10), 0), "completions moving");
        assert!(!w.look(ms(250), tx(32, 10), 0), "not for long enough yet");
        assert!(w.look(ms(300), tx(32, 10), 0));
        assert!(!w.look(ms(310), tx(0, 42), 0), "it recovered");
        // Nothing waiting is never a stall, however quiet.
        assert!(!w.look(ms(5000), tx(0, 42), 0));
    }

    #[test]
    fn frames_lost_in_a_device_reset_are_written_off() {
        let mut w = StallWatch::default();
        w.look(ms(0), tx(16, 0), 0);
        assert!(w.look(ms(300), tx(16, 0), 0));
        // The carrier flaps (the driver reset the device): the 16 frames never come back.
        assert!(!w.look(ms(400), tx(16, 0), 2));
        assert!(!w.look(ms(900), tx(16, 0), 2), "only the lost frames wait");
        // New frames that complete keep it healthy; new frames that hang stall it again.
        assert!(!w.look(ms(1000), tx(20, 4), 2));
        assert!(w.look(ms(1300), tx(20, 4), 2));
    }

    #[test]
    fn transmit_errors_without_completions_fail_the_member_at_once() {
        let mut w = StallWatch::default();
        assert!(!w.look(ms(0), tx(0, 100), 0));
        let refused = TxCounts {
            in_flight: 8,
            completed: 100,
            errors: 3,
        };
        assert!(w.look(ms(10), refused, 0), "refused, nothing completed");
        // Errors that stop end it; so do completions that resume, errors or not.
        assert!(!w.look(
            ms(20),
            TxCounts {
                in_flight: 0,
                ..refused
            },
            0
        ));
        let busy_but_moving = TxCounts {
            in_flight: 8,
            completed: 140,
            errors: 5,
        };
        assert!(!w.look(ms(30), busy_but_moving, 0));
    }
}
