//! Log lines, on stderr, which Spin keeps per component. One function writes
//! them all, so the tests can read back every line a request produced and
//! check that no secret reaches one. Hand-written rather than the `log` crate:
//! the component has one sink and no levels, and a logger would add code for
//! nothing.

/// Writes one log line (`format!` syntax).
macro_rules! log_line {
    ($($arg:tt)*) => {
        $crate::log::write(format_args!($($arg)*))
    };
}
pub(crate) use log_line;

/// Writes `line` to stderr (and, in unit tests, to [`captured`]).
pub(crate) fn write(line: std::fmt::Arguments) {
    #[cfg(test)]
    captured::push(line.to_string());
    eprintln!("{line}");
}

/// The lines this thread logged, for the unit tests.
#[cfg(test)]
pub(crate) mod captured {
    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn push(line: String) {
        LINES.with(|l| l.borrow_mut().push(line));
    }

    /// Every line logged on this thread since the last call.
    pub(crate) fn take() -> Vec<String> {
        LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }
}
