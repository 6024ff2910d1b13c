//! Legal response deadlines ("the clock").
//!
//! Every deadline a data-subject-rights request carries is computed here, from
//! three inputs: the instant the clock starts (receipt, or verified identity for
//! `cn`), a [`Period`] in the unit the law uses, and the jurisdiction's time
//! zone. The conventions are the statutory ones:
//!
//! * the day on which the clock starts is not counted; counting begins the next
//!   day (PRC Civil Code Art. 201; EU Reg. 1182/71 Art. 3(1));
//! * which local day the start falls on is decided in the jurisdiction's zone,
//!   not in UTC;
//! * a deadline ends at the end of its last day, 23:59:59 local time.
//!
//! The module is pure: no clock reads, no globals, no I/O, so every result is
//! reproducible from its inputs and trivially testable. The single exception is
//! [`CalendarSet::load_dir`], which reads holiday calendars that operators drop
//! into a folder, so that a new year's State Council notice needs no rebuild.
//! Holiday calendars are data ([`YearCalendar`]); a year with no calendar is
//! counted Monday–Friday and always reported as a [`ClockWarning`], never
//! silently.

pub mod calendar;
pub mod deadline;

pub use calendar::{CalendarError, CalendarSet, YearCalendar};
pub use deadline::{due_after, end_of_local_day, extended_due, ClockWarning, Due, Period};
