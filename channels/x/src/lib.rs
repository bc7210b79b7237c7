//! X (Twitter) Account Activity intake.
