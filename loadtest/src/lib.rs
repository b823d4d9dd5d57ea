//! Load-test harness and SMSC simulator (filled in by issue 2).
